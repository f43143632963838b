"""Checks of user-supplied numbers, shared by every setting that takes one.

Each raises :class:`~hiveon_async.InvalidRequestError` naming the setting, before
any I/O. ``bool`` is refused wherever a number belongs: ``True`` for a count or
a duration is always a mistake.
"""

from __future__ import annotations

import math

from ._errors import InvalidRequestError

__all__ = ["check_count", "check_seconds"]


def check_seconds(name: str, value: object, *, zero_ok: bool = False) -> float:
    """Return ``value`` as float seconds: a finite number > 0 (or >= 0 with ``zero_ok``).

    Raises:
        InvalidRequestError: Not a number, not finite, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise InvalidRequestError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_count(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value``, an int >= ``minimum``.

    Raises:
        InvalidRequestError: Not an int (or a bool), or below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequestError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value
