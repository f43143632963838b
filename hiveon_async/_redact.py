"""The one place that knows what a secret looks like, and hides it.

Two credentials travel with every call: the ``X-API-Key`` header and
``metadata.CLORE_API_KEY``. Anything that may be shown to a person (an error
message, a stored response body, a log line, a request kept on an error)
passes through here first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import httpx

REDACTED = "[redacted]"

#: Header names whose values are credentials.
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})

#: Headers about the body as it came over the wire, which a kept copy no longer is.
_FRAMING = frozenset({b"content-length", b"content-encoding", b"transfer-encoding"})
_KEEP_ALL: frozenset[bytes] = frozenset()
_SECRET_HEADER_NAMES = frozenset(name.encode() for name in SECRET_HEADERS)

# Printable ASCII but quotes and backslashes: what no JSON or repr escaping changes.
_ONE_SPELLING = re.compile(r"[ !#-&(-\[\]-~]+")

# A JSON member whose name looks like a credential, e.g. "CLORE_API_KEY": "...".
# Servers may echo the request body in an error; this hides the value even when
# we do not know it (for example a key the server returned that we never sent).
_SECRET_MEMBER = re.compile(
    r'("(?:[^"\\]*(?:api[_-]?key|secret|token|password)[^"\\]*)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
_SECRET_MEMBER_BYTES = re.compile(_SECRET_MEMBER.pattern.encode(), re.IGNORECASE)


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


def safe_raw_headers(
    raw: Sequence[tuple[bytes, bytes]], secrets: Sequence[str]
) -> Sequence[tuple[bytes, bytes]]:
    """Return response headers safe to keep on a result: ``raw`` itself when it is.

    Every success passes here, so the common case is one look at the values:
    each is redacted (and a credential header's value replaced) only when a
    secret, a credential header, or a credential-looking JSON member may be
    among them.

    Args:
        raw: The headers as received: (name, value) pairs of bytes.
        secrets: Values to hide (a server may echo them).
    """
    values = []
    for name, value in raw:
        if name.lower() in _SECRET_HEADER_NAMES:
            return _safe_headers(raw, _KEEP_ALL, secrets)
        values.append(value)
    joined = b"\n".join(values)
    if (b'"' in joined and _SECRET_MEMBER_BYTES.search(joined)) or any(
        _may_hold(joined, secret) for secret in secrets
    ):
        return _safe_headers(raw, _KEEP_ALL, secrets)
    return raw


def _may_hold(data: bytes, secret: str) -> bool:
    """False only when ``data`` cannot hold ``secret``, however escaped (a cheap first look).

    JSON and ``repr`` escape quotes, backslashes, control and non-ASCII
    characters: a secret of printable ASCII without those has one spelling.
    """
    if not secret:
        return False
    if secret.isalnum() and secret.isascii():  # the common key: a plain search decides
        return secret.encode() in data
    if _ONE_SPELLING.fullmatch(secret):
        return secret.encode() in data
    return True


def drop_frames(error: BaseException) -> None:
    """Drop the traceback of ``error`` and of every exception chained to it; keep the rest.

    A traceback keeps every frame it passed through alive, and with them their
    locals: a library's request headers (``X-API-Key``) and body
    (``CLORE_API_KEY``), which a traceback capturing locals (Sentry, ``pytest
    -l``, rich, loguru) prints. It is also most of what an error kept on a
    batch outcome costs in memory. The type, message and attributes stay.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__


def scrub_chain(error: BaseException, secrets: Sequence[str], *, frames: bool = False) -> None:
    """Hide secrets in the messages of ``error`` and of every exception chained to it.

    A parser's error may quote what the server sent (an echoed key, say), and a
    traceback prints every chained exception. Messages and string attributes
    that show a secret are redacted; an exception that still shows one after
    that (its ``__str__`` reads something else) is cut from the chain. Unless
    ``frames`` is true, the tracebacks of the chain are dropped too
    (:func:`drop_frames`): their frames' locals hold what was sent.
    """
    if not frames:
        drop_frames(error)
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
    # Of the request's own class: httpx2's for a client that speaks httpx2.
    return type(request)(request.method, request.url, headers=headers)


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
    copy = type(response)(
        response.status_code,
        headers=headers,
        content=body.encode(),
        request=safe_request(response.request),
    )
    copy.extensions = {
        key: value for key, value in response.extensions.items() if key == "http_version"
    }
    return copy


# -- other libraries' loggers ----------------------------------------------------------

#: The loggers of the libraries that send for us, which may quote what a server echoed
#: (httpx's request line with its reason phrase, httpcore's trace of the response head,
#: aiohttp's errors). A filter on a logger sees only the records made by that very
#: logger, not its children's, so each one that logs is named.
LIBRARY_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    # httpx2 and httpcore2 (the httpx2 extra) log the same records under their own names.
    "httpx2",
    "httpcore2.connection",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.proxy",
    "httpcore2.socks",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
)


class SecretLogFilter(logging.Filter):
    """Redacts the secrets of every live client from the records of the loggers it is on.

    One instance serves the process. Clients register their secrets while they
    are alive (:func:`hide_in_logs`). The filter costs nothing for records
    below a logger's level (they are never made), and with no client alive it
    passes records untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self._counts: Counter[str] = Counter()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        # Secrets to forget, queued: a client collected unclosed is forgotten by a GC
        # finalizer, which may run anywhere, even inside add() on this very thread.
        self._pending: list[tuple[str, ...]] = []

    def add(self, secrets: tuple[str, ...]) -> None:
        """Hide ``secrets`` from now on (counted: two clients may share a key)."""
        with self._lock:
            self._forget_pending()
            for secret in secrets:
                self._counts[secret] += 1
            self._secrets = tuple(self._counts)

    def remove(self, secrets: tuple[str, ...]) -> None:
        """Stop hiding ``secrets`` once no other live client holds them.

        Safe from a finalizer: it only queues them when the lock is busy (held
        by another thread, or by an ``add`` this finalizer interrupted).
        """
        self._pending.append(secrets)  # atomic under the GIL
        if self._lock.acquire(blocking=False):
            try:
                self._forget_pending()
                self._secrets = tuple(self._counts)
            finally:
                self._lock.release()

    def _forget_pending(self) -> None:
        counts = self._counts
        while self._pending:
            for secret in self._pending.pop():
                counts[secret] -= 1
                if counts[secret] <= 0:
                    del counts[secret]

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format is logging's to report
            return True
        redacted = redact_text(message, secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact_text(text, secrets)
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text, secrets)
        return True


_LOG_FILTER = SecretLogFilter()
_installed = False


def hide_in_logs(secrets: Sequence[str]) -> Callable[[], None]:
    """Redact ``secrets`` from the sending libraries' log records until the returned undo is called.

    The filters are installed once per process, on first use (per client, not
    per request); the undo is idempotent.
    """
    global _installed
    if not _installed:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(_LOG_FILTER)
        _installed = True
    kept = tuple(secret for secret in secrets if secret)
    _LOG_FILTER.add(kept)
    done = False

    def undo() -> None:
        nonlocal done
        if not done:
            done = True
            _LOG_FILTER.remove(kept)

    return undo
