"""A small scriptable vendor: an httpx.MockTransport that counts.

No test uses it: the tests get their vendor from ``tests/doubles.py``. It stays
only because ``tests/benchmarks/budget.py`` imports it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable

import anyio
import httpx

from hiveon_async import AsyncVendorClient, RetryPolicy

Answer = Callable[[str, int], Awaitable[httpx.Response] | httpx.Response]


def ok(deployment_id: str) -> httpx.Response:
    """The documented success answer."""
    return httpx.Response(200, json={"deployment_id": deployment_id})


class MockVendor:
    """Answers stop requests through ``answer(id, attempt)``; counts what it sees.

    Attributes:
        requests: Requests received, in order of arrival (ids).
        per_id: Requests per id.
        statuses: Responses per status.
        in_flight: Requests being handled now; ``peak`` is the most at once.
    """

    def __init__(self, answer: Answer | None = None, *, delay: float = 0.0) -> None:
        self.answer = answer or (lambda deployment_id, attempt: ok(deployment_id))
        self.delay = delay
        self.requests: list[str] = []
        self.per_id: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.in_flight = 0
        self.peak = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        deployment_id = request.url.path.split("/")[-2]
        self.requests.append(deployment_id)
        self.per_id[deployment_id] += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            else:
                await anyio.lowlevel.checkpoint()
            answer = self.answer(deployment_id, self.per_id[deployment_id])
            response = answer if isinstance(answer, httpx.Response) else await answer
        finally:
            self.in_flight -= 1
        self.statuses[response.status_code] += 1
        return response

    def client(self, **overrides: object) -> AsyncVendorClient:
        """An AsyncVendorClient wired to this vendor, retries without real waits."""
        options: dict[str, object] = {
            "api_key": "test-api-key",
            "base_url": "http://127.0.0.1",
            "metadata": {"CLORE_API_KEY": "test-clore-key"},
            "transport": httpx.MockTransport(self.handle),
            "retry": RetryPolicy(initial_delay=0.0, max_delay=0.0),
        }
        options.update(overrides)
        return AsyncVendorClient(**options)  # type: ignore[arg-type]


def flaky(rate: float, seed: int, dead: frozenset[str] = frozenset()) -> Answer:
    """An answer that fails ``rate`` of requests with 500 (seeded), and always for ``dead`` ids."""
    rng = random.Random(seed)

    def answer(deployment_id: str, attempt: int) -> httpx.Response:
        if deployment_id in dead or rng.random() < rate:
            return httpx.Response(500, json={"error": "internal"})
        return ok(deployment_id)

    return answer
