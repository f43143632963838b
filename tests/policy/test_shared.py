"""The rate limit shared through a real ``redis-server`` (``redis_url``).

redis-py's asyncio client runs on asyncio only, so the client refuses
``redis_url`` under trio: the tests of sharing run on asyncio, and the
refusal is tested on both backends.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import socket
import threading
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from hiveon_async import (
    AsyncVendorClient,
    HiveonError,
    InvalidRequestError,
    RateLimit,
    RetryPolicy,
)
from hiveon_async._clock import Clock, set_testing
from hiveon_async._policy import _shared
from hiveon_async._policy._gate import HEADROOM, SendGate
from hiveon_async._policy._shared import Booking, SharedLimit
from hiveon_async.testing import FakeVendorAPI, Fault

from .redis_server import DelayProxy, RedisServer, free_port, redis_binary, self_signed

pytestmark = [pytest.mark.anyio, pytest.mark.socket]

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.fixture(autouse=True)
def real_waits() -> Iterator[None]:
    """Holds and pacing are real here: the limit is what is tested."""
    with set_testing(False):
        yield


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free loopback port, for one test."""
    server = RedisServer(redis_binary())
    server.start()
    yield server
    server.stop()


def most_in_window(times: list[float], width: float) -> int:
    """The most arrivals in any half-open window [t, t + width)."""
    ordered = sorted(times)
    return max(
        sum(1 for t in ordered[i:] if t < start + width - 1e-9) for i, start in enumerate(ordered)
    )


async def stop_many(client: AsyncVendorClient, prefix: str, count: int) -> int:
    """Stop ``count`` ids through ``client`` in a batch; how many were stopped."""
    report = await client.stop_deployments([f"{prefix}-{i}" for i in range(count)], concurrency=16)
    return len(report.stopped)


@asyncio_only
async def test_clients_on_one_key_share_one_bucket(redis_server: RedisServer) -> None:
    """Two clients on one key and one Redis send at the shared rate together, not each."""
    fake = FakeVendorAPI()
    limit = RateLimit(per_second=20, burst=2)
    async with (
        fake.client(rate_limit=limit, redis_url=redis_server.url) as first,
        fake.client(rate_limit=limit, redis_url=redis_server.url) as second,
    ):
        stopped: list[int] = []

        async def run(client: AsyncVendorClient, prefix: str) -> None:
            stopped.append(await stop_many(client, prefix, 25))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, first, "a")
            tg.start_soon(run, second, "b")
    assert stopped == [25, 25]
    arrivals = [request.arrived_at for request in fake.requests]
    # 20/s and a burst of 2 in any second, plus one for a timer that woke a little late;
    # each client alone would have sent 20/s, 40/s together.
    assert most_in_window(arrivals, 1.0) <= 20 + 2 + 1


@asyncio_only
async def test_redis_keys_name_a_fingerprint_never_the_key(redis_server: RedisServer) -> None:
    """The keys in Redis hold neither the API key nor the CLORE_API_KEY."""
    api_key, clore = f"hk{secrets.token_hex(12)}", f"ck{secrets.token_hex(12)}"
    fake = FakeVendorAPI(api_keys=[api_key], clore_api_key=clore)
    async with fake.client(rate_limit=RateLimit(per_second=50), redis_url=redis_server.url) as c:
        await c.stop_deployment("dep-1")
    keys = redis_server.keys()
    assert keys, "the shared bucket is kept in Redis"
    assert all(key.startswith("hiveon-async:") for key in keys)
    assert not any(api_key in key or clore in key for key in keys)


@asyncio_only
async def test_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    """Redis down at the first call: an error naming host and port, never the password."""
    password = f"pw{secrets.token_hex(8)}"
    port = free_port()
    fake = FakeVendorAPI()
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    async with fake.client(rate_limit=RateLimit(per_second=50), redis_url=url) as client:
        assert password not in repr(client)
        with pytest.raises(HiveonError) as caught:
            await client.stop_deployment("dep-1")
    assert f"127.0.0.1:{port}" in str(caught.value)
    shown = "".join(traceback.format_exception(caught.value))
    assert password not in shown
    assert fake.request_count == 0


