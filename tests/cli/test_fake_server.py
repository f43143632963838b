"""``hiveon-async fake-server``, run as a real process and through CliRunner."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from hiveon_async.cli import main

pytestmark = pytest.mark.socket

VENDOR_EXAMPLE_ID = "a1b2c3d4-5678-90ef-ghij-klmnopqrstuv"
VENDOR_EXAMPLE_BODY = (
    '{"metadata": {"CLORE_API_KEY": "your-clore-api-key", "additional_key": "additional_value"}}'
)
STOP_PATH = f"/vendors/v1/machines/deployments/{VENDOR_EXAMPLE_ID}/stop"
#: Seconds for the process to start and print its URL (imports are slow on a loaded machine).
STARTUP_SECONDS = 20.0


def command() -> list[str]:
    """The installed console script, or the same entry point through this interpreter."""
    script = Path(sys.executable).with_name("hiveon-async")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from hiveon_async.cli import main; main()"]


class RunningServer:
    """A ``fake-server`` process and what it printed at start."""

    def __init__(self, process: subprocess.Popen[bytes], banner: str) -> None:
        self.process = process
        self.banner = banner
        match = re.search(r"listening on (http://\S+)", banner)
        assert match, banner
        self.url = match.group(1)
        key = re.search(r"API key: (\S+)", banner)
        self.api_key = key.group(1) if key else None
        self.output = ""


def read_banner(process: subprocess.Popen[bytes]) -> str:
    """Read stdout until the server says how to stop it."""
    assert process.stdout is not None
    # Raw reads: a buffered readline would swallow lines that select() then never reports.
    descriptor = process.stdout.fileno()
    banner = b""
    deadline = time.monotonic() + STARTUP_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while b"Ctrl-C" not in banner:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                pytest.fail(f"fake-server printed no URL in time: {banner!r}")
            chunk = os.read(descriptor, 4096)
            if not chunk:
                pytest.fail(f"fake-server exited early: {banner!r}")
            banner += chunk
    return banner.decode()


@contextmanager
def fake_server(*args: str) -> Iterator[RunningServer]:
    """Run ``hiveon-async fake-server --port 0 ARGS``; stop it with SIGINT afterwards."""
    process = subprocess.Popen(
        [*command(), "fake-server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        server = RunningServer(process, read_banner(process))
        yield server
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=10)
        server.output = output.decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def vendor_example(url: str, key: str) -> httpx.Response:
    """Send the vendor's documented example request with httpx."""
    return httpx.post(
        url + STOP_PATH,
        content=VENDOR_EXAMPLE_BODY,
        headers={"Content-Type": "application/json", "X-API-Key": key},
        timeout=5,
    )


def test_serves_until_interrupted_and_prints_a_generated_key() -> None:
    """The command prints its URL and generated key, answers, and exits 0 on Ctrl-C."""
    with fake_server() as server:
        assert server.api_key is not None
        assert server.api_key.startswith("fake-")
        response = vendor_example(server.url, server.api_key)
        wrong = vendor_example(server.url, "not-the-key")
    assert response.json() == {"deployment_id": VENDOR_EXAMPLE_ID}
    assert wrong.status_code == 401
    assert server.process.returncode == 0
    assert "Stopped after 2 requests." in server.output


def test_a_given_key_is_not_printed() -> None:
    """With ``--api-key`` the key is used and never printed."""
    with fake_server("--api-key", "my-fake-key") as server:
        response = vendor_example(server.url, "my-fake-key")
    assert response.status_code == 200
    assert server.api_key is None
    assert "my-fake-key" not in server.banner + server.output


def test_sigterm_stops_it_cleanly() -> None:
    """SIGTERM, as a supervisor sends it, is a clean stop too."""
    with fake_server() as server:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=10)
    assert server.process.returncode == 0


def test_options_shape_the_fake() -> None:
    """``--fail-rate 1`` fails every request; ``--latency`` delays each answer."""
    with fake_server("--api-key", "k", "--fail-rate", "1", "--latency", "50") as server:
        statuses = []
        started = time.monotonic()
        with httpx.Client(timeout=5) as client:
            for _ in range(5):
                try:
                    statuses.append(
                        client.post(
                            server.url + STOP_PATH,
                            content=VENDOR_EXAMPLE_BODY,
                            headers={"Content-Type": "application/json", "X-API-Key": "k"},
                        ).status_code
                    )
                except httpx.TransportError:
                    statuses.append(0)
        elapsed = time.monotonic() - started
    assert 200 not in statuses
    assert elapsed >= 5 * 0.05


