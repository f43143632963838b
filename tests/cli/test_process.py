"""``hiveon-async stop`` as a real process: signals, a closed stdout, a terminal, secrets.

The fake vendor runs in this process (``serve_in_thread``); the command runs as
``python -m hiveon_async.cli`` and talks to it over the socket, so the fake
counts every request the process sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from hiveon_async.testing import Fault, FaultPlan
from tests.doubles import ServedVendor, served_vendor

from ._helpers import command, journal_stopped, write_ids

pytestmark = [
    pytest.mark.socket,
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and terminals"),
]

#: Seconds a process may take to start and import (a loaded machine is slow).
START_SECONDS = 20.0
#: Each answer of the fake takes this long, so a run lasts long enough to interrupt.
LATENCY = 0.01


def wait_for(condition: Callable[[], bool], what: str, timeout: float = START_SECONDS) -> None:
    """Poll ``condition`` until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def run_to_the_end(running: ServedVendor, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), "stop", *args],
        env=running.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_an_interrupted_run_resumes_from_its_journal(how: str, tmp_path: Path) -> None:
    """Interrupted mid-run, then run again: every id ends stopped, none journalled is re-sent.

    The figures are printed (``pytest -s``) for the docs: ids sent by each run,
    and ids the second run sent again (only those in flight at the interrupt).
    """
    ids_file = tmp_path / "ids.txt"
    ids = write_ids(ids_file, 300)
    journal = tmp_path / "run.journal"
    args = ["--file", str(ids_file), "--journal", str(journal), "--concurrency", "8"]
    with served_vendor(instant_retries=False, faults=FaultPlan(latency=LATENCY)) as running:
        process = subprocess.Popen(
            [*command(), "stop", *args],
            env=running.process_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for(lambda: lines_in(journal) >= 60, "the first outcomes", timeout=START_SECONDS)
        process.send_signal(getattr(signal, how))
        stdout, stderr = process.communicate(timeout=20)
        first = Counter(running.fake.attempts)
        journalled = journal_stopped(journal)

        resumed = run_to_the_end(running, *args)
        second = Counter(running.fake.attempts) - first

    if how == "SIGINT":
        assert process.returncode == 130
        assert b"Interrupted (Ctrl-C)" in stderr
        assert b"run the same command again" in stderr
        assert b"Traceback" not in stderr
        # What completed was written: stdout has exactly the journalled outcomes.
        printed = [json.loads(line) for line in stdout.splitlines()]
        assert {line["deployment_id"] for line in printed} == journalled
    else:
        assert process.returncode == -signal.SIGKILL
    assert resumed.returncode == 0, resumed.stderr
    assert set(first) < set(ids)  # interrupted before the end
    assert journal_stopped(journal) == set(ids)
    assert running.fake.stopped == set(ids)
    assert not journalled & set(second), "an id the journal recorded as stopped was sent again"
    in_flight = set(first) - journalled
    assert set(second) == set(ids) - journalled
    assert len(in_flight) <= 8  # at most the requests in flight are sent twice
    print(
        f"\n{how}: first run sent {len(first)} ids ({len(journalled)} journalled stopped), "
        f"second run sent {len(second)}, journalled ids resent {len(journalled & set(second))}, "
        f"in-flight ids resent {len(in_flight & set(second))}"
    )


def test_a_closed_stdout_ends_the_run_quietly(tmp_path: Path) -> None:
    """``| head``: the run stops, exits 141, and prints no traceback."""
    ids_file = tmp_path / "ids.txt"
    write_ids(ids_file, 400)
    with served_vendor(instant_retries=False, faults=FaultPlan(latency=LATENCY)) as running:
        process = subprocess.Popen(
            [*command(), "stop", "--file", str(ids_file), "--concurrency", "4"],
            env=running.process_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        head = [process.stdout.readline() for _ in range(3)]
        process.stdout.close()
        _, stderr = process.communicate(timeout=20)
        sent = running.fake.request_count
    assert all(json.loads(line)["status"] == "stopped" for line in head)
    assert process.returncode == 141
    assert b"Traceback" not in stderr
    assert b"Exception ignored" not in stderr
    assert b"Stopped early: stdout was closed" in stderr
    assert sent < 400


def test_no_progress_bar_unless_stderr_is_a_terminal() -> None:
    """With stderr a pipe: the summary only, no bar and no terminal control codes."""
    with served_vendor(instant_retries=False) as running:
        ids = [f"dep-{number}" for number in range(30)]
        completed = run_to_the_end(running, *ids)
    assert completed.returncode == 0
    assert completed.stderr.startswith("Stopped all 30 deployments.")
    assert "\r" not in completed.stderr
    assert "\x1b" not in completed.stderr
    assert "━" not in completed.stderr
    assert "\x1b" not in completed.stdout


def test_a_progress_bar_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    """With stderr a terminal: a bar with done/total, rate, ETA and counts; stdout unchanged."""
    import pty

    ids_file = tmp_path / "ids.txt"
    write_ids(ids_file, 120)
    controller, terminal = pty.openpty()
    with served_vendor(instant_retries=False, faults=FaultPlan(latency=LATENCY)) as running:
        process = subprocess.Popen(
            [*command(), "stop", "--file", str(ids_file), "--concurrency", "8"],
            env=running.process_env(COLUMNS="160", TERM="xterm"),
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            drawn += chunk
        stdout, _ = process.communicate(timeout=20)
        os.close(controller)
    text = drawn.decode()
    assert process.returncode == 0
    assert "Stopping" in text
    assert "120/120" in text
    assert "/s" in text
    assert "ETA" in text
    assert "stopped 120" in text
    assert "retries 0" in text
    assert "Stopped all 120 deployments." in text
    assert len(stdout.splitlines()) == 120  # stdout is a pipe: untouched by the bar
    assert b"\x1b" not in stdout


def test_ctrl_c_while_ids_are_typed_at_a_terminal() -> None:
    """``--file -`` on a terminal: Ctrl-C while the run waits for more ids ends it with 130."""
    import pty

    controller, terminal = pty.openpty()
    with served_vendor(instant_retries=False) as running:
        process = subprocess.Popen(
            [*command(), "stop", "--file", "-"],
            env=running.process_env(),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(terminal)
        try:
            assert process.stdout is not None
            os.write(controller, b"dep-1\ndep-2\n")
            typed = [json.loads(process.stdout.readline()) for _ in range(2)]
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=20)
        finally:
            os.close(controller)
    assert {line["deployment_id"] for line in typed} == {"dep-1", "dep-2"}
    assert stdout == b""
    assert process.returncode == 130, stderr
    assert b"Interrupted (Ctrl-C) after 2 outcomes" in stderr
    assert b"Fatal Python error" not in stderr


def test_no_secret_in_any_output(tmp_path: Path) -> None:
    """Neither credential, nor a metadata value, appears on stdout, stderr or in the journal."""
    journal = tmp_path / "run.journal"
    metadata_value = "meta-value-9c1e77"
    with served_vendor(instant_retries=False) as running:
        running.fake.script("bad-request", [Fault.status(400)])
        running.fake.script("flaky", [503, 200])
        running.fake.script("gone", [404])
        running.fake.script("lost", ["reset", "drop"])
        ok = run_to_the_end(
            running,
            "ok",
            "bad-request",
            "flaky",
            "gone",
            "lost",
            "not valid!",
            "--journal",
            str(journal),
            "--metadata",
            f"team={metadata_value}",
            "--max-attempts",
            "2",
        )
        refused = subprocess.run(
            [*command(), "stop", "dep-1", "--output", "table"],
            env=running.process_env(HIVEON_API_KEY="hk-wrong-" + running.api_key[::-1]),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert ok.returncode == 1
    assert refused.returncode == 1
    assert "AuthenticationError" in refused.stdout
    everything = ok.stdout + ok.stderr + refused.stdout + refused.stderr + journal.read_text()
    for secret in (running.api_key, running.clore_api_key, running.api_key[::-1], metadata_value):
        assert secret not in everything


def test_python_dash_m_and_the_script_agree() -> None:
    """``python -m hiveon_async.cli`` runs the same group as the ``hiveon-async`` script."""
    completed = subprocess.run(
        [*command(), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0
    for name in ("stop", "demo", "fake-server"):
        assert name in completed.stdout


def test_importing_the_cli_does_not_import_rich() -> None:
    """The CLI imports rich only to draw (httpx may import it itself: only new modules count)."""
    script = (
        "import sys, hiveon_async\n"
        "before = {name for name in sys.modules if name.split('.')[0] == 'rich'}\n"
        "import hiveon_async.cli\n"
        "after = {name for name in sys.modules if name.split('.')[0] == 'rich'}\n"
        "print(sorted(after - before))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "[]"
