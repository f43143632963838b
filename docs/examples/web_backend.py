"""A Starlette app that shares one AsyncVendorClient across every request.

Serve it with any ASGI server, for example ``uvicorn web_backend:app``.

    POST /stop/{deployment_id}          stop one deployment
    POST /stop  {"deployment_ids": [...]}   stop many; answers with one outcome per id
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypedDict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hiveon_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncVendorClient,
    HiveonError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
)

logger = logging.getLogger(__name__)

#: Ids one bulk request may carry. More belongs in a job queue, not in an HTTP request.
MAX_BULK_IDS = 1000
#: Requests in flight for one bulk request. The client's max_concurrency bounds
#: all requests of the process together, single stops and bulk ones alike.
BULK_CONCURRENCY = 16
#: Seconds a bulk request may run: under your proxy's timeout. Ids not sent by then
#: come back "skipped".
BULK_DEADLINE = 20.0


def vendor_client() -> AsyncVendorClient:
    """The production client: credentials from the environment, checked at startup."""
    return AsyncVendorClient(  # api_key=None reads $HIVEON_API_KEY, or fails here
        metadata={"CLORE_API_KEY": os.environ["CLORE_API_KEY"]},
        max_concurrency=32,
        retry=RetryPolicy(deadline=10.0),  # a single stop answers within about 10 s
    )


class State(TypedDict):
    vendor: AsyncVendorClient


def create_app(new_client: Callable[[], AsyncVendorClient] = vendor_client) -> Starlette:
    """Build the app; tests pass ``new_client=fake.client`` (a FakeVendorAPI)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        async with new_client() as vendor:  # one client, closed at shutdown
            yield {"vendor": vendor}

    return Starlette(
        routes=[
            Route("/stop/{deployment_id}", stop_one, methods=["POST"]),
            Route("/stop", stop_many, methods=["POST"]),
        ],
        lifespan=lifespan,
        exception_handlers={HiveonError: vendor_error},
    )


async def stop_one(request: Request) -> JSONResponse:
    vendor: AsyncVendorClient = request.state.vendor
    result = await vendor.stop_deployment(request.path_params["deployment_id"])
    return JSONResponse({"deployment_id": result.deployment_id, "status": "stopped"})


async def stop_many(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body must be JSON"}, status_code=400)
    ids = body.get("deployment_ids") if isinstance(body, dict) else None
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= MAX_BULK_IDS
        or not all(isinstance(deployment_id, str) for deployment_id in ids)
    ):
        message = f"deployment_ids must be a list of 1 to {MAX_BULK_IDS} strings"
        return JSONResponse({"error": message}, status_code=422)

    vendor: AsyncVendorClient = request.state.vendor
    report = await vendor.stop_deployments(
        ids,
        # A batch may ask for more than max_concurrency (the client then grows its slots),
        # but one caller's bulk request must not crowd out everyone else's.
        concurrency=min(BULK_CONCURRENCY, vendor.max_concurrency),
        deadline=BULK_DEADLINE,
    )
    return JSONResponse(
        {
            "stopped": len(report.stopped),
            "failed": len(report.failed),
            "skipped": len(report.skipped),
            "outcomes": [
                {
                    "deployment_id": outcome.deployment_id,
                    "status": str(outcome.status),
                    "error": None if outcome.error is None else type(outcome.error).__name__,
                    "maybe_applied": outcome.maybe_applied,
                }
                for outcome in report
            ],
        }
    )


async def vendor_error(request: Request, exc: Exception) -> JSONResponse:
    """Turn the client's typed errors into answers for *our* callers."""
    assert isinstance(exc, HiveonError)
    body: dict[str, object] = {"error": type(exc).__name__}
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidRequestError):  # the caller's id is malformed; nothing was sent
        status = 422
        body["message"] = str(exc)  # names the field, never a credential
    elif isinstance(exc, NotFoundError):
        status = 404
        body["maybe_applied"] = exc.maybe_applied
    elif isinstance(exc, RateLimitedError):
        status = 503
        if exc.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
    elif isinstance(exc, APITimeoutError):
        status = 504
    else:  # 401/403 (our credentials), 5xx after retries, no response, bad 2xx
        status = 502
        logger.error("vendor call failed: %s", exc)  # messages are free of secrets
    if isinstance(exc, APIConnectionError):
        body["maybe_applied"] = exc.maybe_applied
    return JSONResponse(body, status_code=status, headers=headers)


app = create_app()
