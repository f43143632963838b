"""Rate limiters we did not write, started on loopback for the rate-limited benchmark.

Each :class:`Limiter` is a real server from Debian's packages, configured to
answer the stop route itself (200 with ``{"deployment_id": ...}``) and to
refuse with ``429`` and ``Retry-After: 1`` beyond ``R`` requests/s per
``X-API-Key``:

- ``nginx``: nginx's ``limit_req`` (a token bucket, leaky-bucket style) with
  ``burst=10 nodelay``. nginx's ``return`` runs before ``limit_req`` would, so
  the limited location proxies to a second ``server`` of the same nginx, on a
  unix socket, which answers. One process (``master_process off``).
- ``haproxy``: an HAProxy stick table ``http_req_rate(1s)`` per key, refusing
  when the rate over the last second is above ``R``. The rate counts refused
  requests too, so a client that keeps knocking stays locked out.
- ``haproxy-x``: the same, announcing itself in ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds) on every answer.
- ``haproxy-ietf``: the same, announcing itself in the IETF draft's fields:
  ``RateLimit-Policy: "default";q=R;w=1`` and ``RateLimit: "default";r=N;t=1``.

Every server runs from a temporary directory holding its configuration, pid
file, logs and (nginx) temp paths, on a free ``127.0.0.1`` port, so it runs as
root or not and leaves nothing behind. :meth:`LimiterProcess.start` waits for
the port; :meth:`LimiterProcess.stop` stops the server and removes the directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .server import process_cpu_seconds

__all__ = ["LIMITERS", "Limiter", "LimiterMissingError", "LimiterProcess"]

#: ``limit_req``'s ``burst`` for the nginx limiter.
NGINX_BURST = 10
#: Where Debian installs the servers; ``$PATH`` is searched first.
_SBIN = ("/usr/sbin", "/usr/local/sbin")
_START_TIMEOUT = 10.0

Headers = Literal["x-ratelimit", "ietf"] | None


class LimiterMissingError(RuntimeError):
    """A limiter's server binary is not installed."""


@dataclass(frozen=True)
class Limiter:
    """A rate limiter the benchmark can start.

    Attributes:
        name: Its name on the command line and in the results.
        program: The server binary.
        package: The Debian package that provides it.
        description: One line for the docs and the results.
        headers: Which rate-limit fields its answers carry, if any.
    """

    name: str
    program: Literal["nginx", "haproxy"]
    package: str
    description: str
    headers: Headers = None
    #: Seconds of the window ``rate`` requests are allowed in (1: a rate per second).
    window: float = 1.0
    #: A fixed window (reset at multiples of ``window`` since the epoch), not a sliding one.
    fixed: bool = False

    def burst(self) -> int:
        """Requests beyond its rate the limiter lets a whole batch have: nginx's burst, or 1.

        HAProxy's window lets its first second's allowance through at once, but
        its estimate then weighs that second into the next one: request n of the
        next second goes only once (n + 1) / R of it has passed. Every second
        holds at most R, bursting or not, so no schedule stops N ids in less
        than ``(N - 1) / R``.
        """
        return NGINX_BURST if self.program == "nginx" else 1

    def told_burst(self) -> int:
        """The burst a client that knows the limit is told: a token bucket's, or 1.

        A sliding window's first allowance cannot be spent at once by a token
        bucket: R at once and R more over the next second is 2R in one window.
        """
        return self.burst()

    def executable(self) -> str:
        """The server binary's path; raises :class:`LimiterMissingError` naming the package."""
        found = shutil.which(self.program) or shutil.which(
            self.program, path=os.pathsep.join(_SBIN)
        )
        if found is None:
            raise LimiterMissingError(
                f"{self.program} is not installed: the '{self.name}' limiter needs it "
                f"(Debian/Ubuntu: apt-get install {self.package})"
            )
        return found

    def config(self, *, rate: int, port: int, directory: Path, access_log: bool = False) -> str:
        """The server's configuration for ``rate`` requests/s per key on ``port``.

        ``access_log`` (nginx only): log each request's time and status to
        ``access.log`` in ``directory`` (what the server saw, for the shared-limit bench).
        """
        if self.program == "nginx" and self.window != 1.0:
            # A quota of ``rate`` per window as limit_req counts it: per minute, with
            # the whole quota as its burst (nginx lets 1 + burst through at once).
            return _nginx_config(
                rate=rate,
                port=port,
                directory=directory,
                access_log=access_log,
                per_minute=round(rate * 60 / self.window),
                burst=rate - 1,
                retry_after=int(self.window),
            )
        if self.program == "nginx":
            return _nginx_config(rate=rate, port=port, directory=directory, access_log=access_log)
        if self.window != 1.0 or self.fixed:
            return _haproxy_window_config(
                quota=rate, window=int(self.window), fixed=self.fixed, port=port
            )
        return _haproxy_config(rate=rate, port=port, headers=self.headers)


