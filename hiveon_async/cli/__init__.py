"""The ``hiveon-async`` command line (install the ``[cli]`` extra).

:data:`main` is the click group (``from hiveon_async.cli import main``, e.g. for
click's ``CliRunner``); it lives in ``_main`` and is imported on first use, so
that this package imports without click. :func:`run` is the console script and
``python -m hiveon_async.cli``: without the ``cli`` extra it prints one line
saying how to install it and exits 2, rather than a traceback.

Exit statuses of ``stop`` and ``demo``: 0 every id stopped; 1 any failed or
skipped; 2 a usage or configuration error; 130 Ctrl-C; 141 stdout closed;
143 SIGTERM.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._main import main

__all__ = ["EXTRA_HINT", "main", "run"]

#: What the command says, on stderr, when the ``cli`` extra is not installed.
EXTRA_HINT = (
    "hiveon-async needs the cli extra: pip install 'hiveon-async[cli]' "
    "(from a checkout: pip install '.[cli]')"
)
#: The packages of the ``cli`` extra.
_EXTRA = ("click", "rich")


def _extra_missing() -> bool:
    # find_spec imports nothing (rich is imported only when a bar or table is drawn).
    return any(find_spec(name) is None for name in _EXTRA)


def run() -> None:
    """Run the command line (the ``hiveon-async`` console script).

    Raises:
        SystemExit: With the command's exit status; 2 without the ``cli`` extra.
    """
    if _extra_missing():
        sys.stderr.write(EXTRA_HINT + "\n")
        raise SystemExit(2)
    from ._main import main

    main()


def __getattr__(name: str) -> Any:
    # `main` is imported on first use: importing this package must not need click.
    if name == "main":
        from ._main import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
