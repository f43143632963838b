"""One stop call's state across its attempts, and one attempt's answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import httpx

from ._retry import CallClock

if TYPE_CHECKING:
    from ._batch import BatchProgress

__all__ = ["Answer", "Call"]


class Call:
    """The state of one stop call across its attempts (internal).

    The ``httpx.Request`` is built only when something needs it (an httpx
    transport, or an error that keeps it): the aiohttp pool sends from the
    URL, headers and body directly.
    """

    __slots__ = (
        "_build",
        "_request",
        "abort",
        "attempts",
        "body",
        "clock",
        "deployment_id",
        "headers",
        "maybe_applied",
        "path",
        "progress",
        "secrets",
        "status",
        "url",
    )

    def __init__(
        self,
        deployment_id: str,
        *,
        url: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        build: Callable[[str, Mapping[str, str], bytes], httpx.Request],
        secrets: tuple[str, ...],
        clock: CallClock,
        abort: Callable[[], None] | None,
        progress: BatchProgress | None = None,
    ) -> None:
        self.deployment_id = deployment_id
        self.url = url
        self.path = path
        self.headers = headers
        self.body = body
        self._build = build
        self._request: httpx.Request | None = None
        self.secrets = secrets
        self.clock = clock
        self.abort = abort
        self.progress = progress
        self.attempts = 0
        self.maybe_applied = False
        self.status: int | None = None

    @property
    def request(self) -> httpx.Request:
        """The ``httpx.Request`` for this call, built once on first use."""
        if self._request is None:
            self._request = self._build(self.url, self.headers, self.body)
        return self._request


class Answer:
    """One attempt's response: status and body at once, the ``httpx.Response`` when needed.

    Success needs only the status and the body; errors keep a full
    ``httpx.Response``, which the aiohttp pool builds only then.
    """

    __slots__ = ("_make", "_response", "body", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        *,
        response: httpx.Response | None = None,
        make: Callable[[], httpx.Response] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self._response = response
        self._make = make

    @property
    def response(self) -> httpx.Response:
        """The response as an ``httpx.Response`` (body already read)."""
        if self._response is None:
            assert self._make is not None
            self._response = self._make()
        return self._response