def test_rate_limit_option() -> None:
    """``--rate-limit 0.2`` lets one request in five seconds through per key, then 429."""
    with fake_server("--api-key", "k", "--rate-limit", "0.2") as server:
        first, second = vendor_example(server.url, "k"), vendor_example(server.url, "k")
    assert (first.status_code, second.status_code) == (200, 429)
    assert 1 <= int(second.headers["retry-after"]) <= 5


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")
def test_vendor_curl_example() -> None:
    """The vendor's documented cURL command, pointed at the fake, gets 200 and the id."""
    with fake_server() as server:
        completed = subprocess.run(
            [
                "curl",
                "--silent",
                "--show-error",
                "--noproxy",
                "*",
                "--max-time",
                "10",
                "--write-out",
                "\n%{http_code}",
                "-X",
                "POST",
                server.url + STOP_PATH,
                "-H",
                "Content-Type: application/json",
                "-H",
                f"X-API-Key: {server.api_key}",
                "-d",
                VENDOR_EXAMPLE_BODY,
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
    body, _, status = completed.stdout.rpartition("\n")
    assert completed.returncode == 0, completed.stderr
    assert status == "200"
    assert json.loads(body) == {"deployment_id": VENDOR_EXAMPLE_ID}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_in_process(signum: int, *args: str) -> tuple[Result, list[httpx.Response]]:
    """Run ``fake-server`` through CliRunner; once it answers, send it ``signum``."""
    port = free_port()
    answers: list[httpx.Response] = []

    def ask_then_signal() -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                answers.append(vendor_example(f"http://127.0.0.1:{port}", "key-1"))
                break
            except httpx.TransportError:
                time.sleep(0.02)
        # It answers, so its signal handlers are in place: this stops it, not pytest.
        os.kill(os.getpid(), signum)

    asker = threading.Thread(target=ask_then_signal)
    asker.start()
    try:
        result = CliRunner().invoke(main, ["fake-server", "--port", str(port), *args])
    finally:
        asker.join()
    return result, answers


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_in_process_it_stops_on_a_signal(signum: int) -> None:
    """Ctrl-C or SIGTERM ends the command with 0 and the count of requests answered."""
    result, answers = serve_in_process(signum, "--api-key", "key-1", "--rate-limit", "2.5")
    assert result.exit_code == 0, result.output
    assert [answer.status_code for answer in answers] == [200]
    assert "listening on http://127.0.0.1:" in result.output
    assert "API key" not in result.output
    assert result.output.endswith("Stopped after 1 request.\n")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_in_process_a_generated_key_is_printed_and_faults_apply() -> None:
    """Without --api-key the printed key is the one accepted; --fail-rate 1 fails every request."""
    result, answers = serve_in_process(signal.SIGINT, "--fail-rate", "1", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert re.search(r"API key: fake-\S+", result.output)
    assert [answer.status_code for answer in answers] in ([500], [503], [429])
    assert re.search(r"Stopped after \d+ requests?\.", result.output)


def test_deployments_file_says_which_ids_exist(tmp_path: Path) -> None:
    """``--deployments FILE``: the ids listed answer 200, any other 404."""
    fleet = tmp_path / "fleet.txt"
    fleet.write_text(f"# the fleet\n{VENDOR_EXAMPLE_ID}\n\n  dep-2  # canary\n")
    with fake_server("--api-key", "k", "--deployments", str(fleet)) as server:
        known = vendor_example(server.url, "k")
        other = httpx.post(
            server.url + STOP_PATH.replace(VENDOR_EXAMPLE_ID, "dep-3"),
            content=VENDOR_EXAMPLE_BODY,
            headers={"Content-Type": "application/json", "X-API-Key": "k"},
            timeout=5,
        )
    assert known.json() == {"deployment_id": VENDOR_EXAMPLE_ID}
    assert other.status_code == 404
    assert f"Deployments: 2 from {fleet}; any other id answers 404." in server.banner


def test_faults_choose_the_mix() -> None:
    """``--faults 503=1`` answers 503 to every request, and the banner says so."""
    with fake_server("--api-key", "k", "--faults", "503=1") as server:
        answers = [vendor_example(server.url, "k") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [503] * 3
    assert answers[0].headers["retry-after"] == "1"
    assert "Random faults: 503 100%." in server.banner


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_in_process_deployments_and_faults(tmp_path: Path) -> None:
    """Through CliRunner: an id outside --deployments is 404; --faults picks what fails."""
    fleet = tmp_path / "fleet.txt"
    fleet.write_text("dep-1\n")
    result, answers = serve_in_process(
        signal.SIGINT, "--api-key", "key-1", "--deployments", str(fleet)
    )
    assert result.exit_code == 0, result.output
    assert [answer.status_code for answer in answers] == [404]
    assert "Deployments: 1 from" in result.output
    result, answers = serve_in_process(
        signal.SIGINT, "--api-key", "key-1", "--faults", "500=0.5, 429=0.5"
    )
    assert result.exit_code == 0, result.output
    assert [answer.status_code for answer in answers] in ([500], [429])
    assert "Random faults: 500 50%, 429 50%." in result.output


def test_help_describes_every_option() -> None:
    """``fake-server --help`` documents its options."""
    result = CliRunner().invoke(main, ["fake-server", "--help"])
    assert result.exit_code == 0
    options = ("--host", "--port", "--api-key", "--fail-rate", "--latency", "--rate-limit")
    for option in (*options, "--faults", "--deployments"):
        assert option in result.output
    assert "500=0.1,503=0.05,429=0.02,reset=0.01" in result.output.replace("\n", "")


@pytest.mark.parametrize(
    "args",
    [
        ["--fail-rate", "1.5"],
        ["--latency", "-1"],
        ["--rate-limit", "0"],
        ["--port", "70000"],
        ["--faults", "500"],
        ["--faults", "500=x"],
        ["--faults", "500=1.5"],
        ["--faults", "200=0.1"],
        ["--faults", "700=0.1"],
        ["--faults", "boom=0.1"],
        ["--faults", "500=0.6,503=0.6"],
        ["--faults", "500=0.1,500=0.2"],
        ["--faults", "500=0.1", "--fail-rate", "0.2"],
        ["--deployments", "no-such-file.txt"],
    ],
    ids=[
        "fail-rate",
        "latency",
        "rate-limit",
        "port",
        "faults-no-rate",
        "faults-not-a-number",
        "faults-rate",
        "faults-200",
        "faults-status",
        "faults-unknown",
        "faults-sum",
        "faults-twice",
        "faults-and-fail-rate",
        "deployments-missing",
    ],
)
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    """Bad options are refused before anything is served, saying what is wrong."""
    result = CliRunner().invoke(main, ["fake-server", *args])
    assert result.exit_code == 2
    assert "Error:" in result.output
    assert "listening" not in result.output
