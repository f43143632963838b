"""Test support: a faithful fake of the vendor API, with fault injection.

Use :class:`FakeVendorAPI` in-process (``fake.transport()``) or on a real
socket (``async with fake.serve() as base_url``); script faults per
deployment with :meth:`FakeVendorAPI.script` or roll them at random with a
seeded :class:`FaultPlan`. Installing the package also registers the pytest
fixture ``fake_vendor_api``, which makes retry waits instant while it is
active (:func:`set_testing` does the same by hand).

Example:
    >>> fake = FakeVendorAPI()
    >>> fake.script("dep-1", [503, "reset", 200])
"""

from .._clock import set_testing
from ._fake import FakeVendorAPI
from ._faults import Fault, FaultKind, FaultPlan, ScriptEntry
from ._quota import Quota, QuotaHeaders
from ._records import ReceivedRequest

__all__ = [
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FakeVendorAPI",
    "Quota",
    "QuotaHeaders",
    "ReceivedRequest",
    "ScriptEntry",
    "set_testing",
]
