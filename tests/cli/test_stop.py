"""``hiveon-async stop`` through click's CliRunner, against a FakeVendorAPI on a socket."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from hiveon_async import BatchProgress
from hiveon_async._models import BASE_URL_HINT
from hiveon_async.cli import main
from hiveon_async.testing import Fault
from tests.doubles import ServedVendor, served_vendor
from tests.policy.redis_server import RedisServer, free_port, redis_binary

from ._helpers import records, write_ids

pytestmark = pytest.mark.socket


def stop(env: dict[str, str | None], *args: str, stdin: str | None = None) -> Result:
    """Run ``hiveon-async stop ARGS`` in-process."""
    return CliRunner().invoke(main, ["stop", *args], env=env, input=stdin)


@pytest.fixture
def fake_vendor() -> Iterator[ServedVendor]:
    with served_vendor() as running:
        yield running


def test_ids_from_arguments_print_one_json_line_each(fake_vendor: ServedVendor) -> None:
    """Each id gets one JSON object on stdout with the documented fields; exit 0."""
    result = stop(fake_vendor.env(), "dep-1", "dep-2")
    assert result.exit_code == 0, result.stderr
    lines = records(result.stdout)
    assert sorted(line["deployment_id"] for line in lines) == ["dep-1", "dep-2"]
    for line in lines:
        assert set(line) == {"deployment_id", "status", "attempts", "elapsed", "error"}
        assert line["status"] == "stopped"
        assert line["attempts"] == 1
        assert line["error"] is None
        assert isinstance(line["elapsed"], float)
    assert fake_vendor.fake.stopped == {"dep-1", "dep-2"}
    assert "Stopped all 2 deployments." in result.stderr


def test_ids_from_a_file_skip_blanks_and_comments(
    fake_vendor: ServedVendor, tmp_path: Path
) -> None:
    """Whitespace is trimmed; blank lines and ``#`` comments (whole or trailing) are ignored."""
    ids = tmp_path / "ids.txt"
    ids.write_text("# the web tier\n  web-1  \n\nweb-2 # canary\r\n\t\n# done\nweb-3")
    result = stop(fake_vendor.env(), "--file", str(ids), "extra-1")
    assert result.exit_code == 0, result.stderr
    assert fake_vendor.fake.stopped == {"extra-1", "web-1", "web-2", "web-3"}
    assert fake_vendor.fake.request_count == 4


def test_ids_from_stdin(fake_vendor: ServedVendor) -> None:
    """``--file -`` reads stdin."""
    result = stop(fake_vendor.env(), "--file", "-", stdin="a-1\na-2\n\na-3\n")
    assert result.exit_code == 0, result.stderr
    assert {line["deployment_id"] for line in records(result.stdout)} == {"a-1", "a-2", "a-3"}


