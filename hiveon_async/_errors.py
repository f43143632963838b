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

``BatchFailedError`` lives beside ``BatchReport`` (:mod:`hiveon_async._models`),
which it carries: errors sit below models, never the other way round.

No error ever holds a credential: messages and bodies pass through
:mod:`hiveon_async._redact` before they are stored, and the request kept on an
error has its ``X-API-Key`` header and its body removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
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
    """

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


class APIStatusError(HiveonError):
    """The server answered with a status that is not success.

    Attributes:
        status_code: The HTTP status of the last attempt.
        response: The last response (its body already read and capped).
        body: The response body as text, at most 2 KiB, secrets redacted.
        request_id: The server's ``X-Request-Id``, when it sent one.
        retry_after: The server's ``Retry-After`` in seconds, when it sent a
            usable one.
    """

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: str,
        request_id: str | None,
        retry_after: float | None = None,
        deployment_id: str | None = None,
        attempts: int = 0,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(
            message, deployment_id=deployment_id, attempts=attempts, maybe_applied=maybe_applied
        )
        self.response = response
        self.status_code = response.status_code
        self.body = body
        self.request_id = request_id
        self.retry_after = retry_after


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


class ResponseValidationError(HiveonError):
    """A 2xx response whose body is not the documented shape, or is too large.

    Not retried: the server claims success, so sending again would not help;
    and since it may well have acted, ``maybe_applied`` is always true.

    Attributes:
        response: The offending response, when there was one.
        request_id: The server's ``X-Request-Id``, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response | None = None,
        request_id: str | None = None,
        deployment_id: str | None = None,
        attempts: int = 0,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(
            message, deployment_id=deployment_id, attempts=attempts, maybe_applied=maybe_applied
        )
        self.response = response
        self.request_id = request_id