@asyncio_only
async def test_a_password_is_used_and_a_wrong_one_is_not_shown() -> None:
    """``requirepass``: the right password shares the limit; a wrong one errs, unshown."""
    server = RedisServer(redis_binary(), password=f"pw{secrets.token_hex(8)}")
    server.start()
    try:
        fake = FakeVendorAPI()
        limit = RateLimit(per_second=50)
        async with fake.client(rate_limit=limit, redis_url=server.url) as client:
            await client.stop_deployment("dep-1")
        assert server.keys()
        wrong = f"pw{secrets.token_hex(8)}"
        url = f"redis://:{wrong}@127.0.0.1:{server.port}/0"
        async with fake.client(rate_limit=limit, redis_url=url) as client:
            with pytest.raises(HiveonError) as caught:
                await client.stop_deployment("dep-2")
        assert wrong not in "".join(traceback.format_exception(caught.value))
    finally:
        server.stop()


@asyncio_only
async def test_rediss_with_a_password_shares_the_limit_over_tls(tmp_path: Path) -> None:
    """A ``rediss://`` URL with a password and a CA in its query: the bucket is kept there."""
    password = f"pw{secrets.token_hex(8)}"
    server = RedisServer(redis_binary(), password=password, tls_cert=self_signed(tmp_path))
    server.start()
    try:
        fake = FakeVendorAPI()
        async with fake.client(rate_limit=RateLimit(per_second=50), redis_url=server.url) as c:
            assert password not in repr(c._engine.gate.shared)
            await c.stop_deployment("dep-1")
        assert server.keys()
    finally:
        server.stop()


async def test_a_redis_url_redis_py_refuses_is_refused_at_construction() -> None:
    """A bad query argument is an InvalidRequestError when the client is made, not later."""
    url = "redis://:secret-pw@127.0.0.1:6379/0?socket_timeout=soon"
    with pytest.raises(InvalidRequestError) as caught:
        FakeVendorAPI().client(rate_limit=RateLimit(per_second=5), redis_url=url)
    assert "secret-pw" not in str(caught.value)


@asyncio_only
async def test_redis_lost_mid_run_the_batch_goes_on_and_sharing_comes_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops mid-batch: every id is still stopped, one warning, and Redis is used again."""
    fake = FakeVendorAPI()
    caplog.set_level(logging.WARNING, logger="hiveon_async")
    async with fake.client(
        rate_limit=RateLimit(per_second=40, burst=4), redis_url=redis_server.url
    ) as client:
        shared = client._engine.gate.shared
        assert shared is not None
        assert await stop_many(client, "before", 10) == 10
        redis_server.stop()
        assert await stop_many(client, "during", 30) == 30
        down = [shared.down]
        lost = [r for r in caplog.records if "lost the shared rate limit" in r.getMessage()]
        assert len(lost) == 1
        redis_server.start()  # empty: the bucket starts over
        await anyio.sleep(1.2)  # RETRY_AFTER: the next request tries Redis again
        assert await stop_many(client, "after", 10) == 10
        down.append(shared.down)
    assert down == [True, False], "on its own while Redis was gone, shared again after"
    assert redis_server.keys(), "the bucket is kept in Redis again"
    assert len(fake.stopped) == 50


@asyncio_only
async def test_a_slow_redis_books_many_turns_per_round_trip(redis_server: RedisServer) -> None:
    """Redis 100 ms away: every call goes through, and round trips are far fewer than calls."""
    proxy = DelayProxy(redis_server.port, delay=0.1)
    try:
        fake = FakeVendorAPI()
        limit = RateLimit(per_second=100, burst=5)
        async with fake.client(rate_limit=limit, redis_url=proxy.url()) as client:
            assert await stop_many(client, "slow", 60) == 60
    finally:
        proxy.close()
    # The queue's head books a turn for each waiter behind it in one script call.
    round_trips = redis_server.calls("evalsha") + redis_server.calls("eval")
    assert 0 < round_trips < 60 / 4
    arrivals = [request.arrived_at for request in fake.requests]
    assert most_in_window(arrivals, 1.0) <= 100 + 5 + 1


@asyncio_only
async def test_a_slow_redis_books_turns_two_round_trips_ahead_at_a_learned_pace(
    redis_server: RedisServer,
) -> None:
    """Redis 100 ms away at a learned 100/s: each booking covers its round trips, not 20 ms.

    Booked only 20 ms ahead, each answer would bring two turns, due before it
    arrived: a fifth of the learned rate.
    """
    proxy = DelayProxy(redis_server.port, delay=0.1)
    shared = SharedLimit(proxy.url(), api_key="far", base_url="https://api.hiveon.ai")
    try:
        assert await shared.book(1, None, 1, learned=100.0) is not None  # the first round trip
        booking = await shared.book(40, None, 1, learned=100.0)
    finally:
        await shared.aclose()
        proxy.close()
    assert booking is not None
    assert len(booking.delays) >= 20  # 0.2 s of turns at 100/s, at least


@asyncio_only
async def test_a_503_hold_holds_every_client_on_the_key(redis_server: RedisServer) -> None:
    """A 503 with Retry-After to one client holds the other client's sending too."""
    fake = FakeVendorAPI()
    fake.script("held", [Fault.status(503, retry_after=1)])
    retry = RetryPolicy(max_attempts=1)
    limit = RateLimit(per_second=50)
    async with (
        fake.client(rate_limit=limit, redis_url=redis_server.url, retry=retry) as first,
        fake.client(rate_limit=limit, redis_url=redis_server.url, retry=retry) as second,
    ):
        with pytest.raises(HiveonError):
            await first.stop_deployment("held")
        async with anyio.create_task_group() as tg:
            # The first client's next call is held, and tells Redis so.
            tg.start_soon(first.stop_deployment, "next")
            await anyio.sleep(0.2)
            await second.stop_deployment("other")
    refused = fake.requests[0]
    other = next(request for request in fake.requests if request.deployment_id == "other")
    # The fake's 503 says Retry-After: 1; a lower bound only, for a loaded machine.
    assert other.arrived_at - refused.arrived_at >= 0.9


