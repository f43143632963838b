"""The ``hiveon-async`` click group: its commands, and where every command ends.

Each command lives in its own module (``_stop``, ``_demo``, ``_fake_server``),
and every command ends through :func:`._exit.exits`, the one place that turns an
exit or a Ctrl-C into the process's exit status. rich and the fake vendor API
are imported only by the code that needs them, so ``hiveon-async --help`` stays
fast.
"""

from __future__ import annotations

from typing import Any

import click

from hiveon_async import __version__

from ._demo import demo
from ._exit import exits
from ._fake_server import fake_server
from ._stop import stop

__all__ = ["main"]


class _Commands(click.Group):
    """A group whose commands all end in the same place."""

    def invoke(self, ctx: click.Context) -> Any:
        with exits():
            return super().invoke(ctx)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="hiveon-async")
def main() -> None:
    """Stop Hiveon vendor deployments, or run a fake of the vendor API."""


main.add_command(demo)
main.add_command(fake_server)
main.add_command(stop)
