"""The one place that knows what a secret looks like, and hides it.

Two credentials travel with every call: the ``X-API-Key`` header and
``metadata.CLORE_API_KEY``. Anything that may be shown to a person (an error
message, a stored response body, a log line, a request kept on an error)
passes through here first.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Sequence

import httpx

REDACTED = "[redacted]"

#: Header names whose values are credentials.
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})

#: Headers about the body as it came over the wire, which a kept copy no longer is.
_FRAMING = frozenset({b"content-length", b"content-encoding", b"transfer-encoding"})

# A JSON member whose name looks like a credential, e.g. "CLORE_API_KEY": "...".
# Servers may echo the request body in an error; this hides the value even when
# we do not know it (for example a key the server returned that we never sent).
_SECRET_MEMBER = re.compile(
    r'("(?:[^"\\]*(?:api[_-]?key|secret|token|password)[^"\\]*)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every known secret and every credential-looking JSON value hidden.

    A secret is hidden as written and as JSON or a bytes ``repr`` would escape it
    (how an echoed body or a parser's error message may quote it).

    Args:
        text: Any text that may be shown to a person.
        secrets: The secret values in play (empty strings are ignored).

    Returns:
        The text with each secret replaced by ``[redacted]``.
    """
    for secret in secrets:
        for spelling in _spellings(secret):
            if spelling in text:
                text = text.replace(spelling, REDACTED)
    return _SECRET_MEMBER.sub(rf'\1"{REDACTED}"', text)


def _spellings(secret: str) -> tuple[str, ...]:
    """The secret, and how JSON or a ``repr`` escapes it, once or twice (longest first).

    A parser's error message may quote the bytes a server sent (a ``repr``), and
    that message may be quoted in turn.
    """
    if not secret:
        return ()
    if secret.isalnum() and secret.isascii():
        return (secret,)  # nothing to escape: the common case, kept cheap
    spellings = {secret}
    for _ in range(2):
        spellings |= {escaped for spelling in spellings for escaped in _escapes(spelling)}
    return tuple(sorted(spellings, key=len, reverse=True))


def _escapes(text: str) -> set[str]:
    escaped = {json.dumps(text)[1:-1], repr(text)[1:-1]}
    with contextlib.suppress(UnicodeEncodeError):
        escaped.add(repr(text.encode())[2:-1])
    return escaped


def _redact_value(value: bytes, secrets: Iterable[str]) -> bytes:
    """Redact a raw header value (any bytes survive the round trip)."""
    text = value.decode("utf-8", "surrogateescape")
    redacted = redact_text(text, secrets)
    return value if redacted == text else redacted.encode("utf-8", "surrogateescape")


def _safe_headers(
    raw: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes], secrets: Iterable[str]
) -> list[tuple[bytes, bytes]]:
    # Raw bytes in, raw bytes out: a header value that is not ASCII stays what it was
    # (httpx would refuse to re-encode its decoded text).
    kept = [secret for secret in secrets if secret]
    headers = []
    for name, value in raw:
        lowered = name.lower()
        if lowered in drop:
            continue
        if lowered.decode("latin-1") in SECRET_HEADERS:
            value = REDACTED.encode()
        elif kept:
            value = _redact_value(value, kept)
        headers.append((name, value))
    return headers


def scrub_chain(error: BaseException, secrets: Sequence[str]) -> None:
    """Hide secrets in the messages of ``error`` and of every exception chained to it.

    A parser's error may quote what the server sent (an echoed key, say), and a
    traceback prints every chained exception. Messages and string attributes
    that show a secret are redacted; an exception that still shows one after
    that (its ``__str__`` reads something else) is cut from the chain.
    """
    kept = [secret for secret in secrets if secret]
    if not kept:
        return
    seen: set[int] = set()
    parent: BaseException | None = None
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _shows(current, kept):
            current.args = (redact_text(str(current), kept),)
            for name, value in list(vars(current).items()):
                if isinstance(value, str):
                    setattr(current, name, redact_text(value, kept))
            if _shows(current, kept) and parent is not None:
                parent.__cause__ = parent.__context__ = None
                parent.__suppress_context__ = True
                return
        parent, current = current, current.__cause__ or current.__context__


def _shows(error: BaseException, secrets: Sequence[str]) -> bool:
    try:
        texts = (str(error), repr(error))
    except Exception:  # a broken __str__ shows nothing
        return False
    return any(
        spelling in text for secret in secrets for spelling in _spellings(secret) for text in texts
    )


def safe_request(request: httpx.Request) -> httpx.Request:
    """Return a copy of ``request`` fit to keep on an error: no credential headers, no body.

    Args:
        request: The request as it was sent.

    Returns:
        A new request with the same method and URL, credential headers
        replaced by ``[redacted]`` and an empty body.
    """
    headers = _safe_headers(request.headers.raw, frozenset({b"content-length"}), ())
    return httpx.Request(request.method, request.url, headers=headers)


def safe_response(
    response: httpx.Response, body: str, secrets: Iterable[str] = ()
) -> httpx.Response:
    """Return a copy of ``response`` that points at a :func:`safe_request` and holds ``body``.

    Args:
        response: The response as it was received.
        body: The body to keep: already truncated and redacted.
        secrets: Values to hide in the headers kept (a server may echo them).

    Returns:
        A new, already-read response that is safe to keep on an error.
    """
    headers = _safe_headers(response.headers.raw, _FRAMING, secrets)
    copy = httpx.Response(
        response.status_code,
        headers=headers,
        content=body.encode(),
        request=safe_request(response.request),
    )
    copy.extensions = {
        key: value for key, value in response.extensions.items() if key == "http_version"
    }
    return copy
