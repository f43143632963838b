"""The public surface: ``hiveon_async.__all__`` is exactly, and in order, what users may import."""

from __future__ import annotations

import types

import hiveon_async

#: The names the docs promise users; each must stay exported.
DESIGNED = {
    # the client, its settings and results
    "AsyncVendorClient",
    "RetryPolicy",
    "RateLimit",
    "StopResult",
    "StopOutcome",
    "BatchReport",
    "__version__",
    # the error tree, root first
    "HiveonError",
    "InvalidRequestError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "ResponseValidationError",
    # what the observability hooks receive
    "AttemptInfo",
    "RetryInfo",
}


def test_all_is_the_sorted_public_surface() -> None:
    """Every public, non-module name of the package is in __all__, sorted, and nothing else."""
    public = [
        name
        for name, value in vars(hiveon_async).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, types.ModuleType)
    ]

    assert hiveon_async.__all__ == sorted(public)


def test_designed_names_are_exported() -> None:
    """The names the design fixes are all there."""
    assert set(hiveon_async.__all__) >= DESIGNED


def test_exported_names_belong_to_the_package() -> None:
    """Every exported class and function is defined in hiveon_async, not taken from a dependency."""
    for name in hiveon_async.__all__:
        module = getattr(getattr(hiveon_async, name), "__module__", "hiveon_async")
        assert module.startswith("hiveon_async"), name


def test_public_classes_name_the_public_module() -> None:
    """Tracebacks and reprs say hiveon_async.NotFoundError, not a private module."""
    classes = [getattr(hiveon_async, name) for name in hiveon_async.__all__ if name[0].isupper()]

    assert classes
    assert {cls.__module__ for cls in classes if isinstance(cls, type)} == {"hiveon_async"}