async def test_redis_url_is_refused_on_trio_and_accepted_on_asyncio(anyio_backend: str) -> None:
    """On trio, ``redis_url`` is a clear InvalidRequestError at construction."""
    fake = FakeVendorAPI()
    limit = RateLimit(per_second=HEADROOM * 10)
    if anyio_backend == "trio":
        with pytest.raises(InvalidRequestError, match="asyncio only"):
            fake.client(rate_limit=limit, redis_url="redis://127.0.0.1:1/0")
    else:
        await fake.client(rate_limit=limit, redis_url="redis://127.0.0.1:1/0").aclose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379", "must start with redis://"),
        ("redis://127.0.0.1:port/0", "port"),
    ],
)
async def test_a_bad_redis_url_is_refused_before_any_io(url: str, message: str) -> None:
    """A malformed URL is an InvalidRequestError at construction."""
    with pytest.raises(InvalidRequestError, match=message):
        FakeVendorAPI().client(rate_limit=RateLimit(per_second=5), redis_url=url)


@asyncio_only
async def test_redis_url_without_a_rate_limit_shares_what_is_learned(
    redis_server: RedisServer,
) -> None:
    """No ``rate_limit``: the client still books through Redis, and tells it its answers."""
    fake = FakeVendorAPI()
    async with fake.client(redis_url=redis_server.url) as client:
        assert await stop_many(client, "learn", 10) == 10
    assert redis_server.calls("evalsha") + redis_server.calls("eval") > 0
    assert any(key.endswith(":ok") for key in list(redis_server.keys()))


@pytest.fixture
async def stores(redis_server: RedisServer) -> AsyncIterator[tuple[SharedLimit, SharedLimit]]:
    """Two stores on one key, as two processes would have; closed after the test."""
    pair = (
        SharedLimit(redis_server.url, api_key="two", base_url="https://api.hiveon.ai"),
        SharedLimit(redis_server.url, api_key="two", base_url="https://api.hiveon.ai"),
    )
    yield pair
    for store in pair:
        await store.aclose()


async def booked(
    store: SharedLimit, count: int, interval: float | None = None, learned: float | None = None
) -> Booking:
    """Book through ``store`` (burst 1), which must answer."""
    booking = await store.book(count, interval, 1, learned)
    assert booking is not None, "Redis answered"
    return booking


def spacing(booking: Booking) -> list[float]:
    """The time between consecutive booked turns, to the microsecond."""
    return [round(later - earlier, 6) for earlier, later in itertools.pairwise(booking.delays)]


@asyncio_only
async def test_the_key_counts_every_processs_successes(
    stores: tuple[SharedLimit, SharedLimit],
) -> None:
    """Each booking tells Redis its answers; each answer holds the whole key's count."""
    first, second = stores
    for _ in range(3):
        first.answered()
    for _ in range(2):
        second.answered()
    assert (await booked(first, 0)).successes[0] == 3
    both = (await booked(second, 0)).successes
    assert both[0] == 5  # the last second: every process's
    assert both[0] >= both[1] >= both[2]


