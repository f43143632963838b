"""The gate's record of its own sends: the weight a sliding window gives them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hiveon_async._policy._sends import SendRecord

# Each step: seconds since the last one, then add a send, forget, or weigh over a window.
steps = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=0.7),
        st.sampled_from(["add", "forget", "weigh"]),
        st.sampled_from([0.25, 1.0, 3.0]),
    ),
    max_size=80,
)


@given(steps)
def test_the_weight_is_what_each_send_counts_for(script: list[tuple[float, str, float]]) -> None:
    """Each kept send counts min(1, 2 - age / window), however the windows asked about vary."""
    record = SendRecord()
    kept: list[float] = []
    now = 100.0
    for step, action, window in script:
        now += step
        if action == "add":
            record.add(now)
            kept.append(now)
        elif action == "forget":
            record.forget(now - window)
            kept = [sent for sent in kept if sent > now - window]
        else:
            weight = record.weighed(now, window)
            kept = [sent for sent in kept if sent > now - 2 * window]
            assert weight == pytest.approx(
                sum(min(1.0, 2.0 - (now - sent) / window) for sent in kept), abs=1e-6
            )
        assert len(record) == len(kept)
        if kept:
            assert record.first() == kept[0]


def test_a_burst_a_window_ago_still_counts_as_it_fades() -> None:
    """Ten sends at 0: all ten count at 1 s, five at 1.5 s, none at 2 s."""
    record = SendRecord()
    for _ in range(10):
        record.add(0.0)
    assert record.weighed(1.0, 1.0) == pytest.approx(10)
    assert record.weighed(1.5, 1.0) == pytest.approx(5)
    assert record.weighed(2.0, 1.0) == 0
    assert len(record) == 0