LIMITERS: dict[str, Limiter] = {
    limiter.name: limiter
    for limiter in (
        Limiter(
            name="nginx",
            program="nginx",
            package="nginx-light",
            description=f"nginx limit_req: token bucket, burst={NGINX_BURST} nodelay",
        ),
        Limiter(
            name="haproxy",
            program="haproxy",
            package="haproxy",
            description="HAProxy stick table http_req_rate(1s): sliding 1 s window, "
            "refusals counted",
        ),
        Limiter(
            name="haproxy-x",
            program="haproxy",
            package="haproxy",
            description="the HAProxy window, with X-RateLimit-Limit/-Remaining/-Reset",
            headers="x-ratelimit",
        ),
        Limiter(
            name="haproxy-10s",
            program="haproxy",
            package="haproxy",
            description="HAProxy stick table http_req_rate(10s): sliding 10 s window, "
            "refusals counted, Retry-After: 10",
            window=10.0,
        ),
        Limiter(
            name="haproxy-fixed-10s",
            program="haproxy",
            package="haproxy",
            description="HAProxy fixed 10 s windows (a counter per key and window), "
            "Retry-After: the seconds left in the window",
            window=10.0,
            fixed=True,
        ),
        Limiter(
            name="nginx-minute",
            program="nginx",
            package="nginx-light",
            description="nginx limit_req per minute (the 10 s quota's rate, the quota as "
            "its burst): a token bucket that refills a window's quota per window, "
            "Retry-After: 10",
            window=10.0,
        ),
        Limiter(
            name="haproxy-hour",
            program="haproxy",
            package="haproxy",
            description="HAProxy stick table http_req_rate(3600s): a quota per hour, "
            "Retry-After: 3600 once it is used up",
            window=3600.0,
        ),
        Limiter(
            name="haproxy-ietf",
            program="haproxy",
            package="haproxy",
            description="the HAProxy window, with IETF RateLimit-Policy/RateLimit",
            headers="ietf",
        ),
    )
}

_ROUTE = r"^/vendors/v1/machines/deployments/([^/]+)/stop$"
_LIMITED_BODY = '{"error":"rate limited"}'


def _nginx_config(
    *,
    rate: int,
    port: int,
    directory: Path,
    access_log: bool = False,
    per_minute: int | None = None,
    burst: int = NGINX_BURST,
    retry_after: int = 1,
) -> str:
    """``rate`` requests/s per key (or ``per_minute``), with ``burst``; 429 with ``retry_after``."""
    # As root, nginx would run its worker as "nobody", which cannot enter our 0700
    # directory; master_process off keeps one process, as whoever started it.
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    origin = directory / "origin.sock"
    limit = f"{rate}r/s" if per_minute is None else f"{per_minute}r/m"
    log = "access_log off;"
    if access_log:
        log = f"log_format seen '$msec $status';\n    access_log {directory / 'access.log'} seen;"
    return f"""\
daemon off;
master_process off;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    {log}
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    limit_req_zone $http_x_api_key zone=keys:10m rate={limit};
    limit_req_status 429;
    upstream origin {{ server unix:{origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location ~ {_ROUTE} {{
            limit_req zone=keys burst={burst} nodelay;
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        error_page 429 = @limited;
        location @limited {{
            add_header Retry-After {retry_after} always;
            default_type application/json;
            return 429 '{_LIMITED_BODY}';
        }}
    }}
    server {{
        listen unix:{origin};
        access_log off;  # what the limiter saw is logged once, by the server in front
        keepalive_requests 1000000;
        location ~ {_ROUTE} {{
            default_type application/json;
            return 200 '{{"deployment_id":"$1"}}';
        }}
    }}
}}
"""


def _haproxy_headers(headers: Headers, rate: int) -> str:
    """``http-request return`` arguments announcing the limit (``txn.left`` is what remains)."""
    if headers == "x-ratelimit":
        return (
            f" hdr X-RateLimit-Limit {rate}"
            ' hdr X-RateLimit-Remaining "%[var(txn.left)]"'
            " hdr X-RateLimit-Reset 1"
        )
    if headers == "ietf":
        return (
            f" hdr RateLimit-Policy '\"default\";q={rate};w=1'"
            " hdr RateLimit '\"default\";r=%[var(txn.left)];t=1'"
        )
    return ""


