"""``hiveon-async demo``: a real client against a fake that fails and throttles."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from hiveon_async.cli import main
from hiveon_async.cli._demo import (
    DEMO_MIN_ATTEMPTS,
    DemoSettings,
    demo_ids,
    demo_retry_policy,
    server_answers,
)

from ._helpers import records

pytestmark = pytest.mark.socket

SUMMARY_ROW = re.compile(r"  (\S.*?)  +(\S.*)")


def settings(**changes: float) -> DemoSettings:
    options: dict[str, object] = {
        "count": 2000,
        "fail_rate": 0.2,
        "latency_ms": 20.0,
        "rate_limit": 500.0,
        "concurrency": 32,
        "seed": 0,
        "output_kind": "none",
        "quiet": True,
    }
    options.update(changes)
    return DemoSettings(**options)  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_demo_retries_throttles_and_stops_every_id() -> None:
    """No credentials; past the fake's rate limit come 429s; every id still ends stopped."""
    env = {"HIVEON_API_KEY": None, "CLORE_API_KEY": None, "HIVEON_BASE_URL": None}
    args = ["--count", "40", "--latency", "0", "--rate-limit", "50", "--fail-rate", "0.2"]
    result = CliRunner().invoke(main, ["demo", *args, "--output", "jsonl"], env=env)
    assert result.exit_code == 0, result.output
    outcomes = records(result.stdout)
    assert len(outcomes) == 40
    assert {outcome["status"] for outcome in outcomes} == {"stopped"}
    assert sum(outcome["attempts"] for outcome in outcomes) > 40
    lines = result.stderr.splitlines()
    assert lines[0].startswith("A fake vendor API on http://127.0.0.1:")
    assert "Stopped all 40 deployments." in lines
    rows = {row[1]: row[2] for line in lines if (row := SUMMARY_ROW.fullmatch(line))}
    assert rows.keys() >= {"stopped", "requests sent", "retries", "throttling"}
    assert rows["stopped"] == "40"
    throttled = re.match(r"429s: (\d+)", rows["throttling"])
    assert throttled
    assert int(throttled.group(1)) > 0
    assert int(rows["requests sent"]) == 40 + int(rows["retries"])
    assert "server answers" in result.stderr
    assert "elapsed" in result.stderr


def test_no_output_by_default() -> None:
    """Without ``--output`` the demo prints nothing on stdout; ``table`` prints a table."""
    result = CliRunner().invoke(main, ["demo", "--count", "5", "--latency", "0"])
    assert result.exit_code == 0
    assert result.stdout == ""
    result = CliRunner().invoke(main, ["demo", "--count", "5", "--output", "table"])
    assert result.exit_code == 0
    assert "demo-00004" in result.stdout


def test_quiet_demo() -> None:
    """``--quiet`` prints nothing on stderr."""
    result = CliRunner().invoke(main, ["demo", "--count", "10", "--latency", "0", "--quiet"])
    assert result.exit_code == 0
    assert result.output == ""


@pytest.mark.parametrize(
    "args",
    [["--count", "0"], ["--fail-rate", "0.9"], ["--latency", "-1"], ["--rate-limit", "0"]],
    ids=["count", "fail-rate", "latency", "rate-limit"],
)
def test_bad_demo_options_exit_2(args: list[str]) -> None:
    """Out-of-range options are usage errors."""
    assert CliRunner().invoke(main, ["demo", *args]).exit_code == 2


def test_attempts_are_sized_so_that_every_id_ends_stopped() -> None:
    """Enough attempts that an id failing them all is a 1-in-10,000 event for the whole demo."""
    default = demo_retry_policy(settings())
    assert default.max_attempts == 11  # 2000 * 0.2**11 < 1e-4
    assert 2000 * 0.2**default.max_attempts < 1e-4
    assert default.budget is None
    assert demo_retry_policy(settings(fail_rate=0.0)).max_attempts == DEMO_MIN_ATTEMPTS
    worst = demo_retry_policy(settings(fail_rate=0.5, count=10_000_000))
    assert 10_000_000 * 0.5**worst.max_attempts < 1e-4


def test_ids_and_answers() -> None:
    """Ids are made up lazily and sort in order; the answers line puts the commonest first."""
    assert list(demo_ids(3)) == ["demo-00000", "demo-00001", "demo-00002"]
    assert next(iter(demo_ids(1_000_000))) == "demo-000000"
    assert server_answers({500: 3, 200: 10, "reset": 3}) == "200 x10, 500 x3, reset x3"
