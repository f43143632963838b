"""Every error the client raises.

One root, two branches: no response at all, and a response that said no::

    HiveonError
    ├── InvalidRequestError (also ValueError)   bad id / metadata / key / config; before any I/O
    ├── APIConnectionError                      no response: refused, reset, closed, protocol error
    │   └── APITimeoutError
    ├── APIStatusError                          status_code, response, body, request_id, attempts
    │   ├── BadRequestError 400
    │   ├── AuthenticationError 401
    │   ├── PermissionDeniedError 403
    │   ├── NotFoundError 404
    │   ├── RateLimitedError 429                retry_after
    │   └── ServerError 5xx
    ├── ResponseValidationError                 2xx whose body is not the documented shape
    └── BatchFailedError                        BatchReport.raise_for_failures(): report

A closed client raises ``ClientClosedError``, which is a ``RuntimeError`` first
(what a closed client has always raised) and a ``HiveonError`` too, so that a
batch outcome can carry it. It is not drawn above: catch it as ``RuntimeError``.

``BatchFailedError`` lives beside ``BatchReport`` (:mod:`hiveon_async._models`),
which it carries: errors sit below models, never the other way round.

No error ever holds a credential: messages and bodies pass through
:mod:`hiveon_async._redact` before they are stored, and the request kept on an
error has its ``X-API-Key`` header and its body removed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._response_headers import ResponseHeaders

if TYPE_CHECKING:
    import httpx

    from ._quota import RateLimitState

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "HiveonError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseValidationError",
    "ServerError",
]


class HiveonError(Exception):
    """The root of every error raised by hiveon-async.

    Attributes:
        message: A human-readable description, free of secrets.
        deployment_id: The deployment the failed call was about, if known.
        attempts: How many requests were sent for the call (0 when none was).
        maybe_applied: True when an earlier attempt may have reached the
            server, so the stop may have happened despite this error.
        elapsed: Seconds from the call's start until it ended with this error
            (0.0 for an error raised before the call started, such as a bad id).
    """

    #: Set by the client when the call ends with this error.
    elapsed: float = 0.0

    def __init__(
        self,
        message: str,
        *,
        deployment_id: str | None = None,
        attempts: int = 0,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.deployment_id = deployment_id
        self.attempts = attempts
        self.maybe_applied = maybe_applied

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidRequestError(HiveonError, ValueError):
    """The input is unusable: raised before any I/O, never retried.

    Raised for a malformed deployment id, metadata that is not a mapping of
    strings, a missing or malformed credential, or a bad configuration value.
    The message names the offending field (or environment variable), never a
    secret value.
    """


class APIConnectionError(HiveonError):
    """No response was received: connection refused or reset, closed early, protocol error.

    The underlying ``httpx`` exception is chained as ``__cause__``.

    Attributes:
        request: The request that failed, without credentials, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        request: httpx.Request | None = None,
        deployment_id: str | None = None,
        attempts: int = 0,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(
            message, deployment_id=deployment_id, attempts=attempts, maybe_applied=maybe_applied
        )
        self.request = request


class APITimeoutError(APIConnectionError):
    """The attempt, or the whole call's deadline, ran out before a response arrived."""


#: The (response, request) classes of kept responses: httpx's, and httpx2's when in use.
_KINDS: dict[tuple[type[Any], type[Any]], tuple[type[Any], type[Any]]] = {}


class _PackedResponse:
    """A kept response, packed small; the ``httpx.Response`` is rebuilt when asked for.

    A batch of a million failed ids keeps a million errors: an ``httpx.Response``
    with its request costs about 2.5 KiB, these few fields a fraction of that
    (the request headers, the same for every call of a client, are shared).
    """

    __slots__ = (
        "content",
        "extensions",
        "headers",
        "kinds",
        "method",
        "request_headers",
        "status",
        "url",
    )

    def __init__(self, response: httpx.Response) -> None:
        request = response.request
        # Rebuilt of the same classes: httpx2's for a client that speaks httpx2.
        kinds = (type(response), type(request))
        self.kinds = _KINDS.setdefault(kinds, kinds)  # one tuple per pair: adds no object
        self.status = response.status_code
        self.headers = tuple(response.headers.raw)
        self.content = response.content
        self.extensions = response.extensions or None
        self.method = request.method
        self.url = str(request.url)
        self.request_headers = _shared(tuple(request.headers.raw))

    def unpack(self) -> httpx.Response:
        response_type, request_type = self.kinds
        response: httpx.Response = response_type(
            self.status,
            headers=list(self.headers),
            content=self.content,
            request=request_type(self.method, self.url, headers=list(self.request_headers)),
        )
        if self.extensions is not None:
            response.extensions = dict(self.extensions)
        return response


@functools.lru_cache(maxsize=64)
def _shared(headers: tuple[tuple[bytes, bytes], ...]) -> tuple[tuple[bytes, bytes], ...]:
    """One copy of each set of request headers (a client sends the same ones every time)."""
    return headers