def test_a_file_is_streamed_in_chunks(
    fake_vendor: ServedVendor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids split across read chunks (and a last line without newline) all arrive, once each."""
    monkeypatch.setattr("hiveon_async.cli._ids.CHUNK_BYTES", 7)  # lines straddle every chunk
    path = tmp_path / "ids.txt"
    ids = write_ids(path, 300)
    path.write_text(path.read_text().rstrip("\n"))
    result = stop(fake_vendor.env(), "--file", str(path), "--concurrency", "64", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert fake_vendor.fake.stopped == set(ids)
    assert fake_vendor.fake.request_count == len(ids)
    assert result.stderr == ""


def test_failures_exit_1_and_are_described(fake_vendor: ServedVendor) -> None:
    """A 404 and an invalid id fail; the error object names the type, status and message."""
    fake_vendor.fake.script("gone-1", [404])
    result = stop(fake_vendor.env(), "ok-1", "gone-1", "bad id")
    assert result.exit_code == 1
    by_id = {line["deployment_id"]: line for line in records(result.stdout)}
    assert by_id["ok-1"]["status"] == "stopped"
    assert by_id["gone-1"]["status"] == "failed"
    assert by_id["gone-1"]["error"]["type"] == "NotFoundError"
    assert by_id["gone-1"]["error"]["status_code"] == 404
    assert by_id["gone-1"]["error"]["message"]
    assert by_id["bad id"]["error"]["type"] == "InvalidRequestError"
    assert by_id["bad id"]["error"]["status_code"] is None
    assert by_id["bad id"]["attempts"] == 0
    assert "1 of 3 deployments stopped: 2 failed, 0 skipped." in result.stderr
    assert "gone-1" in result.stderr


def test_retries_are_counted(fake_vendor: ServedVendor) -> None:
    """``--max-attempts`` bounds the attempts; retries show in the records and the summary."""
    fake_vendor.fake.script("flaky-1", [503, 500, 200])
    fake_vendor.fake.script("flaky-2", [503, 503, 503, 200])
    result = stop(fake_vendor.env(), "flaky-1", "flaky-2", "--max-attempts", "3")
    assert result.exit_code == 1
    by_id = {line["deployment_id"]: line for line in records(result.stdout)}
    assert (by_id["flaky-1"]["status"], by_id["flaky-1"]["attempts"]) == ("stopped", 3)
    assert (by_id["flaky-2"]["status"], by_id["flaky-2"]["attempts"]) == ("failed", 3)
    assert by_id["flaky-2"]["error"]["type"] == "ServerError"
    assert by_id["flaky-2"]["error"]["maybe_applied"] is True
    assert "requests sent  6" in result.stderr
    assert "retries        4" in result.stderr


def test_a_refused_key_aborts_and_the_rest_is_skipped(fake_vendor: ServedVendor) -> None:
    """A 401 stops the batch: the ids never sent end skipped; exit 1."""
    env = fake_vendor.env(HIVEON_API_KEY="not-the-key")
    ids = [f"dep-{number}" for number in range(20)]
    result = stop(env, *ids, "--concurrency", "2")
    assert result.exit_code == 1
    statuses = {line["status"] for line in records(result.stdout)}
    assert statuses == {"failed", "skipped"}
    assert len(records(result.stdout)) == 20
    assert fake_vendor.fake.request_count <= 2
    assert "AuthenticationError 401" in result.stderr


def test_table_output(fake_vendor: ServedVendor) -> None:
    """``--output table`` prints one table at the end instead of JSON Lines."""
    fake_vendor.fake.script("dep-2", [Fault.status(400)])
    result = stop(fake_vendor.env(), "dep-1", "dep-2", "--output", "table")
    assert result.exit_code == 1
    assert "deployment_id" in result.stdout
    assert "BadRequestError 400" in result.stdout
    assert "{" not in result.stdout.splitlines()[0]


def test_a_long_id_is_never_cut_from_the_table(fake_vendor: ServedVendor) -> None:
    """At 80 columns (a pipe's width), the table keeps each id whole, on one line."""
    long_id = "fleet-eu-west-" + "0123456789abcdef" * 3 + "-canary"
    fake_vendor.fake.script(long_id, [Fault.status(400)])
    result = CliRunner().invoke(
        main,
        ["stop", long_id, "dep-1", "--output", "table"],
        env=fake_vendor.env(COLUMNS="80"),
    )
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(f" {long_id} " in line for line in lines)
    assert max(len(line) for line in lines) <= 80


def test_throttling_shows_in_the_summary(fake_vendor: ServedVendor) -> None:
    """The summary counts the 429s, and the time a Retry-After paused all sending."""
    fake_vendor.fake.script("busy-1", [Fault.status(429, retry_after=2), 200])
    fake_vendor.fake.script("busy-2", [Fault.status(503, retry_after=3), 200])
    result = stop(fake_vendor.env(), "busy-1", "busy-2", "--concurrency", "1")
    assert result.exit_code == 0, result.stderr
    (row,) = (line for line in result.stderr.splitlines() if line.startswith("  throttling"))
    assert re.fullmatch(r"  throttling     429s: 1 · paused [1-9][0-9.]*s( · paced at .*)?", row)
    assert len(records(result.stdout)) == 2  # the JSON Lines are as before: one per id
    assert {len(line) for line in map(set, records(result.stdout))} == {5}


def test_a_wrong_base_path_hints_at_the_base_url(fake_vendor: ServedVendor) -> None:
    """A base URL with /vendors/v1 makes every id answer 404: the summary says what to check."""
    env = fake_vendor.env(HIVEON_BASE_URL=fake_vendor.url + "/vendors/v1")
    result = stop(env, "dep-1", "dep-2", "dep-3")
    assert result.exit_code == 1
    assert {line["error"]["type"] for line in records(result.stdout)} == {"NotFoundError"}
    assert f"  Hint: {BASE_URL_HINT}." in result.stderr.splitlines()
    assert result.stderr.count("check the base URL") == 1
    assert fake_vendor.fake.stopped == set()


def test_missing_deployments_alone_give_no_hint(fake_vendor: ServedVendor) -> None:
    """Some ids missing among others stopped: no hint about the base URL."""
    fake_vendor.fake.script("gone-1", [404])
    result = stop(fake_vendor.env(), "gone-1", "dep-2", "--concurrency", "1")
    assert result.exit_code == 1
    assert "base URL" not in result.stderr


def test_quiet_prints_no_summary(fake_vendor: ServedVendor) -> None:
    """``--quiet`` keeps stdout and drops the summary."""
    result = stop(fake_vendor.env(), "dep-1", "--quiet")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert len(records(result.stdout)) == 1


def test_metadata_is_sent_and_never_printed(fake_vendor: ServedVendor) -> None:
    """``--metadata`` reaches the server with CLORE_API_KEY from the environment."""
    result = stop(fake_vendor.env(), "dep-1", "--metadata", "team=ops-7f3a", "--metadata", "x=1=2")
    assert result.exit_code == 0, result.stderr
    (received,) = fake_vendor.fake.requests
    assert received.body == {
        "metadata": {"CLORE_API_KEY": "[redacted]", "team": "ops-7f3a", "x": "1=2"}
    }
    assert "ops-7f3a" not in result.output


def test_concurrency_and_rate(fake_vendor: ServedVendor) -> None:
    """``--concurrency`` bounds requests in flight; ``--rate`` paces them."""
    ids = [f"dep-{number}" for number in range(12)]
    result = stop(fake_vendor.env(), *ids, "--concurrency", "2", "--rate", "40", "-q")
    assert result.exit_code == 0
    assert fake_vendor.fake.peak_in_flight <= 2
    arrivals = [received.arrived_at for received in fake_vendor.fake.requests]
    # From the third: the first two may wait for their connections, bunching the next ones.
    assert arrivals[-1] - arrivals[2] >= 9 / 40 * 0.8


def test_timeout_and_deadline(fake_vendor: ServedVendor) -> None:
    """``--timeout`` bounds an attempt; ``--deadline`` bounds the run (exit 1, rest skipped)."""
    fake_vendor.fake.script("stuck", [Fault.stall(seconds=5)] * 4)
    result = stop(
        fake_vendor.env(),
        "stuck",
        "later-1",
        "later-2",
        "--concurrency",
        "1",
        "--timeout",
        "0.2",
        "--deadline",
        "0.5",
    )
    assert result.exit_code == 1
    by_id = {line["deployment_id"]: line for line in records(result.stdout)}
    assert by_id["stuck"]["status"] == "failed"
    assert by_id["stuck"]["attempts"] >= 2
    assert {by_id["later-1"]["status"], by_id["later-2"]["status"]} == {"skipped"}


# -- usage and configuration errors: exit 2, before anything is sent ----------------------


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("HIVEON_API_KEY", "$HIVEON_API_KEY is not set"),
        ("CLORE_API_KEY", "$CLORE_API_KEY is not set"),
    ],
)
def test_a_missing_credential_is_named(fake_vendor: ServedVendor, unset: str, named: str) -> None:
    """Without a credential variable: exit 2, naming it."""
    result = stop(fake_vendor.env(**{unset: None}), "dep-1")
    assert result.exit_code == 2
    assert named in result.stderr
    assert fake_vendor.fake.request_count == 0


