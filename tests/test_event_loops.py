"""One client, one event loop after another: ``asyncio.run`` twice, a loop per test, trio.

A connection belongs to the loop that opened it. The client's own pools
(httpcore's, aiohttp's) are let go of, their sockets closed without the loop
that is gone, and opened again on the new loop: no error, no ResourceWarning,
no file descriptor left open. A user's own ``http_client`` cannot be rebuilt:
bound to a loop that is gone, it fails with an ``APIConnectionError`` that
says what to do, and the call after it works.

These tests run their own event loops (that is the point), so they are plain
functions, not ``@pytest.mark.anyio`` ones. The fake serves from a thread.
"""

from __future__ import annotations

import asyncio
import gc
import os
import ssl
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest
import trio

from hiveon_async import APIConnectionError, AsyncVendorClient, RetryPolicy, StopResult
from hiveon_async._policy._slots import Slots
from hiveon_async.testing import FakeVendorAPI, Fault, set_testing

pytestmark = pytest.mark.socket

Runner = Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any]


def run_asyncio(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(make())


def run_trio(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return trio.run(make)


RUNNERS: dict[str, Runner] = {"asyncio": run_asyncio, "trio": run_trio}


def open_fds() -> int:
    """File descriptors this process has open now."""
    return len(os.listdir("/proc/self/fd"))


class Served:
    """A fake served from a thread, and a client of it that outlives every event loop."""

    def __init__(self, fake: FakeVendorAPI, url: str) -> None:
        self.fake = fake
        self.url = url

    def client(self, **options: Any) -> AsyncVendorClient:
        options.setdefault("retry", RetryPolicy(max_attempts=2))
        return self.fake.client(base_url=self.url, transport=None, **options)

    def settle(self) -> None:
        """Wait until the fake has closed every connection (its side closes a turn late)."""
        deadline = time.monotonic() + 5
        while self.fake.open_connections and time.monotonic() < deadline:
            time.sleep(0.005)
        gc.collect()


@contextmanager
def served() -> Iterator[Served]:
    """Serve a fake on 127.0.0.1 from a thread; retries wait nothing meanwhile."""
    fake = FakeVendorAPI()
    with set_testing(True), fake.serve_in_thread() as url:
        yield Served(fake, url)


@contextmanager
def no_leaks(vendor: Served) -> Iterator[None]:
    """Fail if the block leaves a ResourceWarning or an open file descriptor behind."""
    before = open_fds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        vendor.settle()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked
    assert open_fds() == before


def stop(client: AsyncVendorClient, deployment_id: str) -> Callable[[], Coroutine[Any, Any, str]]:
    async def call() -> str:
        result = await client.stop_deployment(deployment_id)
        assert client._engine.pool is not None
        return f"{result.deployment_id} {client._engine.pool}"

    return call


def close(client: AsyncVendorClient) -> Callable[[], Coroutine[Any, Any, None]]:
    async def call() -> None:
        await client.aclose()

    return call


@pytest.mark.parametrize(
    ("backend", "pool"),
    [("asyncio", "httpcore"), ("asyncio", "aiohttp"), ("trio", "httpcore")],
)
def test_a_client_works_on_one_event_loop_after_another(backend: str, pool: str) -> None:
    """Three runs of the loop, one client: each call succeeds on a pool of its own loop.

    It used to fail on the second run with a bare "Event loop is closed", and
    on aiohttp at every run after that.
    """
    run = RUNNERS[backend]
    with served() as vendor, no_leaks(vendor):
        client = vendor.client(speedups=pool == "aiohttp")
        answers = [run(stop(client, f"dep-{n}")) for n in range(3)]
        run(close(client))

    assert answers == [f"dep-{n} {pool}" for n in range(3)]
    assert vendor.fake.status_counts == {200: 3}


def test_a_client_moves_between_asyncio_and_trio(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio, trio, asyncio: the pool the running loop calls for each time, opened anew.

    Each loop's pool is new, but its TLS context is the client's first one. A
    context takes about 20 ms to make (the CA store). A pool opened on a later
    loop is made inside the first send, after the gate's turn: making a context
    there sent that request 20 ms late, bunched with the next.
    """
    made: list[ssl.SSLContext] = []
    make_context = httpx.create_ssl_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(make_context(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(httpx, "create_ssl_context", counted)
    with served() as vendor, no_leaks(vendor):
        client = vendor.client()
        answers = [run(stop(client, "dep-1")) for run in (run_asyncio, run_trio, run_asyncio)]
        run_trio(close(client))

    assert answers == ["dep-1 aiohttp", "dep-1 httpcore", "dep-1 aiohttp"]
    assert len(made) == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_batch_runs_on_a_second_loop(backend: str) -> None:
    """A batch wider than slow start's first window, on a loop after another."""
    run = RUNNERS[backend]
    ids = [f"dep-{n}" for n in range(40)]
    with served() as vendor, no_leaks(vendor):
        client = vendor.client()

        async def batch() -> int:
            report = await client.stop_deployments(ids, concurrency=16)
            return len(report.stopped)

        assert [run(batch), run(batch)] == [40, 40]
        run(close(client))


def test_a_batch_runs_on_trio_after_asyncio() -> None:
    """The gate's slow-start event, made under asyncio, is not waited on under trio."""
    ids = [f"dep-{n}" for n in range(40)]
    with served() as vendor:
        client = vendor.client()

        async def batch() -> int:
            report = await client.stop_deployments(ids, concurrency=16)
            return len(report.stopped)

        try:
            # Slow start's rounds double up to 64: the second batch waits for a round's end.
            assert run_asyncio(batch) == 40
            assert run_trio(batch) == 40
        finally:
            run_trio(close(client))


#: Calls left pending on a closed loop, kept for good: the garbage collector would close
#: their coroutines outside any loop, running the engine's cleanup where it cannot run.
LEFT_ON_DEAD_LOOPS: list[asyncio.Task[StopResult]] = []


@pytest.mark.parametrize("pool", ["httpcore", "aiohttp"])
def test_a_loop_closed_with_a_call_in_flight_leaves_the_client_usable(pool: str) -> None:
    """A loop closed under a call (no cancellation, nothing cleaned up): the next loop works.

    Its slot, its turn at the gate and its connection are never given back:
    the next loop starts over without them, and the connection's socket is
    closed when the pool is let go of.
    """
    with served() as vendor, no_leaks(vendor):
        vendor.fake.script("slow", [Fault.stall(seconds=2)])
        client = vendor.client(speedups=pool == "aiohttp")
        loop = asyncio.new_event_loop()
        left = LEFT_ON_DEAD_LOOPS

        async def start() -> None:
            left.append(loop.create_task(client.stop_deployment("slow")))
            while not vendor.fake.in_flight:  # noqa: ASYNC110 - a counter, no event
                await asyncio.sleep(0.005)

        loop.run_until_complete(start())
        loop.close()  # the call is still in flight

        async def batch() -> int:
            with anyio.fail_after(5):
                report = await client.stop_deployments([f"dep-{n}" for n in range(40)])
            await client.aclose()
            return len(report.stopped)

        assert run_asyncio(batch) == 40
        assert not left[-1].done()


def test_the_client_closes_on_another_loop_than_its_pool() -> None:
    """aclose() on a loop after the pool's: its sockets are closed at once, nothing awaited."""
    with served() as vendor, no_leaks(vendor):
        client = vendor.client(speedups=True)
        run_asyncio(stop(client, "dep-1"))
        run_asyncio(close(client))
        assert client.closed


def test_an_http_client_bound_to_a_closed_loop_says_what_to_do() -> None:
    """A user's client with connections of a loop that is gone: a clear typed error, once.

    The user's client is theirs: we cannot rebuild it. Its pool drops the
    connection that failed, so the call after the error works. (Its dead
    connection's socket is the user's client's to leak: its ResourceWarning
    is not ours.)
    """
    with served() as vendor, warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        own = httpx.AsyncClient()
        client = vendor.client(http_client=own, retry=RetryPolicy(max_attempts=1))
        assert run_asyncio(stop(client, "dep-1")) == "dep-1 http_client"

        async def twice() -> APIConnectionError:
            with pytest.raises(APIConnectionError) as caught:
                await client.stop_deployment("dep-2")
            await client.stop_deployment("dep-3")  # not broken for good
            await own.aclose()  # on the loop of its connections, as its owner must
            return caught.value

        error = run_asyncio(twice)
        run_asyncio(close(client))
        gc.collect()

    message = str(error)
    assert "EventLoopError" in message
    assert "another event loop" in message
    assert "create it inside the event loop that uses it" in message
    assert error.maybe_applied  # the request may have gone out before the loop was missed
    assert isinstance(error.__cause__, httpx.TransportError)


def test_an_http_client_bound_to_a_closed_loop_recovers_with_a_retry() -> None:
    """With retries, the call on the new loop succeeds: the retry gets a fresh connection."""
    with served() as vendor, warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        own = httpx.AsyncClient()
        client = vendor.client(http_client=own)
        first = run_asyncio(stop(client, "dep-0"))

        async def then_close() -> str:
            answer = await stop(client, "dep-1")()
            await own.aclose()  # on the loop of its connections, as its owner must
            return answer

        answers = [first, run_asyncio(then_close)]
        run_asyncio(close(client))
        gc.collect()

    assert answers == ["dep-0 http_client", "dep-1 http_client"]


def test_an_http_client_works_across_trio_runs() -> None:
    """On trio a user's client carries over between runs; nothing of ours is in the way."""
    with served() as vendor, warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the user's client's, not ours
        own = httpx.AsyncClient()
        client = vendor.client(http_client=own)
        answers = [run_trio(stop(client, f"dep-{n}")) for n in range(2)]
        run_trio(own.aclose)
        run_trio(close(client))
        gc.collect()

    assert answers == ["dep-0 http_client", "dep-1 http_client"]


class CountsCloses(httpx.AsyncBaseTransport):
    """The fake's in-process transport, counting its closes."""

    def __init__(self, fake: FakeVendorAPI) -> None:
        self.inner = fake.transport()
        self.closes = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        self.closes += 1
        await self.inner.aclose()


def test_a_transport_of_your_own_carries_over_and_is_closed_with_the_client() -> None:
    """``transport=`` is the user's: used as it is on every loop, closed by aclose() as always."""
    fake = FakeVendorAPI()
    transport = CountsCloses(fake)
    with set_testing(True):
        client = fake.client(transport=transport)
        answers = [run(stop(client, "dep-1")) for run in (run_asyncio, run_trio, run_asyncio)]
        run_trio(close(client))

    assert answers == ["dep-1 transport"] * 3
    assert transport.closes == 1


# -- the slots ------------------------------------------------------------------------


def test_slots_held_on_a_loop_that_is_gone_are_free_on_the_next() -> None:
    """Slots never released (their loop closed under them) are free again on a new loop."""
    slots = Slots(2)
    moves: list[bool] = []

    async def take_all() -> None:
        assert slots.try_take()
        assert slots.try_take()
        assert not slots.try_take()

    asyncio.run(take_all())  # never released: the loop that held them is gone
    slots.on_new_loop = lambda: moves.append(True)

    async def take_again() -> None:
        assert slots.try_take()
        assert slots.try_take()
        slots.release()
        slots.release()

    trio.run(take_again)
    assert moves == [True]


def test_a_waiter_left_on_a_closed_loop_is_not_woken() -> None:
    """A waiter of a closed loop is dropped: giving it a slot would call into the dead loop."""
    slots = Slots(1)
    loop = asyncio.new_event_loop()
    left: list[asyncio.Task[None]] = []

    async def hold_and_wait() -> None:
        assert slots.try_take()
        left.append(loop.create_task(slots.take()))  # waits forever: the loop closes under it
        await asyncio.sleep(0)

    loop.run_until_complete(hold_and_wait())
    loop.close()
    assert not left[0].done()

    async def on_a_new_loop() -> None:
        slots.grow(1)  # would hand the new slot to the dead waiter
        assert slots.try_take()
        slots.release()  # would too

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the dead task's coroutine, never awaited
        asyncio.run(on_a_new_loop())
        gc.collect()


def test_a_release_from_a_loop_that_is_gone_is_ignored() -> None:
    """A holder of the old loop that releases late does not add a slot to the new count."""
    slots = Slots(1)

    async def take() -> None:
        assert slots.try_take()

    asyncio.run(take())

    async def take_and_release_late() -> None:
        assert slots.try_take()
        assert not slots.try_take()

    asyncio.run(take_and_release_late())
    slots.release()  # outside any loop: the old holder, finishing at last
    assert slots._free == 0