class _KeepsResponse:
    """Mixin: ``response`` as given, or packed (:class:`_PackedResponse`) once compacted.

    Packed, the response is rebuilt (once) when read: a copy, equal in status,
    headers, body and request, not the same object.
    """

    # One attribute, not two: a batch keeps an error per failed id, and each attribute
    # of an error is a slot in its __dict__ (an eleventh one doubles the dict's table).
    _kept: httpx.Response | _PackedResponse | None

    def _keep(self, response: httpx.Response | None) -> None:
        self._kept = response

    def _compact(self) -> None:
        """Keep the response packed from now on (a batch does, for each outcome it keeps)."""
        response = self._kept
        if response is None or isinstance(response, _PackedResponse):
            return
        try:
            self._kept = _PackedResponse(response)
        except RuntimeError:  # no request set on it, or a body not read: kept as it is
            return

    @property
    def response(self) -> Any:
        """The response (a copy without credentials, its body already read and capped)."""
        kept = self._kept
        if isinstance(kept, _PackedResponse):
            kept = self._kept = kept.unpack()  # rebuilt once; the same object from then on
        return kept

    @response.setter
    def response(self, response: httpx.Response | None) -> None:
        self._keep(response)

    @property
    def headers(self) -> Mapping[str, str]:
        """The response's headers as a :class:`~hiveon_async.StopResult` holds them.

        Names lower-cased, repeats joined with ``", "``, credentials redacted
        (body framing headers, which no longer describe the kept body, left out).
        Empty when there was no response.
        """
        response = self.response
        return ResponseHeaders(() if response is None else response.headers.raw)


class APIStatusError(HiveonError, _KeepsResponse):
    """The server answered with a status that is not success.

    Attributes:
        status_code: The HTTP status of the last attempt.
        response: The last response (its body already read and capped).
        body: The response body as text, at most 2 KiB, secrets redacted.
        request_id: The server's ``X-Request-Id``, when it sent one.
        retry_after: The server's ``Retry-After`` in seconds, when it sent a
            usable one.
        rate_limit: What the response's rate-limit headers said, parsed, or
            None (as on :class:`~hiveon_async.StopResult`).
        headers: The response's headers, credentials redacted (as on
            :class:`~hiveon_async.StopResult`).
    """

    rate_limit: RateLimitState | None = None

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: str,
        request_id: str | None,
        retry_after: float | None = None,
        rate_limit: RateLimitState | None = None,
        deployment_id: str | None = None,
        attempts: int = 0,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(
            message, deployment_id=deployment_id, attempts=attempts, maybe_applied=maybe_applied
        )
        self._keep(response)
        self.status_code = response.status_code
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after
        if rate_limit is not None:  # else the class's None: one slot less per kept error
            self.rate_limit = rate_limit


class BadRequestError(APIStatusError):
    """400: the server could not understand the request (a field missing or malformed)."""


class AuthenticationError(APIStatusError):
    """401: no valid credentials; check ``X-API-Key`` (``$HIVEON_API_KEY``)."""


class PermissionDeniedError(APIStatusError):
    """403: authenticated, but not allowed to act on this deployment."""


class NotFoundError(APIStatusError):
    """404: no such deployment.

    When ``maybe_applied`` is true, an earlier attempt may already have stopped
    it: the 404 can mean "already gone" rather than "never existed".
    """


class RateLimitedError(APIStatusError):
    """429: the server is throttling the client; see ``retry_after``."""


class ServerError(APIStatusError):
    """5xx: the server failed; retried by default."""


class ResponseValidationError(HiveonError, _KeepsResponse):
    """A 2xx response whose body is not the documented shape, or is too large.

    Not retried: the server claims success, so sending again would not help;
    and since it may well have acted, ``maybe_applied`` is always true.

    Attributes:
        response: The offending response, when there was one.
        request_id: The server's ``X-Request-Id``, when it sent one.
        rate_limit: What the response's rate-limit headers said, parsed, or None.
        headers: The response's headers, credentials redacted.
    """

    rate_limit: RateLimitState | None = None

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response | None = None,
        request_id: str | None = None,
        rate_limit: RateLimitState | None = None,
        deployment_id: str | None = None,
        attempts: int = 0,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(
            message, deployment_id=deployment_id, attempts=attempts, maybe_applied=maybe_applied
        )
        self._keep(response)
        self.request_id = request_id
        if rate_limit is not None:  # else the class's None: one slot less per kept error
            self.rate_limit = rate_limit


#: The message of every error about a closed client (documented; tests match it).
CLOSED_MESSAGE = "this AsyncVendorClient is closed"


class ClientClosedError(HiveonError, RuntimeError):
    """The client was closed: a call made after :meth:`aclose`, or pending when it ran.

    Also a ``RuntimeError``, which is what a closed client has always raised,
    so ``except RuntimeError`` keeps working; being a :class:`HiveonError`, a
    batch outcome can carry it. Nothing was sent for the call after the close
    (``attempts`` counts what was sent before it).
    """

    def __init__(
        self,
        message: str = CLOSED_MESSAGE,
        *,
        deployment_id: str | None = None,
        attempts: int = 0,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(
            message, deployment_id=deployment_id, attempts=attempts, maybe_applied=maybe_applied
        )


def compact(error: HiveonError) -> None:
    """Make ``error`` small to keep: its response packed (see :class:`_PackedResponse`)."""
    if isinstance(error, _KeepsResponse):
        error._compact()
