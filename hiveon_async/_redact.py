"""The one place that knows what a secret looks like, and hides it.

Two credentials travel with every call: the ``X-API-Key`` header and
``metadata.CLORE_API_KEY``. Anything that may be shown to a person (an error
message, a stored response body, a log line, a request kept on an error)
passes through here first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx

REDACTED = "[redacted]"

#: Header names whose values are credentials.
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})

# A JSON member whose name looks like a credential, e.g. "CLORE_API_KEY": "...".
# Servers may echo the request body in an error; this hides the value even when
# we do not know it (for example a key the server returned that we never sent).
_SECRET_MEMBER = re.compile(
    r'("(?:[^"\\]*(?:api[_-]?key|secret|token|password)[^"\\]*)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every known secret and every credential-looking JSON value hidden.

    Args:
        text: Any text that may be shown to a person.
        secrets: The secret values in play (empty strings are ignored).

    Returns:
        The text with each secret replaced by ``[redacted]``.
    """
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return _SECRET_MEMBER.sub(rf'\1"{REDACTED}"', text)


def safe_request(request: httpx.Request) -> httpx.Request:
    """Return a copy of ``request`` fit to keep on an error: no credential headers, no body.

    Args:
        request: The request as it was sent.

    Returns:
        A new request with the same method and URL, credential headers
        replaced by ``[redacted]`` and an empty body.
    """
    headers = [
        (name, REDACTED if name.lower() in SECRET_HEADERS else value)
        for name, value in request.headers.items()
        if name.lower() != "content-length"
    ]
    return httpx.Request(request.method, request.url, headers=headers)


def safe_response(response: httpx.Response, body: str) -> httpx.Response:
    """Return a copy of ``response`` that points at a :func:`safe_request` and holds ``body``.

    Args:
        response: The response as it was received.
        body: The body to keep: already truncated and redacted.

    Returns:
        A new, already-read response that is safe to keep on an error.
    """
    headers = [
        (name, REDACTED if name.lower() in SECRET_HEADERS else value)
        for name, value in response.headers.items()
        if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
    ]
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
