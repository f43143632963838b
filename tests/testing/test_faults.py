"""Scripted and random faults, on both runners (hiveon_async/testing/_faults.py)."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hiveon_async.testing import FakeVendorAPI, Fault, FaultPlan

if TYPE_CHECKING:
    from tests.doubles import FakeRunner

ROUTE = "/vendors/v1/machines/deployments/{}/stop"
HEADERS = {"X-API-Key": "test-api-key"}
BODY = {"metadata": {"CLORE_API_KEY": "clore"}}
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


async def stop(client: httpx.AsyncClient, deployment_id: str = "dep-1") -> httpx.Response:
    """Send a well-formed stop request."""
    return await client.post(ROUTE.format(deployment_id), json=BODY, headers=HEADERS)


@pytest.mark.anyio
class TestScriptedFaults:
    """Each fault kind, scripted for one id, on each runner."""

    async def test_status(self, fake_runner: FakeRunner) -> None:
        """An int entry answers that status with a JSON error body and stops nothing."""
        fake = FakeVendorAPI()
        fake.script("dep-1", [500])
        async with fake_runner.http_client(fake) as client:
            response = await stop(client)
        assert response.status_code == 500
        assert response.json()["status"] == 500
        assert "retry-after" not in response.headers
        assert fake.stopped == set()

    @pytest.mark.parametrize(
        ("fault", "retry_after"),
        [
            (Fault.status(429, retry_after=2), "2"),
            (Fault.status(503, retry_after=HTTP_DATE), HTTP_DATE),
        ],
    )
    async def test_status_with_retry_after(
        self, fake_runner: FakeRunner, fault: Fault, retry_after: str
    ) -> None:
        """A status fault sends the Retry-After it was given, seconds or HTTP-date."""
        fake = FakeVendorAPI()
        fake.script("dep-1", [fault])
        async with fake_runner.http_client(fake) as client:
            response = await stop(client)
        assert response.status_code == fault.status_code
        assert response.headers["retry-after"] == retry_after

    async def test_status_without_a_reason_phrase(self, fake_runner: FakeRunner) -> None:
        """Any code in 400..599 works, even one without a standard reason phrase."""
        fake = FakeVendorAPI()
        fake.script("dep-1", [599])
        async with fake_runner.http_client(fake) as client:
            response = await stop(client)
        assert response.status_code == 599
        assert response.json()["error"] == ""

    async def test_reset(self, fake_runner: FakeRunner) -> None:
        """A reset reaches httpx as ReadError, as a TCP RST does."""
        fake = FakeVendorAPI()
        fake.script("dep-1", ["reset"])
        async with fake_runner.http_client(fake) as client:
            with pytest.raises(httpx.ReadError):
                await stop(client)
        assert fake.status_counts == {"reset": 1}
        assert fake.stopped == set()

    async def test_drop(self, fake_runner: FakeRunner) -> None:
        """A drop reaches httpx as the RemoteProtocolError of a server that hung up."""
        fake = FakeVendorAPI()
        fake.script("dep-1", ["drop"])
        async with fake_runner.http_client(fake) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await stop(client)
        assert fake.status_counts == {"drop": 1}

    async def test_stall_outlasts_the_read_timeout(self, fake_runner: FakeRunner) -> None:
        """A stall makes a client with a 0.2 s timeout time out after about 0.2 s."""
        fake = FakeVendorAPI()
        fake.script("dep-1", ["stall"])
        async with fake_runner.http_client(fake, timeout=0.2) as client:
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await stop(client)
            elapsed = time.monotonic() - started
        assert 0.19 <= elapsed < 1.0
        assert fake.status_counts == {"stall": 1}

    async def test_stall_ends_in_a_drop(self, fake_runner: FakeRunner) -> None:
        """A short stall and no client timeout: the connection is closed unanswered."""
        fake = FakeVendorAPI()
        fake.script("dep-1", [Fault.stall(seconds=0.05)])
        async with fake_runner.http_client(fake, timeout=None) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await stop(client)

    async def test_trickle_delivers_the_answer_slowly(self, fake_runner: FakeRunner) -> None:
        """A trickle is the normal answer, one byte per interval."""
        fake = FakeVendorAPI()
        fake.script("dep-1", [Fault.trickle(interval=0.002)])
        async with fake_runner.http_client(fake) as client:
            started = time.monotonic()
            response = await stop(client)
            elapsed = time.monotonic() - started
        assert response.json() == {"deployment_id": "dep-1"}
        assert elapsed >= 0.002 * len(response.content)
        assert fake.status_counts == {"trickle": 1}
        assert fake.stopped == {"dep-1"}

    async def test_trickle_slower_than_the_read_timeout(self, fake_runner: FakeRunner) -> None:
        """Headers arrive, then the body stalls past the read timeout: ReadTimeout."""
        fake = FakeVendorAPI()
        fake.script("dep-1", [Fault.trickle(interval=0.5)])
        async with fake_runner.http_client(fake, timeout=0.1) as client:
            with pytest.raises(httpx.ReadTimeout):
                await stop(client)

    async def test_garbage(self, fake_runner: FakeRunner) -> None:
        """Garbage is a 200 whose body is not JSON."""
        fake = FakeVendorAPI()
        fake.script("dep-1", ["garbage"])
        async with fake_runner.http_client(fake) as client:
            response = await stop(client)
        assert response.status_code == 200
        with pytest.raises(ValueError, match=r"."):
            response.json()

    async def test_mismatch(self, fake_runner: FakeRunner) -> None:
        """A mismatch is a 200 naming another deployment."""
        fake = FakeVendorAPI()
        fake.script("dep-1", ["mismatch"])
        async with fake_runner.http_client(fake) as client:
            response = await stop(client)
        assert response.status_code == 200
        assert response.json()["deployment_id"] != "dep-1"

    @pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
    async def test_huge(self, fake_runner: FakeRunner, chunked: bool) -> None:
        """A huge answer is valid JSON over 64 KiB, with Content-Length or chunked."""
        fake = FakeVendorAPI()
        fake.script("dep-1", [Fault.huge(chunked=chunked)])
        async with fake_runner.http_client(fake) as client:
            response = await stop(client)
        assert len(response.content) > 64 * 1024
        assert response.json()["deployment_id"] == "dep-1"
        assert ("content-length" in response.headers) is not chunked
        assert (response.headers.get("transfer-encoding") == "chunked") is chunked

    async def test_redirect(self, fake_runner: FakeRunner) -> None:
        """A redirect is a 307 to another host, which httpx does not follow by default."""
        fake = FakeVendorAPI()
        fake.script("dep-1", ["redirect", Fault.redirect(location="https://else.invalid/x")])
        async with fake_runner.http_client(fake) as client:
            first, second = await stop(client), await stop(client)
        assert first.status_code == 307
        assert first.headers["location"] == "https://elsewhere.invalid" + ROUTE.format("dep-1")
        assert second.headers["location"] == "https://else.invalid/x"

    async def test_applied_fault_stops_the_deployment(self, fake_runner: FakeRunner) -> None:
        """``applied=True`` does the work, then loses the answer."""
        fake = FakeVendorAPI(idempotent=False)
        fake.script("dep-1", [Fault.reset(applied=True)])
        async with fake_runner.http_client(fake) as client:
            with pytest.raises(httpx.ReadError):
                await stop(client)
            retry = await stop(client)
        assert fake.stopped == {"dep-1"}
        assert retry.status_code == 404

    async def test_script_is_consumed_in_order(self, fake_runner: FakeRunner) -> None:
        """Entries answer the next requests for their id; then the fake is normal again."""
        fake = FakeVendorAPI()
        fake.script("dep-1", [500, 503, "reset", 200])
        fake.script("dep-2", [429])
        answers: list[int | str] = []
        async with fake_runner.http_client(fake) as client:
            for deployment_id in ["dep-1"] * 5 + ["dep-2"]:
                try:
                    answers.append((await stop(client, deployment_id)).status_code)
                except httpx.ReadError:
                    answers.append("reset")
        assert answers == [500, 503, "reset", 200, 200, 429]
        assert [r.attempt for r in fake.requests] == [1, 2, 3, 4, 5, 1]

    async def test_latency_delays_every_answer(self, fake_runner: FakeRunner) -> None:
        """A plan's latency (plus jitter) comes before each answer."""
        fake = FakeVendorAPI(faults=FaultPlan(latency=0.05, jitter=0.01))
        async with fake_runner.http_client(fake) as client:
            started = time.monotonic()
            response = await stop(client)
            elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert elapsed >= 0.05

    async def test_latency_past_the_read_timeout(self, fake_runner: FakeRunner) -> None:
        """Latency longer than the client's read timeout is a ReadTimeout."""
        fake = FakeVendorAPI(faults=FaultPlan(latency=0.5))
        async with fake_runner.http_client(fake, timeout=0.1) as client:
            with pytest.raises(httpx.ReadTimeout):
                await stop(client)


