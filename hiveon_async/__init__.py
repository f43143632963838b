"""hiveon-async: stop Hiveon vendor deployments from asyncio and trio.

One call at a time with typed answers, or whole fleets at once with bounded
load, retries, rate limiting and a per-id account of what happened::

    from hiveon_async import AsyncVendorClient

    async with AsyncVendorClient() as client:  # $HIVEON_API_KEY, $CLORE_API_KEY
        result = await client.stop_deployment("a1b2c3d4-5678")
        report = await client.stop_deployments(ids, concurrency=32)
"""

import logging as _logging

from ._batch import BatchProgress, OutcomeStream
from ._client import AsyncVendorClient
from ._config import RateLimit, RetryPolicy
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    HiveonError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseValidationError,
    ServerError,
)
from ._models import BatchFailedError, BatchReport, OutcomeStatus, StopOutcome, StopResult
from ._observe import AttemptInfo, RetryInfo
from ._quota import QuotaPolicy, RateLimitState
from ._version import __version__

# A library logs; the application decides where logs go (and nothing is printed by default).
_logging.getLogger("hiveon_async").addHandler(_logging.NullHandler())

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncVendorClient",
    "AttemptInfo",
    "AuthenticationError",
    "BadRequestError",
    "BatchFailedError",
    "BatchProgress",
    "BatchReport",
    "HiveonError",
    "InvalidRequestError",
    "NotFoundError",
    "OutcomeStatus",
    "OutcomeStream",
    "PermissionDeniedError",
    "QuotaPolicy",
    "RateLimit",
    "RateLimitState",
    "RateLimitedError",
    "ResponseValidationError",
    "RetryInfo",
    "RetryPolicy",
    "ServerError",
    "StopOutcome",
    "StopResult",
    "__version__",
]

# Tracebacks and reprs name the public path (hiveon_async.NotFoundError), not the private
# module a class happens to live in, as httpx does.
for _name in __all__:
    if not _name.startswith("__"):
        _public = globals()[_name]
        if isinstance(_public, type):
            _public.__module__ = __name__
del _name, _public
