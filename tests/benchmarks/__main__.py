"""``python -m tests.benchmarks``: the same as ``python -m tests.benchmarks.run``."""

from .run import main

raise SystemExit(main())
