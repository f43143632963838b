"""The contenders: each stops N deployments over a socket, in a fresh process.

``python -m tests.benchmarks.contenders ours --url URL --n 3000 --concurrency 64``

- ``ours``: ``AsyncVendorClient.stop_deployments`` on asyncio, default pool
  (aiohttp's when the ``speedups`` extra is installed).
- ``ours-httpcore``: the same with ``speedups=False`` (the httpcore-based pool).
- ``ours-trio``: the same on trio (always httpcore-based).
- ``httpx`` / ``httpx-trio``: raw ``httpx.AsyncClient`` + a semaphore + one task
  per id (``asyncio.gather`` / a trio nursery), the code a user would write.
- ``aiohttp``: raw ``aiohttp.ClientSession`` + a semaphore + ``asyncio.gather``.

Every contender sends the same request (POST, JSON body with the Clore
metadata, ``X-API-Key``) and checks the status and that the JSON answer names
the id. Each opens its client (pool sized to the concurrency), then times the
stops alone (:class:`~.measure.Stopwatch`): from the first request to the last
answer, connection set-up included, opening and closing the client not.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from hiveon_async import AsyncVendorClient
from hiveon_async.testing._fake import DEFAULT_API_KEY, DEFAULT_CLORE_API_KEY

from .measure import Sample, Stopwatch, preload, report

__all__ = ["CONTENDERS", "Contender", "Job", "deployment_ids", "main", "run_contender"]

PATH = "/vendors/v1/machines/deployments/{}/stop"
PAYLOAD = {"metadata": {"CLORE_API_KEY": DEFAULT_CLORE_API_KEY}}
HEADERS = {"X-API-Key": DEFAULT_API_KEY}


def deployment_ids(n: int) -> list[str]:
    """The ids of a run: the same in every run, so the server's per-id state stays flat."""
    return [f"dep-{index:07d}" for index in range(n)]


@dataclass(frozen=True)
class Job:
    """What a contender is asked to do."""

    url: str
    ids: list[str]
    concurrency: int


#: A contender's run: stops ``job.ids`` inside ``with stopwatch:``; returns how many
#: succeeded and the pool that sent them.
Stopper = Callable[[Job, Stopwatch], Coroutine[Any, Any, tuple[int, str | None]]]


@dataclass(frozen=True)
class Contender:
    """A way to stop a batch of ids.

    Attributes:
        name: Its name on the command line and in the results.
        label: How tables and the chart name it.
        backend: ``asyncio`` or ``trio``.
        run: The run itself.
    """

    name: str
    label: str
    backend: str
    run: Stopper


