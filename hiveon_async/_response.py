"""What an answer means: a StopResult, or the typed error, and whether the stop may have happened.

Every attempt's outcome is interpreted here, once: an answer from the server
(:func:`interpret`) or no answer at all (:func:`connection_error`). A hostile
or broken server cannot make the client raise anything but our own errors, or
smuggle a credential into an error message.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC

import httpx

from ._call import Call
from ._config import MAX_ERROR_BODY_CHARS
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseValidationError,
    ServerError,
)
from ._http_library import HTTPX, HttpLibrary
from ._models import StopResult
from ._quota import RateLimitState
from ._redact import redact_text, safe_raw_headers, safe_request, safe_response, scrub_chain
from ._response_headers import ResponseHeaders
from ._transport import Answer

_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
}
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SNIPPET_CHARS = 200


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Return the delay a ``Retry-After`` header asks for, in seconds, or None.

    Accepts delay-seconds (``"120"``, also ``"1.5"``) and an HTTP-date. Returns
    None for anything unusable (garbage, negative, infinite, ``nan``, dates in
    the past), so that the caller falls back to its own backoff. Never raises.

    Args:
        value: The header value, or None when there was none.
        now: The wall clock, for HTTP-dates.

    Returns:
        A finite delay >= 0, or None.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        delay = when.timestamp() - now()
    except (OverflowError, ValueError, OSError):  # pragma: no cover - platform limits
        return None
    return delay if delay > 0 else None


def _request_id(response: httpx.Response, secrets: Sequence[str]) -> str | None:
    value: str | None = response.headers.get("x-request-id")
    # The server sets it, so it may echo anything back: kept on the error, it is shown.
    return None if value is None else redact_text(value, secrets)


def _error_text(body: bytes, secrets: Sequence[str]) -> str:
    # Redact the whole (capped) body before cutting it: a cut first could split a
    # secret and leave its head unrecognised.
    text = body.decode("utf-8", errors="replace")
    return redact_text(text, secrets)[:MAX_ERROR_BODY_CHARS]


def _first(raw: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of the first header called ``name`` (lower-case), decoded, or None."""
    for key, value in raw:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def status_error(
    response: httpx.Response,
    body: bytes,
    call: Call,
    *,
    now: Callable[[], float] = time.time,
    rate_limit: RateLimitState | None = None,
) -> APIStatusError:
    """Return the typed error for a response whose status is not 2xx.

    Args:
        response: The response.
        body: Its body as read (possibly cut off).
        call: The call it answered (its id, secrets to redact, attempts so far).
        now: The wall clock, for a ``Retry-After`` given as an HTTP-date.
        rate_limit: What its rate-limit headers said, if anything.

    Returns:
        The error; the caller decides whether to raise or retry.
    """
    status = response.status_code
    cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIStatusError)
    secrets = call.secrets
    text = _error_text(body, secrets)
    request_id = _request_id(response, secrets)
    reason = redact_text(response.reason_phrase, secrets) or "error"
    message = f"HTTP {status} {reason} for deployment {call.deployment_id!r}"
    if 300 <= status < 400:
        message += " (redirects are never followed)"
    if request_id is not None:
        message += f" (request id {request_id})"
    snippet = " ".join(text[:_SNIPPET_CHARS].split())
    if snippet:
        message += f": {snippet}"
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    if (
        retry_after is None
        and status == 429
        and rate_limit is not None
        and rate_limit.remaining == 0
        and rate_limit.reset is not None
    ):
        # No Retry-After, but the rate-limit headers say none remain until the reset:
        # that is when to try again (as the common clients read them).
        retry_after = max(rate_limit.reset, 0.0)
    return cls(
        message,
        response=safe_response(response, text, secrets),
        body=text,
        request_id=request_id,
        retry_after=retry_after,
        rate_limit=rate_limit,
        deployment_id=call.deployment_id,
        attempts=call.attempts,
        maybe_applied=call.maybe_applied,
    )


