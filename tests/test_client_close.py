"""Closing a client with work pending: after ``aclose()`` returns nothing is sent and nothing leaks.

A call waiting to retry when the client closes wakes to ``ClientClosedError``
(a ``RuntimeError`` and a ``HiveonError``), sending nothing more; a batch
closed midway sends no request after the close, and accounts for every id.
File descriptors return to their count from before the client was made.
Each case runs through every pool over a real socket.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import anyio
import httpx
import pytest

from hiveon_async import AsyncVendorClient, HiveonError, RetryPolicy, StopOutcome
from hiveon_async._clock import Clock
from hiveon_async._errors import ClientClosedError
from hiveon_async.testing import FakeVendorAPI, Fault

pytestmark = [pytest.mark.anyio, pytest.mark.socket]

POOLS = ["httpcore", "aiohttp", "http_client", "transport"]


@pytest.fixture(params=POOLS)
def any_pool(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Every way the client sends: the lean pool, aiohttp's, a user's client, a transport."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp's pool runs on asyncio only")
    return str(request.param)


def open_fds() -> int:
    """File descriptors this process has open now."""
    return len(os.listdir("/proc/self/fd"))


async def settled_fds() -> int:
    """Open descriptors once closing sockets are gone (the loop may close them a turn late)."""
    for _ in range(5):
        await anyio.sleep(0.01)
    gc.collect()
    return open_fds()


class HeldBackoff(Clock):
    """A clock whose retry wait blocks until the test lets it go, and tells when it began."""

    def __init__(self) -> None:
        self.waiting = anyio.Event()
        self.release = anyio.Event()

    @property
    def testing(self) -> bool:
        return False

    async def backoff(self, seconds: float) -> None:
        self.waiting.set()
        await self.release.wait()


def build(
    fake: FakeVendorAPI, pool: str, base_url: str, own: httpx.AsyncClient | None, **options: Any
) -> AsyncVendorClient:
    """A client of ``fake`` through ``pool``."""
    if pool == "transport":
        return fake.client(**options)
    return fake.client(
        base_url=base_url,
        speedups=pool == "aiohttp",
        transport=None,
        http_client=own,
        **options,
    )


async def test_a_call_waiting_to_retry_sends_nothing_after_aclose(any_pool: str) -> None:
    """The retry wakes after aclose() to ClientClosedError; the server saw one request only."""
    fake = FakeVendorAPI()
    fake.script("dep-1", [503, 200])
    clock = HeldBackoff()
    caught: list[BaseException] = []
    async with fake.serve() as base_url:
        own = httpx.AsyncClient() if any_pool == "http_client" else None
        before = await settled_fds()
        client = build(fake, any_pool, base_url, own, retry=RetryPolicy(max_attempts=3))
        client._engine.use_clock(clock)

        async def call() -> None:
            try:
                await client.stop_deployment("dep-1")
            except BaseException as exc:
                caught.append(exc)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(call)
                await clock.waiting.wait()
                await client.aclose()
                clock.release.set()
        if own is not None:
            await own.aclose()
        after = await settled_fds()

    [error] = caught
    assert isinstance(error, ClientClosedError)
    assert isinstance(error, RuntimeError)
    assert isinstance(error, HiveonError)
    assert str(error) == "this AsyncVendorClient is closed"
    assert error.attempts == 1  # the 503 was sent
    assert error.maybe_applied  # and may have acted
    assert fake.request_count == 1
    assert after == before


async def test_a_batch_closed_midway_sends_nothing_more_and_accounts_for_every_id(
    any_pool: str,
) -> None:
    """Closing from on_outcome: no request after the close; the rest end skipped, typed."""
    fake = FakeVendorAPI()
    ids = [f"dep-{n}" for n in range(20)]
    for deployment_id in ids[1:4]:
        fake.script(deployment_id, [Fault.stall(seconds=30)])
    seen: list[StopOutcome] = []
    sent_at_close: list[int] = []
    async with fake.serve() as base_url:
        own = httpx.AsyncClient() if any_pool == "http_client" else None
        before = await settled_fds()
        client = build(
            fake, any_pool, base_url, own, retry=RetryPolicy(max_attempts=3, initial_delay=0.0)
        )

        async def on_outcome(outcome: StopOutcome) -> None:
            seen.append(outcome)
            if len(seen) == 1:
                # The three stalled requests have all arrived.
                while fake.request_count < 4:  # noqa: ASYNC110 - a counter, no event
                    await anyio.sleep(0.005)
                await client.aclose()
                sent_at_close.append(fake.request_count)

        with anyio.fail_after(15):
            report = await client.stop_deployments(ids, concurrency=4, on_outcome=on_outcome)
        if own is not None:
            await own.aclose()
        after = await settled_fds()

    assert sent_at_close == [4]
    assert fake.request_count == 4  # nothing reached the server after the close
    assert len(report) == len(ids) == len(seen)
    assert report["dep-0"].ok
    for deployment_id in ids[1:4]:  # in flight at the close: failed, and may have acted
        outcome = report[deployment_id]
        assert outcome.status == "failed", outcome
        assert outcome.maybe_applied, outcome
    for outcome in list(report)[4:]:
        assert outcome.status == "skipped"
        assert isinstance(outcome.error, ClientClosedError)
    assert after == before


async def test_calls_after_aclose_raise_the_documented_error(any_pool: str) -> None:
    """A call or a batch on a closed client: ClientClosedError, which is a RuntimeError."""
    fake = FakeVendorAPI()
    async with fake.serve() as base_url:
        own = httpx.AsyncClient() if any_pool == "http_client" else None
        client = build(fake, any_pool, base_url, own)
        await client.stop_deployment("dep-1")
        await client.aclose()
        with pytest.raises(RuntimeError, match="this AsyncVendorClient is closed"):
            await client.stop_deployment("dep-2")
        with pytest.raises(ClientClosedError):
            await client.stop_deployments(["dep-3"])
        if own is not None:
            await own.aclose()
    assert fake.request_count == 1
