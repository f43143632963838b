"""Reading a response: a size-capped body, status to error, JSON to StopResult.

A hostile or broken server cannot make the client read an unbounded body (the
read stops after :data:`~hiveon_async._config.MAX_RESPONSE_BYTES`, also after
decompression), raise anything but our own errors, or smuggle a credential into
an error message.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC

import httpx

from ._config import MAX_ERROR_BODY_CHARS, MAX_RESPONSE_BYTES
from ._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseValidationError,
    ServerError,
)
from ._models import StopResult
from ._redact import redact_text, safe_response

_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
}
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SNIPPET_CHARS = 200


class UnreadableBodyError(Exception):
    """Internal: the body could not be read within the rules; ``response`` is set by the wire."""

    response: httpx.Response


class BodyTooLargeError(UnreadableBodyError):
    """Internal: the body passed the cap; carries what was read so far."""

    def __init__(self, head: bytes) -> None:
        super().__init__("response body over the size cap")
        self.head = head


class UndecodableBodyError(UnreadableBodyError):
    """Internal: the body uses a content encoding we do not decode, or is corrupt."""


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


def _decompressor(encoding: str) -> zlib._Decompress | None:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise UndecodableBodyError(f"unsupported content-encoding {encoding!r}")


async def read_body(response: httpx.Response, *, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Read a streamed ``httpx.Response``'s body, never holding more than ``limit`` bytes.

    Args:
        response: A response opened with ``stream=True``.
        limit: The most bytes to accept.

    Returns:
        The decoded body.

    Raises:
        BodyTooLargeError: The body is larger than ``limit``.
        UndecodableBodyError: Unknown content encoding or corrupt compression.
    """
    headers = response.headers
    if response.is_stream_consumed:  # a transport that hands over read responses (mocks)
        check_declared_length(headers.get("content-length"), limit)
        if len(response.content) > limit:
            raise BodyTooLargeError(response.content[:limit])
        return response.content
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)  # a response of an async transport
    raws = stream.__aiter__()
    try:
        return await read_capped(
            raws,
            content_length=headers.get("content-length"),
            content_encoding=headers.get("content-encoding"),
            limit=limit,
        )
    except BaseException:
        # Leaving early (the cap, an error, a cancellation) must close the body's
        # generators now, not at GC. Read to the end, they have finished by themselves.
        await close_iterator(raws)
        raise


async def close_iterator(iterator: AsyncIterator[bytes]) -> None:
    """Close an async generator left part-way (a no-op for other iterators)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def check_declared_length(content_length: str | None, limit: int) -> None:
    """Refuse a body whose Content-Length is over ``limit`` before reading any of it."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise BodyTooLargeError(b"")


async def read_capped(
    chunks: AsyncIterator[bytes],
    *,
    content_length: str | None,
    content_encoding: str | None,
    limit: int = MAX_RESPONSE_BYTES,
) -> bytes:
    """Read raw body chunks, decoding them, never holding more than ``limit`` bytes.

    The cap applies to the decoded body too, so a small gzip bomb cannot
    expand in memory.

    Args:
        chunks: The body as it arrives (still content-encoded).
        content_length: The Content-Length header, if any.
        content_encoding: The Content-Encoding header, if any.
        limit: The most bytes to accept.

    Returns:
        The decoded body.

    Raises:
        BodyTooLargeError: The body is larger than ``limit`` (by its
            Content-Length or as it streamed).
        UndecodableBodyError: Unknown content encoding or corrupt compression.
    """
    check_declared_length(content_length, limit)
    decoder = _decompressor(content_encoding) if content_encoding else None
    parts: list[bytes] = []
    size = 0
    async for raw in chunks:
        if decoder is None:
            chunk = raw
        else:
            try:
                chunk = decoder.decompress(raw, limit + 1 - size)
            except zlib.error as exc:
                raise UndecodableBodyError("corrupt compressed body") from exc
        parts.append(chunk)
        size += len(chunk)
        if size > limit or (decoder is not None and decoder.unconsumed_tail):
            raise BodyTooLargeError(b"".join(parts)[:limit])
    if decoder is not None and not decoder.eof:
        raise UndecodableBodyError("truncated compressed body")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _request_id(response: httpx.Response, secrets: Sequence[str]) -> str | None:
    value: str | None = response.headers.get("x-request-id")
    # The server sets it, so it may echo anything back: kept on the error, it is shown.
    return None if value is None else redact_text(value, secrets)


def _error_text(body: bytes, secrets: Sequence[str]) -> str:
    # Redact the whole (capped) body before cutting it: a cut first could split a
    # secret and leave its head unrecognised.
    text = body.decode("utf-8", errors="replace")
    return redact_text(text, secrets)[:MAX_ERROR_BODY_CHARS]


def status_error(
    response: httpx.Response,
    body: bytes,
    *,
    deployment_id: str,
    secrets: Sequence[str],
    attempts: int,
    maybe_applied: bool,
) -> APIStatusError:
    """Return the typed error for a response whose status is not 2xx.

    Args:
        response: The response.
        body: Its body as read (possibly cut off).
        deployment_id: The deployment the call was about.
        secrets: Values to redact from the stored body and the message.
        attempts: Requests sent for the call so far, this one included.
        maybe_applied: Whether an earlier attempt may have reached the server.

    Returns:
        The error; the caller decides whether to raise or retry.
    """
    status = response.status_code
    cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIStatusError)
    text = _error_text(body, secrets)
    request_id = _request_id(response, secrets)
    reason = redact_text(response.reason_phrase, secrets) or "error"
    message = f"HTTP {status} {reason} for deployment {deployment_id!r}"
    if 300 <= status < 400:
        message += " (redirects are never followed)"
    if request_id is not None:
        message += f" (request id {request_id})"
    snippet = " ".join(text[:_SNIPPET_CHARS].split())
    if snippet:
        message += f": {snippet}"
    return cls(
        message,
        response=safe_response(response, text, secrets),
        body=text,
        request_id=request_id,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        deployment_id=deployment_id,
        attempts=attempts,
        maybe_applied=maybe_applied,
    )


def validation_error(
    reason: str,
    response: httpx.Response,
    body: bytes,
    *,
    deployment_id: str,
    secrets: Sequence[str],
    attempts: int,
    maybe_applied: bool,
) -> ResponseValidationError:
    """Return the error for a 2xx response whose body is not what the contract promises."""
    request_id = _request_id(response, secrets)
    message = f"HTTP {response.status_code} for deployment {deployment_id!r}, but {reason}"
    if request_id is not None:
        message += f" (request id {request_id})"
    return ResponseValidationError(
        message,
        response=safe_response(response, _error_text(body, secrets), secrets),
        request_id=request_id,
        deployment_id=deployment_id,
        attempts=attempts,
        maybe_applied=maybe_applied,
    )


def parse_stop_result(body: bytes, deployment_id: str) -> StopResult | str:
    """Parse a success body into a :class:`StopResult`.

    Args:
        body: The 2xx body.
        deployment_id: The id that was asked for.

    Returns:
        The result, or a short reason why the body does not fit the contract.
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
    return StopResult(deployment_id=answered)
