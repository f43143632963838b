"""The options that more than one command takes, each declared once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from hiveon_async._config import DEFAULT_MAX_CONCURRENCY

__all__ = ["concurrency_option", "output_option", "quiet_option", "seed_option"]

_Command = TypeVar("_Command", bound=Callable[..., Any])

seed_option = click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the random faults."
)
concurrency_option = click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=DEFAULT_MAX_CONCURRENCY,
    show_default=True,
    help="Requests in flight at most.",
)
quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar and no summary on stderr."
)


def output_option(
    kinds: Sequence[str], *, default: str, help: str
) -> Callable[[_Command], _Command]:
    """Return the ``--output KIND`` option (its value is the ``output_kind`` parameter).

    Args:
        kinds: The kinds a command offers, from ``none``, ``jsonl`` and ``table``.
        default: The kind without the option.
        help: The option's help text.

    Returns:
        The option's decorator.
    """
    return click.option(
        "--output",
        "output_kind",
        type=click.Choice(list(kinds)),
        default=default,
        show_default=True,
        help=help,
    )
