"""The benchmark's server, in a process of its own: the FakeVendorAPI, or a lean stand-in.

``python -m tests.benchmarks.server --latency 0.05`` prints its base URL on the
first line of stdout, serves until its stdin is closed, then prints a JSON
line of what it saw and exits.

- ``--kind fake`` (the default): ``FakeVendorAPI(record=False).serve()``, the
  project's own fake (h11 on anyio). Recording is off, so its memory stays flat
  however many runs it serves; the benchmark reuses the same ids in every run,
  so the fake's per-id sets do not grow either. About 0.2 ms of CPU per request:
  it saturates its core near 5,000 requests/s.
- ``--kind lean``: a bare ``asyncio.Protocol`` that parses just enough HTTP/1.1
  (request line, ``Content-Length``, ``X-API-Key``) to answer the stop route
  with ``200 {"deployment_id": ...}`` (401 without the key, 404 elsewhere);
  several times cheaper per request, for when the fake is the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import anyio
import anyio.to_thread

from hiveon_async.testing import FakeVendorAPI, FaultPlan
from hiveon_async.testing._fake import DEFAULT_API_KEY, ROUTE_PREFIX, ROUTE_SUFFIX

__all__ = ["SERVER_KINDS", "ServerProcess", "main"]

SERVER_KINDS = ("fake", "lean")


async def _serve_fake(latency: float, host: str, port: int) -> None:
    fake = FakeVendorAPI(record=False, faults=FaultPlan(latency=latency))
    async with fake.serve(host=host, port=port) as base_url:
        print(base_url, flush=True)
        # Serve until the orchestrator closes our stdin (or dies).
        await anyio.to_thread.run_sync(sys.stdin.read)
    summary = {
        "requests": fake.request_count,
        "peak_in_flight": fake.peak_in_flight,
        "status_counts": {str(key): count for key, count in fake.status_counts.items()},
    }
    print(json.dumps(summary), flush=True)


def _response(status: int, body: bytes) -> bytes:
    reason = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found"}[status]
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % (status, reason, len(body)) + body


_UNAUTHORIZED = _response(401, b'{"status": 401, "message": "missing or unknown X-API-Key"}')
_NOT_FOUND = _response(404, b'{"status": 404, "message": "not found"}')


class _LeanProtocol(asyncio.Protocol):
    """One keep-alive connection of the lean server."""

    def __init__(self, latency: float, counts: dict[str, int]) -> None:
        self._latency = latency
        self._counts = counts
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            lines = bytes(self._buffer[:end]).split(b"\r\n")
            length, api_key = 0, None
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"x-api-key":
                    api_key = value.strip().decode("latin-1")
            if len(self._buffer) < end + 4 + length:
                return  # the body is still on its way
            del self._buffer[: end + 4 + length]
            self._answer(lines[0], api_key)

    def _answer(self, request_line: bytes, api_key: str | None) -> None:
        self._counts["requests"] += 1
        method, target, _ = request_line.decode("latin-1").split(" ", 2)
        path = target.partition("?")[0]
        if method != "POST" or not (path.startswith(ROUTE_PREFIX) and path.endswith(ROUTE_SUFFIX)):
            response = _NOT_FOUND
        elif api_key != DEFAULT_API_KEY:
            response = _UNAUTHORIZED
        else:
            deployment_id = unquote(path[len(ROUTE_PREFIX) : -len(ROUTE_SUFFIX)])
            response = _response(200, json.dumps({"deployment_id": deployment_id}).encode())
        if self._latency:
            self._loop.call_later(self._latency, self._send, response)
        else:
            self._send(response)

    def _send(self, response: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(response)


async def _serve_lean(latency: float, host: str, port: int) -> None:
    counts = {"requests": 0}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _LeanProtocol(latency, counts), host, port, backlog=4096
    )
    async with server:
        bound = server.sockets[0].getsockname()[1]
        print(f"http://{host}:{bound}", flush=True)
        await asyncio.to_thread(sys.stdin.read)
    print(json.dumps(counts), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=SERVER_KINDS, default="fake")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.kind == "lean":
        asyncio.run(_serve_lean(args.latency, args.host, args.port))
    else:
        anyio.run(_serve_fake, args.latency, args.host, args.port)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux ``/proc``; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces); utime and stime are 14 and 15.
    rest = text[text.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / _CLOCK_TICKS


@dataclass
class ServerProcess:
    """A running server process, as the orchestrator holds it.

    Attributes:
        latency: The latency it adds.
        url: Its base URL.
        process: The child process.
    """

    latency: float
    url: str
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, latency: float, kind: str = "fake", cwd: Path | None = None) -> ServerProcess:
        """Start a server and wait for its URL; ``cwd`` is the checkout it runs from."""
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.benchmarks.server",
                f"--kind={kind}",
                f"--latency={latency}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            process.kill()
            raise RuntimeError(f"the benchmark server did not start (said {url!r})")
        return cls(latency, url, process)

    def cpu_seconds(self) -> float | None:
        """The server's CPU seconds so far."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> dict[str, object]:
        """Stop the server; return its summary (empty if it gave none)."""
        try:
            # Closes its stdin, which tells it to stop; then reads its summary.
            out, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                summary: dict[str, object] = json.loads(line)
                return summary
        return {}


if __name__ == "__main__":
    main()
