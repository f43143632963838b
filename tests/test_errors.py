"""The error hierarchy: the tree its docstring draws, and what each error carries."""

from __future__ import annotations

import re

import httpx
import pytest

import hiveon_async
from hiveon_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BatchFailedError,
    BatchReport,
    HiveonError,
    InvalidRequestError,
    RateLimitedError,
    ResponseValidationError,
    _errors,
)


def drawn_tree() -> dict[str, str]:
    """Each class drawn in the module docstring, mapped to the class drawn as its parent."""
    doc = _errors.__doc__ or ""
    parents: dict[str, str] = {}
    path = ["HiveonError"]
    for line in doc.splitlines():
        drawn = re.match(r"\s*([│ ]*)[├└]── (\w+)", line)
        if drawn is None:
            continue
        depth = len(drawn.group(1)) // 4 + 1
        path[depth:] = [drawn.group(2)]
        parents[drawn.group(2)] = path[depth - 1]
    return parents


def test_docstring_tree_is_the_real_hierarchy() -> None:
    """Every class the docstring draws has exactly the parent drawn above it."""
    tree = drawn_tree()

    assert len(tree) == 12
    for name, parent in tree.items():
        cls = getattr(hiveon_async, name)
        assert cls.__bases__[0] is getattr(hiveon_async, parent), name


def test_every_exported_error_is_drawn() -> None:
    """No public error class is missing from the drawing."""
    exported = {
        name
        for name in hiveon_async.__all__
        if isinstance(getattr(hiveon_async, name), type)
        and issubclass(getattr(hiveon_async, name), HiveonError)
    }

    assert exported == {*drawn_tree(), "HiveonError"}


def test_invalid_request_error_is_also_a_value_error() -> None:
    """Code that catches ValueError catches bad input too."""
    assert issubclass(InvalidRequestError, ValueError)
    assert issubclass(InvalidRequestError, HiveonError)


def test_str_is_the_message_and_repr_names_the_class() -> None:
    """str() is the plain message; repr() shows the class and the message."""
    error = APITimeoutError("no response for deployment 'd'")

    assert str(error) == "no response for deployment 'd'"
    assert repr(error) == "APITimeoutError(\"no response for deployment 'd'\")"


def test_defaults_say_nothing_was_sent() -> None:
    """Without details an error is about no deployment, after no attempt."""
    error = HiveonError("x")

    assert (error.deployment_id, error.attempts, error.maybe_applied) == (None, 0, False)


def test_status_error_carries_the_response_details() -> None:
    """status_code comes from the response; body, request id, retry_after and counts as given."""
    response = httpx.Response(429, request=httpx.Request("POST", "https://h/x"))

    error = RateLimitedError(
        "slow down",
        response=response,
        body="{}",
        request_id="req-1",
        retry_after=3.0,
        deployment_id="dep-1",
        attempts=2,
        maybe_applied=True,
    )

    assert isinstance(error, APIStatusError)
    assert error.status_code == 429
    assert error.response is response
    assert (error.body, error.request_id, error.retry_after) == ("{}", "req-1", 3.0)
    assert (error.deployment_id, error.attempts, error.maybe_applied) == ("dep-1", 2, True)


def test_connection_and_validation_errors_keep_what_they_had() -> None:
    """The no-response branch keeps the request; a bad 2xx keeps the response and request id."""
    request = httpx.Request("POST", "https://h/x")
    response = httpx.Response(200, request=request)

    assert APIConnectionError("x", request=request).request is request
    validation = ResponseValidationError("x", response=response, request_id="r")
    assert (validation.response, validation.request_id) == (response, "r")


def test_batch_failed_error_holds_the_report() -> None:
    """raise_for_failures()'s error gives the whole report back."""
    report = BatchReport(outcomes={})

    assert BatchFailedError("1 failed", report=report).report is report


@pytest.mark.parametrize("name", sorted(drawn_tree()))
def test_every_error_has_a_docstring(name: str) -> None:
    """Each error says when it is raised."""
    assert getattr(hiveon_async, name).__doc__