@pytest.mark.anyio
class TestRandomFaults:
    """A seeded FaultPlan."""

    async def test_plan_retry_after_goes_with_429_and_503(self, fake_runner: FakeRunner) -> None:
        """Random 429s and 503s carry the plan's Retry-After."""
        fake = FakeVendorAPI(faults=FaultPlan(rates={429: 0.5, 503: 0.5}, retry_after=3))
        async with fake_runner.http_client(fake) as client:
            responses = [await stop(client) for _ in range(4)]
        assert {r.status_code for r in responses} <= {429, 503}
        assert all(r.headers["retry-after"] == "3" for r in responses)

    async def test_every_random_fault_kind(self, fake_runner: FakeRunner) -> None:
        """Transport faults roll too, and surface as the same httpx errors."""
        fake = FakeVendorAPI(faults=FaultPlan(rates={"reset": 0.5, "drop": 0.5}))
        seen = set()
        async with fake_runner.http_client(fake) as client:
            for _ in range(6):
                with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as info:
                    await stop(client)
                seen.add(type(info.value))
        assert sum(fake.status_counts.values()) == 6
        assert set(fake.status_counts) <= {"reset", "drop"}
        assert seen


async def answers_of(fake: FakeVendorAPI, count: int) -> list[int | str]:
    """Send ``count`` stops in-process, one id each, and return what the fake answered."""
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://127.0.0.1") as client:
        for index in range(count):
            with suppress(httpx.TransportError):  # the answer is read from the record
                await stop(client, f"dep-{index}")
    return [r.answer for r in fake.requests]


