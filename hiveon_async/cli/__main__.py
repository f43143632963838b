"""``python -m hiveon_async.cli``: the same command as ``hiveon-async``."""

from hiveon_async.cli import run

if __name__ == "__main__":
    run()
