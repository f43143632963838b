"""A real ``redis-server`` on a free loopback port, and a loopback proxy that can slow it.

The shared rate limit is proven against Debian's ``redis-server``, never a
mock of redis-py. A missing binary is a loud skip naming the package, and a
failure under CI (``$CI`` set), never a silent pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

__all__ = ["DelayProxy", "RedisServer", "free_port", "redis_binary", "self_signed"]

MISSING = (
    "redis-server is not installed: the shared rate limit's tests need Debian's "
    "redis-server (apt-get install redis-server)"
)


def redis_binary() -> str:
    """The ``redis-server`` binary; skips the test (fails it under CI) when there is none."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return found


def self_signed(directory: Path) -> Path:
    """A certificate for 127.0.0.1 (its key beside it, ``.key``), made by ``openssl``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        message = "openssl is not installed: the rediss:// test makes its certificate with it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cert = directory / "redis.crt"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(cert.with_suffix(".key")), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class RedisServer:
    """One ``redis-server`` on loopback, without persistence; stop and start it at will.

    Args:
        binary: The ``redis-server`` to run.
        password: A ``requirepass``, or None.
    """

    def __init__(
        self, binary: str, *, password: str | None = None, tls_cert: Path | None = None
    ) -> None:
        self.binary = binary
        self.password = password
        self.tls_cert = tls_cert  # a self-signed certificate, its key beside it: TLS only
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of the server (with the password, when it has one)."""
        auth = "" if self.password is None else f":{self.password}@"
        if self.tls_cert is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls_cert}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port)."""
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        if self.tls_cert is not None:
            key = self.tls_cert.with_suffix(".key")
            command[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            command += ["--tls-cert-file", str(self.tls_cert), "--tls-key-file", str(key)]
            command += ["--tls-ca-cert-file", str(self.tls_cert), "--tls-auth-clients", "no"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        if self.password is not None:
            command += ["--requirepass", self.password]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_listening(self.port)

    def stop(self) -> None:
        """Stop it; what it held is gone."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=10)

    def _client(self, *, decode_responses: bool = False) -> redis.Redis:
        tls: dict[str, Any] = {}
        if self.tls_cert is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls_cert)}
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            decode_responses=decode_responses,
            **tls,
        )

    def keys(self) -> list[str]:
        """Every key the server holds (through redis-py's plain client)."""
        with self._client(decode_responses=True) as conn:
            return sorted(conn.keys("*"))

    def calls(self, command: str) -> int:
        """How many times ``command`` (e.g. ``evalsha``) ran since the server started."""
        with self._client() as conn:
            stats = conn.info("commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


class DelayProxy:
    """A TCP proxy on loopback that holds each chunk toward Redis for ``delay`` seconds.

    Runs in threads, so it slows redis-py whatever event loop the test runs.
    """

    def __init__(self, target_port: int, *, delay: float) -> None:
        self.delay = delay
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        """``redis://`` URL through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._target))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if slow:
                    time.sleep(self.delay)
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting connections."""
        self._closed = True
        self._listener.close()


@contextlib.contextmanager
def running(server: RedisServer) -> Iterator[RedisServer]:
    """Start ``server`` for the block; stop it after."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