def plan(seed: int) -> FaultPlan:
    """A plan with every random fault that answers at once."""
    return FaultPlan(
        seed=seed,
        rates={500: 0.2, 503: 0.1, 429: 0.1, "reset": 0.05, "drop": 0.05, "garbage": 0.05},
    )


@pytest.mark.anyio
async def test_same_seed_same_faults() -> None:
    """The same seed and request order give the same faults; another seed does not."""
    first = await answers_of(FakeVendorAPI(faults=plan(seed=1)), 300)
    again = await answers_of(FakeVendorAPI(faults=plan(seed=1)), 300)
    other = await answers_of(FakeVendorAPI(faults=plan(seed=2)), 300)
    assert first == again
    assert first != other


@pytest.mark.anyio
async def test_rates_are_roughly_honoured() -> None:
    """Over many requests each fault shows up at about its rate."""
    fake = FakeVendorAPI(faults=plan(seed=3), record=False)
    await answers_of(fake, 4000)
    counts = fake.status_counts
    assert 0.17 < counts[500] / 4000 < 0.23
    assert 0.03 < counts["reset"] / 4000 < 0.07
    assert 0.42 < counts[200] / 4000 < 0.48


@pytest.mark.anyio
async def test_a_script_takes_precedence_over_the_plan() -> None:
    """A scripted entry claims its request; the plan does not roll for it."""
    fake = FakeVendorAPI(faults=FaultPlan(rates={500: 1.0}))
    fake.script("dep-0", [200, 404])
    assert await answers_of(fake, 1) == [200]
    assert await answers_of(fake, 1) == [200, 404]
    assert await answers_of(fake, 1) == [200, 404, 500]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (200, None),
        (503, Fault.status(503)),
        ("reset", Fault.reset()),
        ("drop", Fault.drop()),
        ("stall", Fault.stall()),
        ("trickle", Fault.trickle()),
        ("garbage", Fault.garbage()),
        ("mismatch", Fault.mismatch()),
        ("huge", Fault.huge()),
        ("redirect", Fault.redirect()),
        (Fault.stall(seconds=1), Fault.stall(seconds=1)),
    ],
)
def test_script_entries(entry: Any, expected: Fault | None) -> None:
    """Script entries are 200 (normal), an error status, a fault name or a Fault."""
    assert Fault.coerce(entry) == expected


@pytest.mark.parametrize("entry", [201, 302, 600, True, "explode", "status", Fault, 1.5], ids=repr)
def test_bad_script_entries_are_rejected(entry: Any) -> None:
    """Anything else is a ValueError, and nothing is queued."""
    fake = FakeVendorAPI()
    with pytest.raises(ValueError, match=r"."):
        fake.script("dep-1", [500, entry])
    assert fake._scripts == {}


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Fault(kind="boom"), "unknown fault kind"),  # type: ignore[arg-type]
        (lambda: Fault.status(429, retry_after=-1), "retry_after"),
        (lambda: Fault.status(503, retry_after="a\r\nb"), "single-line"),
        (lambda: Fault.stall(seconds=float("inf")), "seconds"),
        (lambda: Fault.trickle(interval=-1), "interval"),
        (lambda: FaultPlan(rates={500: 0.7, 503: 0.7}), "add up"),
        (lambda: FaultPlan(rates={500: 2}), "in \\[0, 1\\]"),
        (lambda: FaultPlan(rates={200: 0.1}), "200"),
        (lambda: FaultPlan(rates={"nope": 0.1}), "unknown fault"),
        (lambda: FaultPlan(latency=-1), "latency"),
        (lambda: FaultPlan(jitter=float("nan")), "jitter"),
    ],
)
def test_bad_faults_are_rejected(factory: Any, message: str) -> None:
    """Fault and FaultPlan validate their fields."""
    with pytest.raises(ValueError, match=message):
        factory()


def test_rates_must_be_a_mapping() -> None:
    """Rates that cannot be made a mapping are a TypeError."""
    with pytest.raises(TypeError):
        FaultPlan(rates=5)  # type: ignore[arg-type]


def test_zero_rates_never_fire() -> None:
    """A fault with rate 0 is left out of the roll."""
    fake = FakeVendorAPI(faults=FaultPlan(rates={500: 0.0, 503: 0.5}))
    assert [(upper, fault.status_code) for upper, fault in fake._thresholds] == [(0.5, 503)]


def test_plan_rates_are_a_frozen_copy() -> None:
    """A plan keeps its own read-only copy of the rates."""
    rates: dict[int | str, float] = {500: 0.1}
    faults = FaultPlan(rates=rates)
    rates[503] = 0.5
    assert dict(faults.rates) == {500: 0.1}
    with pytest.raises(TypeError):
        faults.rates[503] = 0.5  # type: ignore[index]