@asyncio_only
async def test_the_bucket_runs_at_the_highest_learned_rate_that_stands(
    stores: tuple[SharedLimit, SharedLimit], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Learned rates told by two processes: the highest paces the key, until it lapses."""
    monkeypatch.setattr(_shared, "HORIZON", 60.0)  # book every turn asked, to see the spacing
    first, second = stores
    assert spacing(await booked(first, 3, learned=10.0)) == [0.1, 0.1]
    assert spacing(await booked(second, 3, learned=20.0)) == [0.05, 0.05]
    # The second stops pacing: the first's rate stands.
    assert spacing(await booked(second, 2)) == [0.1]
    # Under a configured ceiling, the learned rate paces only when it is lower.
    assert spacing(await booked(first, 2, 1 / 5, learned=10.0)) == [0.2]


@asyncio_only
async def test_a_learned_rate_lapses_when_its_process_stops_booking(
    stores: tuple[SharedLimit, SharedLimit], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that ended leaves its rate behind only for LEARNED_LIFETIME."""
    monkeypatch.setattr(_shared, "HORIZON", 60.0)
    monkeypatch.setattr(_shared, "LEARNED_LIFETIME", 0.05)
    first, second = stores
    await booked(first, 1, learned=100.0)
    await anyio.sleep(0.2)
    # Nothing learned stands: no pace.
    assert (await booked(second, 3)).delays == [0.0, 0.0, 0.0]


@asyncio_only
async def test_two_processes_take_turns_at_the_learned_pace(
    stores: tuple[SharedLimit, SharedLimit],
) -> None:
    """One process learned 10/s; another on the key, unpaced, goes at that pace too.

    Their turns interleave from one bucket: together 10/s, not 10/s plus an
    unpaced process.
    """
    first, second = stores
    learned = SendGate(None, clock=Clock(), shared=first)
    fresh = SendGate(None, clock=Clock(), shared=second)
    assert learned.pacer is not None
    learned.pacer.rate = 10.0  # as after a cut
    went: list[float] = []

    async def take(gate: SendGate) -> None:
        went.append(await gate.wait_turn())
        gate.done()

    await learned.wait_turn()  # its first booking tells Redis the rate it learned
    learned.done()
    async with anyio.create_task_group() as tg:
        for gate in (learned, fresh, learned, fresh, learned, fresh):
            tg.start_soon(take, gate)
    # Six turns at 10/s span half a second (a late timer only lengthens it); alone,
    # the learned process's three would span 0.2 s and the other's go at once.
    assert max(went) - min(went) >= 0.45


@asyncio_only
async def test_a_turn_beyond_the_horizon_is_not_booked(
    stores: tuple[SharedLimit, SharedLimit],
) -> None:
    """At a slow learned pace only the turns due within HORIZON are booked; then a wait."""
    first, _ = stores
    now = await booked(first, 3, learned=2.0)
    assert now.delays == [0.0]
    assert now.wait is None
    later = await booked(first, 1, learned=2.0)
    assert later.delays == []
    assert later.wait is not None
    assert 0.3 < later.wait <= 0.5


async def test_the_environment_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    """``$HIVEON_REDIS_URL`` is used when no ``redis_url`` is given, and named in errors."""
    monkeypatch.setenv("HIVEON_REDIS_URL", "ftp://nowhere")
    with pytest.raises(InvalidRequestError, match=r"\$HIVEON_REDIS_URL"):
        FakeVendorAPI().client(rate_limit=RateLimit(per_second=5))


@asyncio_only
async def test_this_processs_waiters_are_served_first_come_first_served(
    redis_server: RedisServer,
) -> None:
    """Waiters queued one after another get their turns in that order, booked in Redis."""
    shared = SharedLimit(redis_server.url, api_key="key", base_url="https://api.hiveon.ai")
    gate = SendGate(RateLimit(per_second=50, burst=1), adaptive=False, clock=Clock(), shared=shared)
    went: list[tuple[float, int]] = []
    await gate.wait_turn()  # a first attempt, answered: the process is warm
    gate.done()
    booked_before = redis_server.calls("evalsha") + redis_server.calls("eval")

    async def take(number: int) -> None:
        went.append((await gate.wait_turn(), number))

    async with anyio.create_task_group() as tg:
        for number in range(15):
            tg.start_soon(take, number)
            await anyio.lowlevel.checkpoint()  # queued in this order
    await shared.aclose()
    assert [number for _, number in sorted(went)] == list(range(15))
    booked = redis_server.calls("evalsha") + redis_server.calls("eval") - booked_before
    assert booked < 15  # several turns per round trip


@asyncio_only
async def test_a_hold_that_begins_after_turns_were_booked_holds_them_too(
    redis_server: RedisServer,
) -> None:
    """Turns booked in Redis, then a 503 holds the client: none of them goes during the hold."""
    shared = SharedLimit(redis_server.url, api_key="held", base_url="https://api.hiveon.ai")
    gate = SendGate(RateLimit(per_second=4, burst=1), adaptive=False, clock=Clock(), shared=shared)
    await gate.wait_turn()  # a first attempt, answered: the process is warm
    gate.done()
    went: list[float] = []

    async def take() -> None:
        went.append(await gate.wait_turn())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(take)
            await anyio.lowlevel.checkpoint()
        await anyio.sleep(0.05)  # booked 0.25 s apart after the first turn, asleep until then
        held_until = gate.clock.now() + 1.0  # at most when the hold ends
        gate.pause(1.0)
    await shared.aclose()
    assert len(went) == 3
    assert min(went) >= held_until


@asyncio_only
async def test_a_cold_process_books_one_turn_per_round_trip_until_an_answer(
    redis_server: RedisServer,
) -> None:
    """Before any answer, each turn is booked alone.

    A cold process's first requests each open a connection and leave late;
    booked ahead together, they bunched with the turns booked after them.
    """
    shared = SharedLimit(redis_server.url, api_key="cold", base_url="https://api.hiveon.ai")
    gate = SendGate(
        RateLimit(per_second=500, burst=5), adaptive=False, clock=Clock(), shared=shared
    )

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(gate.wait_turn)
            await anyio.lowlevel.checkpoint()
    await shared.aclose()

    # One round trip per turn (and one more, when redis-py loads the script again).
    assert redis_server.calls("evalsha") + redis_server.calls("eval") >= 6


@asyncio_only
async def test_a_process_moved_to_a_new_event_loop_is_cold_again(
    redis_server: RedisServer,
) -> None:
    """The connections of the old loop are gone: turns are booked singly again."""
    shared = SharedLimit(redis_server.url, api_key="moved", base_url="https://api.hiveon.ai")
    gate = SendGate(
        RateLimit(per_second=500, burst=5), adaptive=False, clock=Clock(), shared=shared
    )
    await gate.wait_turn()
    gate.done()  # answered: warm

    gate.reset_loop_state()
    before = redis_server.calls("evalsha") + redis_server.calls("eval")
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(gate.wait_turn)
            await anyio.lowlevel.checkpoint()
    await shared.aclose()

    assert redis_server.calls("evalsha") + redis_server.calls("eval") - before >= 6


@asyncio_only
async def test_a_silent_redis_costs_a_batch_one_timeout_not_one_per_id() -> None:
    """Redis accepts but never answers: the ids fail with the error, after one wait, not 40."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])  # held open, never answered

    threading.Thread(target=accept, daemon=True).start()
    fake = FakeVendorAPI()
    url = f"redis://127.0.0.1:{port}/0"
    try:
        async with fake.client(rate_limit=RateLimit(per_second=50), redis_url=url) as client:
            report = await client.stop_deployments([f"dep-{n}" for n in range(40)])
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert len(report.failed) == 40
    assert all(f"127.0.0.1:{port}" in str(outcome.error) for outcome in report.failed)
    assert len(accepted) <= 2  # one wait for the first id; the others fail at once
    assert fake.request_count == 0


@pytest.fixture
def client_made_outside_a_loop(redis_server: RedisServer) -> AsyncVendorClient:
    """A client made before any event loop runs (at import time, say), sharing through Redis."""
    return FakeVendorAPI().client(rate_limit=RateLimit(per_second=50), redis_url=redis_server.url)


async def test_a_client_made_outside_a_loop_refuses_trio_at_its_first_call(
    client_made_outside_a_loop: AsyncVendorClient, anyio_backend: str
) -> None:
    """Made before the loop: under trio the first call is an InvalidRequestError; asyncio works."""
    async with client_made_outside_a_loop as client:
        if anyio_backend == "trio":
            with pytest.raises(InvalidRequestError, match="asyncio only"):
                await client.stop_deployment("dep-1")
        else:
            result = await client.stop_deployment("dep-1")
            assert result.deployment_id == "dep-1"
