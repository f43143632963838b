"""What the fake remembers of each request, with the credentials taken out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["REDACTED", "ReceivedRequest"]

REDACTED = "[redacted]"
#: Header names whose values are credentials; their values are never stored.
SECRET_HEADERS = frozenset({b"x-api-key", b"authorization", b"proxy-authorization", b"cookie"})
#: The JSON member that carries the Clore credential, wherever a client puts it.
SECRET_MEMBER = "CLORE_API_KEY"  # noqa: S105 - the name of a secret, not one


@attrs.frozen(kw_only=True)
class ReceivedRequest:
    """One request as the fake received it, fit to show in a test failure.

    Attributes:
        request_id: The ``X-Request-Id`` the fake answered with (``req-1``, ``req-2``, ...).
        method: The HTTP method.
        path: The request target as sent (still percent-encoded, query included).
        deployment_id: The percent-decoded id, or None when the path is not the stop route.
        attempt: How many requests for this id the fake had received, this one included.
        arrived_at: When it arrived, on the fake's monotonic clock.
        headers: The headers, names lower-cased, credential values replaced by ``[redacted]``.
        body: The JSON body with every ``CLORE_API_KEY`` value replaced by ``[redacted]``;
            None when the body was empty or not JSON.
        answer: The status the fake answered, or the name of the fault it injected
            (``"reset"``, ``"drop"``, ``"stall"``, ``"trickle"``, ``"garbage"``,
            ``"mismatch"``, ``"huge"``, ``"redirect"``).
    """

    request_id: str
    method: str
    path: str
    deployment_id: str | None
    attempt: int | None
    arrived_at: float
    headers: Mapping[str, str]
    body: Any
    answer: int | str


def redact_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Return the headers as a dict with lower-cased names and no credential values.

    Args:
        raw: The headers as (name, value) byte pairs, in any case.

    Returns:
        Lower-cased name to value; repeated headers are joined with ", ".
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.lower()
        value = REDACTED if name in SECRET_HEADERS else raw_value.decode("latin-1")
        key = name.decode("latin-1")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def redact_body(value: Any) -> Any:
    """Return a copy of a parsed JSON value with every ``CLORE_API_KEY`` member hidden.

    Args:
        value: A value from ``json.loads``.

    Returns:
        The same structure, with ``[redacted]`` for each ``CLORE_API_KEY`` value at any depth.
    """
    if isinstance(value, dict):
        return {
            key: REDACTED if key == SECRET_MEMBER else redact_body(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_body(item) for item in value]
    return value