def validation_error(
    reason: str,
    response: httpx.Response,
    body: bytes,
    call: Call,
    *,
    rate_limit: RateLimitState | None = None,
) -> ResponseValidationError:
    """Return the error for a 2xx response whose body is not what the contract promises."""
    request_id = _request_id(response, call.secrets)
    message = f"HTTP {response.status_code} for deployment {call.deployment_id!r}, but {reason}"
    if request_id is not None:
        message += f" (request id {request_id})"
    return ResponseValidationError(
        message,
        response=safe_response(response, _error_text(body, call.secrets), call.secrets),
        request_id=request_id,
        rate_limit=rate_limit,
        deployment_id=call.deployment_id,
        attempts=call.attempts,
        maybe_applied=call.maybe_applied,
    )


def body_problem(body: bytes, deployment_id: str) -> str | None:
    """Check that a success body confirms the stop of ``deployment_id``.

    Args:
        body: The 2xx body.
        deployment_id: The id that was asked for.

    Returns:
        None when it does, else a short reason why the body does not fit the
        contract.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON, bad UTF-8 and integers too long to convert.
        return "the body is not valid JSON"
    if not isinstance(data, dict):
        return "the body is not a JSON object"
    answered = data.get("deployment_id")
    if not isinstance(answered, str):
        return "the body has no string 'deployment_id'"
    if answered != deployment_id:
        return "the body names another deployment"
    return None


def interpret(
    answer: Answer,
    call: Call,
    *,
    elapsed: float,
    rate_limit: RateLimitState | None = None,
    wall: Callable[[], float] = time.time,
) -> StopResult:
    """Return the :class:`StopResult` of a 2xx answer, or raise the answer's typed error.

    Sets ``call.maybe_applied`` when the server may have acted: any 2xx whose
    body is unusable (it said it acted), and any 5xx.

    Args:
        answer: The attempt's answer.
        call: The call it answers.
        elapsed: Seconds since the call started.
        rate_limit: What the answer's rate-limit headers said, if anything.
        wall: The wall clock, to read a ``Retry-After`` given as an HTTP-date.

    Raises:
        ResponseValidationError: A 2xx whose body is not the documented shape.
        APIStatusError: Any other status (the subclass for it).
    """
    status = answer.status
    if 200 <= status < 300:
        problem = answer.problem or body_problem(answer.body, call.deployment_id)
        if problem is None:
            raw = safe_raw_headers(answer.raw_headers, call.secrets)
            return StopResult(
                deployment_id=call.deployment_id,
                request_id=_first(raw, b"x-request-id"),
                attempts=call.attempts,
                elapsed=elapsed,
                rate_limit=rate_limit,
                headers=ResponseHeaders(raw),
            )
        call.maybe_applied = True  # the server said it acted; only its answer is unusable
        raise validation_error(problem, answer.response, answer.body, call, rate_limit=rate_limit)
    if status >= 500:
        call.maybe_applied = True
    # An error status with an oversized or undecodable body is still that error.
    raise status_error(answer.response, answer.body, call, now=wall, rate_limit=rate_limit)


def connection_error(
    exc: Exception, call: Call, library: HttpLibrary = HTTPX
) -> APIConnectionError:
    """Return our error for an attempt that got no (complete) response.

    Sets ``call.maybe_applied`` unless the request cannot have left (a failed
    connect, a pool timeout, a request refused before sending). Redacts the
    secrets from ``exc`` and its causes, which may quote what was sent back.

    Args:
        exc: The ``TransportError`` of ``library`` (httpx's or httpx2's) raised.
        call: The call.
        library: The HTTP library the client speaks.
    """
    request = safe_request(call.request.httpx_request)
    exc.request = request  # type: ignore[attr-defined]  # a TransportError's
    scrub_chain(exc, call.secrets)
    if not isinstance(exc, library.not_sent):
        call.maybe_applied = True
    kind = APITimeoutError if isinstance(exc, library.timeouts) else APIConnectionError
    detail = redact_text(f"{type(exc).__name__}: {exc}", call.secrets)
    return kind(
        f"no response for deployment {call.deployment_id!r}: {detail}",
        request=request,
        deployment_id=call.deployment_id,
        attempts=call.attempts,
        maybe_applied=call.maybe_applied,
    )
