"""Redaction: known secrets and credential-looking JSON values never leave in clear."""

from __future__ import annotations

import httpx
import pytest

from hiveon_async._redact import (
    REDACTED,
    redact_text,
    safe_raw_headers,
    safe_request,
    safe_response,
)
from hiveon_async._response_headers import ResponseHeaders

KEYS = ("hk-123456", "ck-abcdef")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key hk-123456 and hk-123456", f"key {REDACTED} and {REDACTED}"),
        ("ck-abcdef:hk-123456", f"{REDACTED}:{REDACTED}"),
        ("nothing secret", "nothing secret"),
        ('{"CLORE_API_KEY": "unknown-value"}', f'{{"CLORE_API_KEY": "{REDACTED}"}}'),
        ('{"x-api-key":"v"}', f'{{"x-api-key":"{REDACTED}"}}'),
        ('{"apiKey" : "v"}', f'{{"apiKey" : "{REDACTED}"}}'),
        ('{"client_secret": "a\\"b"}', f'{{"client_secret": "{REDACTED}"}}'),
        ('{"Token": "t", "Password": "p"}', f'{{"Token": "{REDACTED}", "Password": "{REDACTED}"}}'),
        ('{"deployment_id": "d", "region": "eu"}', '{"deployment_id": "d", "region": "eu"}'),
        ('{"CLORE_API_KEY": 5}', '{"CLORE_API_KEY": 5}'),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    """Known secrets anywhere, and the value of any JSON member named like a credential."""
    assert redact_text(text, KEYS) == expected


def test_empty_secrets_are_ignored() -> None:
    """An empty secret would match everywhere; it is skipped."""
    assert redact_text("plain text", ["", "absent"]) == "plain text"


def sent_request() -> httpx.Request:
    return httpx.Request(
        "POST",
        "https://api.test/vendors/v1/machines/deployments/d/stop",
        headers={
            "X-API-Key": "hk-123456",
            "Authorization": "Bearer t",
            "Cookie": "s=1",
            "User-Agent": "ua",
        },
        content=b'{"metadata": {"CLORE_API_KEY": "ck-abcdef"}}',
    )


def test_safe_request_hides_credentials_and_drops_the_body() -> None:
    """Same method and URL; credential headers redacted, others kept; no body."""
    safe = safe_request(sent_request())

    assert (safe.method, str(safe.url)) == ("POST", str(sent_request().url))
    assert [safe.headers[name] for name in ("X-API-Key", "Authorization", "Cookie")] == [
        REDACTED
    ] * 3
    assert safe.headers["User-Agent"] == "ua"
    assert safe.headers["Content-Length"] == "0"
    assert safe.content == b""


def test_safe_response_keeps_the_status_and_only_the_given_body() -> None:
    """A read copy with the stored body, a safe request, and no transfer framing headers."""
    response = httpx.Response(
        502,
        headers={"Content-Encoding": "gzip", "X-Request-Id": "r", "Set-Cookie": "x"},
        content=b"",
        request=sent_request(),
        extensions={"http_version": b"HTTP/1.1", "network_stream": object()},
    )

    safe = safe_response(response, "kept body")

    assert safe.status_code == 502
    assert safe.text == "kept body"
    assert "content-encoding" not in safe.headers
    assert safe.headers["X-Request-Id"] == "r"
    assert safe.request.headers["X-API-Key"] == REDACTED
    assert safe.extensions == {"http_version": b"HTTP/1.1"}


def test_the_log_filter_forgets_from_a_finalizer_without_deadlock() -> None:
    """A client collected inside add() (a GC finalizer, same thread) queues its removal."""
    from hiveon_async._redact import SecretLogFilter

    log_filter = SecretLogFilter()
    log_filter.add(("key-one-123456",))
    with log_filter._lock:  # as when the GC runs a finalizer in the middle of add()
        log_filter.remove(("key-one-123456",))  # must not block
    assert log_filter._secrets == ("key-one-123456",)
    log_filter.add(("key-two-123456",))
    assert log_filter._secrets == ("key-two-123456",)


def test_result_headers_hide_secrets_however_they_are_spelled() -> None:
    """Echoed as written, JSON-escaped, or as a credential-looking member: all read [redacted]."""
    secret = 'k"ey-123\\abc'
    raw = [
        (b"X-Plain", b"no secret here"),
        (b"X-Echo", b'quoted: "k\\"ey-123\\\\abc"'),
        (b"X-Json", b'{"api_key": "somebody-elses"}'),
        (b"X-API-Key", b"anything"),
        (b"X-Plain", b"twice"),
    ]
    headers = ResponseHeaders(safe_raw_headers(raw, [secret]))
    assert headers["x-plain"] == "no secret here, twice"
    assert headers["x-echo"] == 'quoted: "[redacted]"'
    assert "somebody-elses" not in headers["x-json"]
    assert headers["x-api-key"] == "[redacted]"
    plain = ResponseHeaders(safe_raw_headers([(b"X-Key", b"plain-key-1")], ["plain-key-1"]))
    assert plain == {"x-key": "[redacted]"}
    untouched = [(b"X-Plain", b"nothing to hide")]
    assert safe_raw_headers(untouched, ["plain-key-1"]) is untouched  # the common case: no copy
