"""The signals that stop a command cleanly: Ctrl-C (SIGINT) and SIGTERM.

A terminating supervisor deserves the same clean end as a user at the
keyboard, so both are received as events rather than left to their default
actions.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, nullcontext

import anyio

__all__ = ["stop_signals"]


def stop_signals() -> AbstractContextManager[AsyncIterator[int]]:
    """Receive SIGINT and SIGTERM while the context is open.

    On Windows, where an event loop cannot take signal handlers, nothing is
    received and Ctrl-C raises ``KeyboardInterrupt`` as usual.

    Returns:
        A context manager yielding the signal numbers as they arrive.
    """
    if sys.platform == "win32":  # pragma: no cover - no signal handlers there
        return nullcontext(_never())
    return anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)


async def _never() -> AsyncIterator[int]:  # pragma: no cover - Windows only
    await anyio.sleep_forever()
    yield 0