def test_both_missing_credentials_are_named() -> None:
    """Both variables missing: both named."""
    result = stop({"HIVEON_API_KEY": None, "CLORE_API_KEY": None}, "dep-1")
    assert result.exit_code == 2
    assert "$HIVEON_API_KEY and $CLORE_API_KEY are not set" in result.stderr


def test_there_is_no_credential_flag() -> None:
    """Credentials are never flags (they would land in shell history)."""
    result = CliRunner().invoke(main, ["stop", "--help"])
    assert result.exit_code == 0
    assert "--api-key" not in result.output
    assert "HIVEON_API_KEY" in result.output
    assert stop({}, "dep-1", "--api-key", "k").exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no deployment ids"),
        (["dep-1", "--metadata", "novalue"], "expected KEY=VALUE"),
        (["dep-1", "--metadata", "=v"], "expected KEY=VALUE"),
        (["dep-1", "--metadata", "CLORE_API_KEY=leak"], "read from $CLORE_API_KEY only"),
        (["dep-1", "--concurrency", "0"], "--concurrency"),
        (["dep-1", "--rate", "0"], "--rate"),
        (["dep-1", "--max-attempts", "0"], "--max-attempts"),
        (["dep-1", "--timeout", "-1"], "--timeout"),
        (["dep-1", "--deadline", "0"], "--deadline"),
        (["dep-1", "--output", "xml"], "--output"),
        (["--file", "/no/such/file"], "does not exist"),
    ],
)
def test_usage_errors_exit_2(fake_vendor: ServedVendor, args: list[str], message: str) -> None:
    """Bad arguments are refused with exit 2 and nothing is sent."""
    result = stop(fake_vendor.env(), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "leak" not in result.stderr
    assert "novalue" not in result.stderr
    assert fake_vendor.fake.request_count == 0


def test_the_client_refuses_a_bad_base_url(fake_vendor: ServedVendor) -> None:
    """The client's InvalidRequestError (plain http to a remote host) exits 2."""
    result = stop(fake_vendor.env(HIVEON_BASE_URL="http://example.com"), "dep-1")
    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert "Traceback" not in result.output


def test_an_empty_file_is_nothing_to_do(fake_vendor: ServedVendor, tmp_path: Path) -> None:
    """A file with no ids: exit 0, nothing sent."""
    empty = tmp_path / "ids.txt"
    empty.write_text("# nothing yet\n\n")
    result = stop(fake_vendor.env(), "--file", str(empty))
    assert result.exit_code == 0
    assert "Nothing to do: no ids." in result.stderr
    assert fake_vendor.fake.request_count == 0


def test_the_bar_counts_the_file_for_its_total(
    fake_vendor: ServedVendor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a bar, the file's ids are counted in the background: the bar shows done/total."""
    from rich.console import Console

    from hiveon_async.cli._progress import ProgressBar

    screen = io.StringIO()

    def bar_on_a_terminal(progress: BatchProgress, **options: Any) -> ProgressBar:
        console = Console(file=screen, force_terminal=True, width=160)
        return ProgressBar(progress, total=options["total"], console=console)

    monkeypatch.setattr("hiveon_async.cli._stop.progress_bar_for", bar_on_a_terminal)
    path = tmp_path / "ids.txt"
    write_ids(path, 40)
    journal = tmp_path / "run.journal"
    journal.write_text('{"deployment_id": "dep-00000", "status": "stopped"}\n')
    result = stop(fake_vendor.env(), "--file", str(path), "--journal", str(journal), "arg-1")
    assert result.exit_code == 0, result.stderr
    assert "40/40" in screen.getvalue()  # 39 in the file (one journalled) and one argument


def test_an_unreadable_file_is_a_configuration_error(
    fake_vendor: ServedVendor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that exists but cannot be opened: exit 2, nothing sent."""

    def refuse(path: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("hiveon_async.cli._ids._open", refuse)
    path = tmp_path / "ids.txt"
    path.write_text("dep-1\n")
    result = stop(fake_vendor.env(), "--file", str(path))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
    assert "Permission denied" in result.stderr
    assert fake_vendor.fake.request_count == 0


def test_ctrl_c_outside_the_run_exits_130(
    fake_vendor: ServedVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C where the run's own handler is not installed still exits 130, quietly."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("anyio.run", interrupted)
    result = stop(fake_vendor.env(), "dep-1")
    assert result.exit_code == 130
    assert result.stderr == "Interrupted.\n"
    result = CliRunner().invoke(main, ["demo", "--count", "1"])
    assert result.exit_code == 130
    assert result.stderr == "Interrupted.\n"


def test_redis_url_shares_the_rate_through_redis(fake_vendor: ServedVendor) -> None:
    """``--redis-url`` with ``--rate``: the run books its turns in that Redis."""
    server = RedisServer(redis_binary())
    server.start()
    try:
        result = stop(
            fake_vendor.env(), "dep-1", "dep-2", "--rate", "50", "--redis-url", server.url
        )
        assert result.exit_code == 0, result.stderr
        assert server.keys()
    finally:
        server.stop()


def test_redis_url_comes_from_the_environment_and_needs_no_rate(
    fake_vendor: ServedVendor,
) -> None:
    """``$HIVEON_REDIS_URL`` without ``--rate``: the run shares what it learns there."""
    server = RedisServer(redis_binary())
    server.start()
    try:
        result = stop(fake_vendor.env(HIVEON_REDIS_URL=server.url), "dep-1", "dep-2")
        assert result.exit_code == 0, result.stderr
        assert server.calls("evalsha") + server.calls("eval") > 0, "its turns went through Redis"
    finally:
        server.stop()


def test_an_unreachable_redis_is_named_without_its_password(fake_vendor: ServedVendor) -> None:
    """Redis down: every id fails naming host and port; the password is never printed."""
    port = free_port()
    url = f"redis://:hunter2secret@127.0.0.1:{port}/0"
    result = stop(fake_vendor.env(), "dep-1", "--rate", "50", "--redis-url", url)
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}" in result.output
    assert "hunter2secret" not in result.output
    assert fake_vendor.fake.request_count == 0


def test_a_used_up_quota_ends_the_run_and_says_when_to_resume(fake_vendor: ServedVendor) -> None:
    """A 429 with a 1-hour Retry-After: nothing more is sent, exit 1, the reset time and how."""
    fake_vendor.fake.script("dep-1", [Fault.status(429, retry_after=3600)])
    result = stop(fake_vendor.env(), "dep-1", "dep-2", "dep-3", "--concurrency", "1")
    assert result.exit_code == 1
    assert "The vendor's quota is used up until" in result.stderr
    assert fake_vendor.fake.request_count == 1


def test_wait_for_quota_waits_only_for_a_reset_before_the_deadline(
    fake_vendor: ServedVendor,
) -> None:
    """--wait-for-quota with a reset past --deadline: the run stops at once, as without it."""
    fake_vendor.fake.script("dep-1", [Fault.status(429, retry_after=3600)])
    result = stop(
        fake_vendor.env(), "dep-1", "dep-2", "--concurrency", "1", "--wait-for-quota",
        "--deadline", "30",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "The vendor's quota is used up until" in result.stderr
    assert fake_vendor.fake.request_count == 1
