"""The pytest plugin (entry point ``pytest11: hiveon_async``): the ``fake_vendor_api`` fixture.

Imports of the package happen inside the fixture, so that merely having
hiveon-async installed costs other test suites nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._fake import FakeVendorAPI

__all__ = ["fake_vendor_api"]


@pytest.fixture
def fake_vendor_api() -> Iterator[FakeVendorAPI]:
    """A fresh :class:`~hiveon_async.testing.FakeVendorAPI`, with instant retry waits.

    While the fixture is active, retries do not sleep (``set_testing(True)``);
    the previous setting is restored afterwards.

    Yields:
        The fake. ``fake_vendor_api.client()`` gives an ``AsyncVendorClient``
        wired to it in-process.

    Example:
        >>> @pytest.mark.anyio
        ... async def test_stop(fake_vendor_api):
        ...     async with fake_vendor_api.client() as client:
        ...         await client.stop_deployment("dep-1")
        ...     assert fake_vendor_api.stopped == {"dep-1"}
    """
    from .._clock import set_testing
    from ._fake import FakeVendorAPI

    with set_testing(True):
        yield FakeVendorAPI()
