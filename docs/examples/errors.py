"""Stop a few deployments and say, for each, what happened and what to do."""

import anyio

from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncVendorClient,
    AuthenticationError,
    HiveonError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseValidationError,
    ServerError,
)


async def stop(client: AsyncVendorClient, deployment_id: str) -> str:
    try:
        result = await client.stop_deployment(deployment_id)
    except InvalidRequestError as exc:  # nothing was sent; fix the input
        return f"invalid input: {exc}"
    except AuthenticationError:  # every call will fail the same way
        return "the API key was refused: check $HIVEON_API_KEY"
    except PermissionDeniedError:
        return "this key may not stop that deployment"
    except NotFoundError as exc:
        if exc.maybe_applied:  # an earlier attempt may have stopped it
            return "not found, but an earlier attempt may have stopped it"
        return "no such deployment"
    except RateLimitedError as exc:  # retries ran out, or Retry-After was too long
        return f"throttled: try again in {exc.retry_after}s"
    except ServerError as exc:  # retries ran out
        return f"server error {exc.status_code} after {exc.attempts} attempts (id {exc.request_id})"
    except APIStatusError as exc:  # any other status, e.g. a 3xx: never followed
        return f"unexpected HTTP {exc.status_code}"
    except APITimeoutError as exc:
        return f"timed out after {exc.attempts} attempts (may have applied: {exc.maybe_applied})"
    except APIConnectionError as exc:
        return f"no response after {exc.attempts} attempts (may have applied: {exc.maybe_applied})"
    except ResponseValidationError:  # a 2xx that is not the documented body; not retried
        return "the server said yes in an unexpected shape: check the deployment"
    except HiveonError as exc:  # the root: catches everything above
        return f"failed: {exc}"
    return f"stopped {result.deployment_id}"


async def main() -> None:
    ids = ["dep-ok", "dep/../admin", "dep-gone", "dep-locked", "dep-busy", "dep-down", "dep-lost"]
    async with AsyncVendorClient() as client:
        for deployment_id in ids:
            print(f"{deployment_id}: {await stop(client, deployment_id)}")


if __name__ == "__main__":
    anyio.run(main)