def _answered(deployment_id: str, answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("deployment_id") == deployment_id


async def _ours(job: Job, stopwatch: Stopwatch, *, speedups: bool | None) -> tuple[int, str | None]:
    async with AsyncVendorClient(
        api_key=DEFAULT_API_KEY,
        base_url=job.url,
        metadata={"CLORE_API_KEY": DEFAULT_CLORE_API_KEY},
        max_concurrency=job.concurrency,
        speedups=speedups,
    ) as client:
        with stopwatch:
            batch = await client.stop_deployments(job.ids, concurrency=job.concurrency)
        # Which pool really sent (private, read for the record only).
        pool = getattr(getattr(client, "_engine", None), "pool", None)
    return len(batch.stopped), pool


async def ours_default(job: Job, stopwatch: Stopwatch) -> tuple[int, str | None]:
    """Our client with its default pool."""
    return await _ours(job, stopwatch, speedups=None)


async def ours_httpcore(job: Job, stopwatch: Stopwatch) -> tuple[int, str | None]:
    """Our client without the speedups pool."""
    return await _ours(job, stopwatch, speedups=False)


def _httpx_client(job: Job) -> httpx.AsyncClient:
    size = job.concurrency
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    return httpx.AsyncClient(base_url=job.url, headers=HEADERS, limits=limits)


async def raw_httpx_asyncio(job: Job, stopwatch: Stopwatch) -> tuple[int, str | None]:
    """``httpx.AsyncClient`` + ``asyncio.Semaphore`` + ``asyncio.gather``."""
    semaphore = asyncio.Semaphore(job.concurrency)
    async with _httpx_client(job) as client:

        async def stop(deployment_id: str) -> bool:
            async with semaphore:
                response = await client.post(PATH.format(deployment_id), json=PAYLOAD)
            response.raise_for_status()
            return _answered(deployment_id, response.json())

        with stopwatch:
            stopped = await asyncio.gather(*(stop(deployment_id) for deployment_id in job.ids))
    return sum(stopped), "httpx"


async def raw_httpx_trio(job: Job, stopwatch: Stopwatch) -> tuple[int, str | None]:
    """``httpx.AsyncClient`` + ``trio.Semaphore`` + one nursery task per id."""
    import trio

    semaphore = trio.Semaphore(job.concurrency)
    stopped = 0
    async with _httpx_client(job) as client:

        async def stop(deployment_id: str) -> None:
            nonlocal stopped
            async with semaphore:
                response = await client.post(PATH.format(deployment_id), json=PAYLOAD)
            response.raise_for_status()
            stopped += _answered(deployment_id, response.json())

        with stopwatch:
            async with trio.open_nursery() as nursery:
                for deployment_id in job.ids:
                    nursery.start_soon(stop, deployment_id)
    return stopped, "httpx"


async def raw_aiohttp(job: Job, stopwatch: Stopwatch) -> tuple[int, str | None]:
    """``aiohttp.ClientSession`` + ``asyncio.Semaphore`` + ``asyncio.gather``."""
    import aiohttp

    semaphore = asyncio.Semaphore(job.concurrency)
    connector = aiohttp.TCPConnector(limit=job.concurrency)
    async with aiohttp.ClientSession(job.url, headers=HEADERS, connector=connector) as session:

        async def stop(deployment_id: str) -> bool:
            path = PATH.format(deployment_id)
            async with semaphore, session.post(path, json=PAYLOAD) as response:
                response.raise_for_status()
                answer = await response.json()
            return _answered(deployment_id, answer)

        with stopwatch:
            stopped = await asyncio.gather(*(stop(deployment_id) for deployment_id in job.ids))
    return sum(stopped), "aiohttp"


CONTENDERS: dict[str, Contender] = {
    contender.name: contender
    for contender in (
        Contender("ours", "ours (asyncio, default pool)", "asyncio", ours_default),
        Contender("ours-httpcore", "ours (asyncio, speedups=False)", "asyncio", ours_httpcore),
        Contender("ours-trio", "ours (trio)", "trio", ours_default),
        Contender("httpx", "raw httpx (asyncio)", "asyncio", raw_httpx_asyncio),
        Contender("httpx-trio", "raw httpx (trio)", "trio", raw_httpx_trio),
        Contender("aiohttp", "raw aiohttp", "asyncio", raw_aiohttp),
    )
}


def run_contender(contender: Contender, job: Job) -> Sample:
    """Run one contender on its event loop and measure it."""
    sample = Sample()
    stopwatch = Stopwatch(sample)
    started = time.perf_counter()
    try:
        if contender.backend == "trio":
            import trio

            sample.ok, sample.pool = trio.run(contender.run, job, stopwatch)
        else:
            sample.ok, sample.pool = asyncio.run(contender.run(job, stopwatch))
        if not stopwatch.used:
            raise RuntimeError(f"{contender.name} never started its stopwatch")
    except Exception as exc:  # reported, not raised: the orchestrator records the failure
        sample.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    # For information: the whole run, the event loop and opening/closing the client included.
    sample.extra["total_wall"] = time.perf_counter() - started
    return sample


def main(argv: list[str] | None = None) -> None:
    """Run one contender once and print its sample."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--n", type=int, default=3000, help="stops in the run")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    preload()
    job = Job(args.url, deployment_ids(args.n), args.concurrency)
    sample = run_contender(CONTENDERS[args.contender], job)
    report(sample)
    raise SystemExit(0 if sample.error is None else 1)


if __name__ == "__main__":
    main()
