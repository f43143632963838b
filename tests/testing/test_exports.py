"""hiveon_async.testing exports exactly its public surface (testing/__init__.py)."""

from __future__ import annotations

import hiveon_async.testing
from hiveon_async import _clock

PUBLIC = [
    "FakeVendorAPI",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "Quota",
    "QuotaHeaders",
    "ReceivedRequest",
    "ScriptEntry",
    "set_testing",
]


def test_all_is_the_public_surface() -> None:
    """``__all__`` lists every public name, sorted, and each one exists."""
    assert sorted(hiveon_async.testing.__all__) == PUBLIC
    # pytest rewrites a plugin's package and adds "@py_builtins" and the like: not names.
    public = {
        name
        for name in vars(hiveon_async.testing)
        if name.isidentifier() and not name.startswith("_")
    }
    assert public == set(PUBLIC)


def test_set_testing_is_the_clients_switch() -> None:
    """``set_testing`` is the client's own switch, not a copy."""
    assert hiveon_async.testing.set_testing is _clock.set_testing
