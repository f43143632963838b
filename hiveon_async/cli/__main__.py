"""``python -m hiveon_async.cli``: the same command as ``hiveon-async``."""

from hiveon_async.cli import main

if __name__ == "__main__":
    main()
