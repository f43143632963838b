"""How the command line ends: every exit status goes through :class:`CliExit`.

A command raises :class:`CliExit` wherever it knows its status, even from deep
inside a run; :func:`exits`, wrapped around every command, turns it (and a
Ctrl-C that no run caught) into the process's exit status. Usage and
configuration errors are click's own exceptions (exit 2).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import click

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_STDOUT_CLOSED",
    "EXIT_TERMINATED",
    "CliExit",
    "exits",
]

#: Exit statuses: 128 + the signal's number, as a shell reports a process that signal killed.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_STDOUT_CLOSED = 128 + 13  # SIGPIPE (not in the signal module on Windows)
EXIT_TERMINATED = 128 + signal.SIGTERM


class CliExit(Exception):
    """End the command with this exit status.

    Args:
        status: The process's exit status.
    """

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@contextmanager
def exits() -> Iterator[None]:
    """Turn :class:`CliExit` and an uncaught Ctrl-C into click's exit, with their status.

    Yields:
        Nothing: run the command inside.

    Raises:
        click.exceptions.Exit: With the status.
    """
    try:
        yield
    except CliExit as exc:
        raise click.exceptions.Exit(exc.status) from None
    except KeyboardInterrupt:  # before or after a run's own handling, or on Windows
        click.echo("Interrupted.", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
