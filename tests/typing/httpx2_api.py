"""Never run: the httpx2 forms of the public API under ``mypy --strict``.

A user on httpx2 (the ``httpx2`` extra) passes its client, timeout or
transport wherever httpx's are accepted, and tests against the fake's httpx2
transport.
"""

from __future__ import annotations

import httpx
import httpx2

from hiveon_async import AsyncVendorClient
from hiveon_async.testing import FakeVendorAPI


def httpx2_keywords(http_client: httpx2.AsyncClient) -> list[AsyncVendorClient]:
    """Construct clients from httpx2's objects, each accepted form."""
    fake = FakeVendorAPI()
    on_httpx2: httpx2.AsyncBaseTransport = fake.transport(library="httpx2")
    on_httpx: httpx.AsyncBaseTransport = fake.transport()
    also_httpx: httpx.AsyncBaseTransport = fake.transport(library="httpx")
    del on_httpx, also_httpx
    return [
        AsyncVendorClient(http_client=http_client),
        AsyncVendorClient(http_client=http_client, timeout=httpx2.Timeout(5.0, connect=1.0)),
        AsyncVendorClient(timeout=httpx2.Timeout(5.0)),
        AsyncVendorClient(transport=on_httpx2),
        AsyncVendorClient(http_client=httpx2.AsyncClient(transport=on_httpx2)),
    ]
