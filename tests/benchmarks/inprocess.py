"""In-process measurements: the client's own cost per call, and the stream form's memory.

No socket: the client talks to ``FakeVendorAPI(record=False).transport()``, so
what is measured is CPU in this process (the fake's answers included).

Per-call overhead (``python -m tests.benchmarks.inprocess call --n 20000``),
each mode in a fresh process, ``concurrency`` workers in one anyio task group
pulling ids from one shared iterator:

- ``floor``: one prebuilt request sent again and again through
  ``transport.handle_async_request``, body read, response closed. The cost of
  the fake and the transport alone: no client could be cheaper.
- ``bare``: the least a correct caller must do per id with the same transport:
  build the ``httpx.Request`` (same URL, headers, body, timeout extension as
  our client), send it, read and close the response, check the status and
  that the JSON answer names the id. This is the baseline.
- ``bare-lean``: ``bare``, but the body is read straight from the response
  stream, as the client's capped read does, instead of through httpx's
  ``aread()`` and its decoders. For information: against it, ``call`` shows
  the client's bookkeeping alone, without the cheaper read to offset it.
- ``call``: ``await client.stop_deployment(id)`` in the same workers: ``bare``
  plus validation, the retry loop, the rate limiter and slots, the per-attempt
  timeout, typed results. ``call / bare - 1`` is the client's overhead.
- ``batch``: ``client.stop_deployments(ids)``: ``call`` plus the batch's
  bookkeeping (one outcome per id, the report); for information.

Stream memory (``python -m tests.benchmarks.inprocess stream --n 1000000``):
``stream_stop_deployments`` over a generator of unique ids, the peak RSS of a
fresh process reported. The fake keeps one entry per id stopped (its
``stopped`` and ``attempts``); the generator clears both every 10,000 ids so
that the measurement sees the client's memory, not the fake's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import traceback
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import anyio
import httpx

from hiveon_async import AsyncVendorClient
from hiveon_async.testing import FakeVendorAPI
from hiveon_async.testing._fake import DEFAULT_CLORE_API_KEY, IN_PROCESS_BASE_URL

from .contenders import PATH, deployment_ids
from .measure import Sample, Stopwatch, preload, report, rss_mb

__all__ = ["MODES", "main"]

#: Ids after which the stream benchmark forgets the fake's per-id bookkeeping.
FAKE_RESET_EVERY = 10_000

_BODY = json.dumps(
    {"metadata": {"CLORE_API_KEY": DEFAULT_CLORE_API_KEY}}, separators=(",", ":")
).encode()


def _headers(fake: FakeVendorAPI) -> dict[str, str]:
    # What our client sends on every request (hiveon_async._request.request_headers).
    return {
        "X-API-Key": fake.api_key,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Accept-Encoding": "identity",
        "User-Agent": "hiveon-async/bench",
    }


async def _workers(
    ids: list[str],
    concurrency: int,
    stop: Callable[[str], Coroutine[Any, Any, bool]],
    stopwatch: Stopwatch,
) -> int:
    """Run ``concurrency`` workers over ``ids``, timed; return how many stops succeeded."""
    source = iter(ids)
    stopped = 0

    async def worker() -> None:
        nonlocal stopped
        for deployment_id in source:
            stopped += await stop(deployment_id)

    with stopwatch:
        async with anyio.create_task_group() as workers:
            for _ in range(concurrency):
                workers.start_soon(worker)
    return stopped


async def _floor(
    fake: FakeVendorAPI, ids: list[str], concurrency: int, stopwatch: Stopwatch
) -> int:
    transport = fake.transport()
    request = httpx.Request(
        "POST",
        IN_PROCESS_BASE_URL + PATH.format(ids[0]),
        headers=_headers(fake),
        content=_BODY,
        extensions={"timeout": httpx.Timeout(10.0).as_dict()},
    )

    async def stop(deployment_id: str) -> bool:
        response = await transport.handle_async_request(request)
        await response.aread()
        await response.aclose()
        return True

    return await _workers(ids, concurrency, stop, stopwatch)


async def _read_raw_stream(response: httpx.Response) -> bytes:
    # What the client's capped read comes down to for a small plain body: the raw chunks.
    assert isinstance(response.stream, httpx.AsyncByteStream)
    return b"".join([chunk async for chunk in response.stream])


async def _bare(fake: FakeVendorAPI, ids: list[str], concurrency: int, stopwatch: Stopwatch) -> int:
    # The unbound method itself: no wrapper coroutine between the baseline and aread().
    return await _bare_with(httpx.Response.aread, fake, ids, concurrency, stopwatch)


async def _bare_lean(
    fake: FakeVendorAPI, ids: list[str], concurrency: int, stopwatch: Stopwatch
) -> int:
    return await _bare_with(_read_raw_stream, fake, ids, concurrency, stopwatch)


async def _bare_with(
    read: Callable[[httpx.Response], Coroutine[Any, Any, bytes]],
    fake: FakeVendorAPI,
    ids: list[str],
    concurrency: int,
    stopwatch: Stopwatch,
) -> int:
    transport = fake.transport()
    headers = _headers(fake)
    timeout = httpx.Timeout(10.0).as_dict()

    async def stop(deployment_id: str) -> bool:
        request = httpx.Request(
            "POST",
            IN_PROCESS_BASE_URL + PATH.format(deployment_id),
            headers=headers,
            content=_BODY,
            extensions={"timeout": timeout},
        )
        response = await transport.handle_async_request(request)
        try:
            body = await read(response)
        finally:
            await response.aclose()
        if response.status_code != 200:
            return False
        answer = json.loads(body)
        return isinstance(answer, dict) and answer.get("deployment_id") == deployment_id

    return await _workers(ids, concurrency, stop, stopwatch)


def _client(fake: FakeVendorAPI, concurrency: int) -> AsyncVendorClient:
    return fake.client(max_concurrency=concurrency)


async def _call(fake: FakeVendorAPI, ids: list[str], concurrency: int, stopwatch: Stopwatch) -> int:
    async with _client(fake, concurrency) as client:

        async def stop(deployment_id: str) -> bool:
            result = await client.stop_deployment(deployment_id)
            return result.deployment_id == deployment_id

        return await _workers(ids, concurrency, stop, stopwatch)


async def _batch(
    fake: FakeVendorAPI, ids: list[str], concurrency: int, stopwatch: Stopwatch
) -> int:
    async with _client(fake, concurrency) as client:
        with stopwatch:
            batch = await client.stop_deployments(ids, concurrency=concurrency)
    return len(batch.stopped)


Mode = Callable[[FakeVendorAPI, list[str], int, Stopwatch], Coroutine[Any, Any, int]]

#: The per-call overhead modes, by name.
MODES: dict[str, Mode] = {
    "floor": _floor,
    "bare": _bare,
    "bare-lean": _bare_lean,
    "call": _call,
    "batch": _batch,
}


def _unique_ids(fake: FakeVendorAPI, n: int) -> Iterator[str]:
    for index in range(n):
        if index % FAKE_RESET_EVERY == 0:
            fake.stopped.clear()
            fake.attempts.clear()
        yield f"dep-{index:08d}"


async def _stream(fake: FakeVendorAPI, n: int, concurrency: int, stopwatch: Stopwatch) -> int:
    stopped = 0
    async with _client(fake, concurrency) as client:
        ids = _unique_ids(fake, n)
        with stopwatch:
            async with client.stream_stop_deployments(ids, concurrency=concurrency) as outcomes:
                async for outcome in outcomes:
                    stopped += outcome.ok
    return stopped


def run_mode(mode: str, n: int, concurrency: int) -> Sample:
    """Run one in-process mode (``stream`` or one of :data:`MODES`) and measure it."""
    fake = FakeVendorAPI(record=False)
    sample = Sample()
    stopwatch = Stopwatch(sample)
    coroutine: Coroutine[Any, Any, int]
    if mode == "stream":
        coroutine = _stream(fake, n, concurrency, stopwatch)
    else:
        coroutine = MODES[mode](fake, deployment_ids(n), concurrency, stopwatch)
    before = rss_mb()
    if before is not None:
        sample.extra["rss_before_mb"] = before
    try:
        sample.ok = asyncio.run(coroutine)
    except Exception as exc:  # reported, not raised: the orchestrator records the failure
        sample.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    after = rss_mb()
    if after is not None:
        sample.extra["rss_after_mb"] = after
    sample.pool = "transport"
    return sample


def main(argv: list[str] | None = None) -> None:
    """Run one in-process mode once and print its sample."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=[*MODES, "stream"])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    preload()
    sample = run_mode(args.mode, args.n, args.concurrency)
    report(sample)
    raise SystemExit(0 if sample.error is None else 1)


if __name__ == "__main__":
    main()
