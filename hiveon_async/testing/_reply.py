"""What the fake decided to answer, in the shape both runners carry out."""

from __future__ import annotations

import functools
import http
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._faults import Fault

__all__ = ["BODY_FAULTS", "Backend", "Reply", "reason_phrase"]

#: Wire faults that shape only the body: an answer to HEAD, which has none, is sent plainly.
BODY_FAULTS = frozenset({"trickle", "huge"})


@functools.cache
def reason_phrase(status: int) -> bytes:
    """Return the standard reason phrase of ``status`` (``b""`` for unknown codes).

    Args:
        status: An HTTP status code.

    Returns:
        The phrase, e.g. ``b"Not Found"``.
    """
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class Reply:
    """An answer the fake decided, for a runner to carry out (internal to the package).

    Attributes:
        status: The status line's code (unused for reset, drop and stall).
        headers: Response headers, lower-case byte pairs, Content-Length included
            unless the body is chunked.
        body: The response body.
        fault: The fault the runner must carry out on the wire, if any.
        delay: Seconds to wait before answering (latency and jitter).
    """

    __slots__ = ("body", "delay", "fault", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        fault: Fault | None,
        delay: float,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.fault = fault
        self.delay = delay


class Backend(Protocol):
    """What the runners (in-process, socket) need of the fake that decides each answer.

    :class:`~hiveon_async.testing.FakeVendorAPI` is the one implementation;
    the runners type against this so that they need not import it.
    """

    record: bool
    open_connections: int

    def _receive(
        self,
        method: str,
        target: str,
        api_key: str | None,
        content_type: str | None,
        body: bytes,
        raw_headers: Iterable[tuple[bytes, bytes]],
    ) -> Reply:
        """Take in one request and decide its answer."""
        ...

    def _finish(self) -> None:
        """Count the answer as carried out."""
        ...

    def _next_request_id(self) -> str:
        """Count a request and return its ``X-Request-Id``."""
        ...
