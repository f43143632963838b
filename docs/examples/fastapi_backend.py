"""A FastAPI app that shares one AsyncVendorClient across every request.

Serve it with any ASGI server, for example ``uvicorn fastapi_backend:app``.

    POST /stop/{deployment_id}               stop one deployment
    POST /stop  {"deployment_ids": [...]}    stop many; answers with one outcome per id
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

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
#: Requests in flight for one bulk request, at most. The client's max_concurrency
#: bounds all requests of the process together, single stops and bulk ones alike.
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


class BulkStop(BaseModel):
    """The body of ``POST /stop``."""

    deployment_ids: list[str] = Field(min_length=1, max_length=MAX_BULK_IDS)


class Outcome(BaseModel):
    """One id's outcome, as our callers see it."""

    deployment_id: str
    status: str
    error: str | None
    maybe_applied: bool


class BulkAnswer(BaseModel):
    """The answer of ``POST /stop``."""

    stopped: int
    failed: int
    skipped: int
    outcomes: list[Outcome]


def vendor(request: Request) -> AsyncVendorClient:
    """The app's one client, for ``Depends``."""
    client: AsyncVendorClient = request.state.vendor
    return client


Vendor = Annotated[AsyncVendorClient, Depends(vendor)]


def create_app(new_client: Callable[[], AsyncVendorClient] = vendor_client) -> FastAPI:
    """Build the app; tests pass ``new_client=fake.client`` (a FakeVendorAPI)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, AsyncVendorClient]]:
        async with new_client() as client:  # one client, closed at shutdown
            yield {"vendor": client}

    app = FastAPI(lifespan=lifespan)
    app.add_exception_handler(HiveonError, vendor_error)

    @app.post("/stop/{deployment_id}")
    async def stop_one(deployment_id: str, client: Vendor) -> dict[str, str]:
        result = await client.stop_deployment(deployment_id)
        return {"deployment_id": result.deployment_id, "status": "stopped"}

    @app.post("/stop")
    async def stop_many(body: BulkStop, client: Vendor) -> BulkAnswer:
        report = await client.stop_deployments(
            body.deployment_ids,
            # One caller's bulk request must not crowd out everyone else's.
            concurrency=min(BULK_CONCURRENCY, client.max_concurrency),
            deadline=BULK_DEADLINE,
        )
        return BulkAnswer(
            stopped=len(report.stopped),
            failed=len(report.failed),
            skipped=len(report.skipped),
            outcomes=[
                Outcome(
                    deployment_id=outcome.deployment_id,
                    status=str(outcome.status),
                    error=None if outcome.error is None else type(outcome.error).__name__,
                    maybe_applied=outcome.maybe_applied,
                )
                for outcome in report
            ],
        )

    return app


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