def _haproxy_frontend(*, port: int, limit: str, announce: str = "") -> str:
    """HAProxy answering the stop route on ``port`` itself, after the ``limit`` rules.

    ``limit``: the tracking rules and the 429 answer, each line indented;
    ``announce``: rate-limit headers added to the 200 too.
    """
    return f"""\
global
    maxconn 4096
    nbthread 1
defaults
    mode http
    timeout client 30s
    timeout server 30s
    timeout connect 5s
    option http-keep-alive
frontend api
    bind 127.0.0.1:{port}
{limit}    http-request return status 200 content-type application/json \
lf-string '{{"deployment_id":"%[path,field(6,/)]"}}'{announce} if {{ path_reg {_ROUTE} }}
    http-request return status 404 content-type application/json string '{{"error":"not found"}}'
"""


def _haproxy_config(*, rate: int, port: int, headers: Headers) -> str:
    announce = _haproxy_headers(headers, rate)
    limit = f"""\
    stick-table type string len 128 size 10k expire 30s store http_req_rate(1s)
    http-request track-sc0 req.hdr(X-API-Key)
    http-request set-var(txn.rate) sc_http_req_rate(0)
    http-request set-var(txn.left) int({rate}),sub(txn.rate)
    http-request set-var(txn.left) int(0) if {{ var(txn.left) -m int lt 0 }}
    http-request return status 429 content-type application/json \
string '{_LIMITED_BODY}' hdr Retry-After 1{announce} if {{ var(txn.rate) -m int gt {rate} }}
"""
    return _haproxy_frontend(port=port, limit=limit, announce=announce)


def _haproxy_window_config(*, quota: int, window: int, fixed: bool, port: int) -> str:
    """``quota`` requests per ``window`` seconds per key: sliding, or fixed (epoch-aligned).

    Sliding: ``http_req_rate(<window>s)``, refusals counted, ``Retry-After: <window>``.
    Fixed: the key tracked is the API key and the number of the window
    (``date`` divided by the window), so each window counts from zero; the
    ``Retry-After`` is the seconds until the window ends.
    """
    expire = f"expire {2 * window}s"
    if fixed:
        track = f"""\
    stick-table type string len 160 size 10k {expire} store http_req_cnt
    http-request set-var(txn.slot) date,div({window})
    http-request set-var(txn.key) req.hdr(X-API-Key),concat(_,txn.slot)
    http-request track-sc0 var(txn.key)
    http-request set-var(txn.count) sc_http_req_cnt(0)
    http-request set-var(txn.wait) date,mod({window}),neg,add({window})
"""
        refuse = "%[var(txn.wait)]"
    else:
        track = f"""\
    stick-table type string len 128 size 10k {expire} store http_req_rate({window}s)
    http-request track-sc0 req.hdr(X-API-Key)
    http-request set-var(txn.count) sc_http_req_rate(0)
"""
        refuse = str(window)
    limit = f"""{track}    http-request return status 429 content-type application/json \
string '{_LIMITED_BODY}' hdr Retry-After "{refuse}" if {{ var(txn.count) -m int gt {quota} }}
"""
    return _haproxy_frontend(port=port, limit=limit)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LimiterProcess:
    """A running limiter.

    Attributes:
        limiter: What it is.
        rate: Requests/s it allows per key.
        url: Its base URL.
        process: The server process.
        directory: Its temporary directory (configuration, logs).
    """

    limiter: Limiter
    rate: int
    url: str
    process: subprocess.Popen[bytes]
    directory: Path

    @classmethod
    def start(cls, limiter: Limiter, rate: int, *, access_log: bool = False) -> LimiterProcess:
        """Start ``limiter`` allowing ``rate`` requests/s per key; return once it accepts."""
        executable = limiter.executable()
        directory = Path(tempfile.mkdtemp(prefix=f"hiveon-bench-{limiter.name}-"))
        port = _free_port()
        config = directory / f"{limiter.program}.conf"
        config.write_text(
            limiter.config(rate=rate, port=port, directory=directory, access_log=access_log)
        )
        if limiter.program == "nginx":
            command = [executable, "-p", str(directory), "-e", str(directory / "error.log")]
            command += ["-c", str(config)]
        else:
            command = [executable, "-db", "-f", str(config)]
        with (directory / "output.log").open("wb") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        started = cls(limiter, rate, f"http://127.0.0.1:{port}", process, directory)
        try:
            started._wait_for(port)
        except BaseException:
            started.stop()
            raise
        return started

    def _wait_for(self, port: int) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.limiter.program} exited with status {self.process.returncode} "
                    f"at start: {self._logs()}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                time.sleep(0.02)
            else:
                return
        raise RuntimeError(f"{self.limiter.program} did not listen on port {port}: {self._logs()}")

    def _logs(self) -> str:
        texts = []
        for name in ("output.log", "error.log"):
            path = self.directory / name
            if path.exists():
                texts.append(path.read_text(errors="replace").strip())
        return " / ".join(text for text in texts if text)[-2000:] or "(no output)"

    def cpu_seconds(self) -> float | None:
        """The server's CPU seconds so far (user + system, Linux ``/proc``)."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
