"""The testing guide's example passes as a user's test file (docs/examples/test_with_fake.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "test_with_fake.py"


def test_guide_example_passes(pytester: pytest.Pytester) -> None:
    """Every test of the example passes, on asyncio and trio, with warnings as errors."""
    pytester.makepyfile(test_with_fake=EXAMPLE.read_text())
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=8)
