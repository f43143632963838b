"""Hostile values inside the process: what is checked is what is sent, and one bad id fails alone.

A ``str`` subclass can say one thing to the check and another to an f-string
(``__format__``), to httpx's header encoding (``encode``), to a dict
(``__eq__``/``__hash__``) or to a message (``__repr__``). Each id, key and
metadata value is reduced to a plain ``str`` before it is checked, and an
input that breaks as it is looked at fails only its own outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import respx

from hiveon_async import AsyncVendorClient, InvalidRequestError
from hiveon_async._request import check_metadata, deployment_path_segment, plain_str
from tests.doubles import ANY_STOP, STOP_PATH

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., AsyncVendorClient]


class Steering(str):
    """Checks as a valid id; formats, prints and encodes as a path elsewhere on the host."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return "../../admin?"

    def __str__(self) -> str:
        return "../../admin?"

    def __add__(self, other: object) -> str:
        return "../../admin?"

    def __radd__(self, other: object) -> str:
        return "../../admin?"

    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        return b"../../admin?"


class Unprintable(str):
    """A str whose repr, hash and equality raise."""

    __slots__ = ()

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __hash__(self) -> int:
        raise RuntimeError("no hash for you")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq for you")


class NoRepr:
    """Not a str at all, and its repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class PosingAsStr:
    """Claims to be a str through ``__class__``, which fools ``isinstance``."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return str


class BrokenMapping(dict[str, str]):
    """A mapping whose items() raises."""

    def items(self) -> Any:
        raise RuntimeError("no items for you")


def test_a_str_subclass_is_reduced_to_a_plain_str() -> None:
    """The segment is a plain str with the subclass's characters, whatever its methods say."""
    segment = deployment_path_segment(Steering("dep-1"))

    assert type(segment) is str
    assert segment == "dep-1"
    assert f"{segment}" == "dep-1"
    assert plain_str(PosingAsStr()) is None


def test_metadata_is_reduced_to_plain_strs_and_a_broken_mapping_is_refused() -> None:
    """Keys and values come out plain; a mapping that raises is an InvalidRequestError."""
    checked = check_metadata({Steering("k"): Steering("v")})

    assert [(type(k), type(v)) for k, v in checked.items()] == [(str, str)]
    assert checked == {"k": "v"}
    with pytest.raises(InvalidRequestError, match="could not be read"):
        check_metadata(BrokenMapping(a="b"))


async def test_a_steering_id_is_sent_to_its_own_path(
    make_client: MakeClient, vendor: respx.Router
) -> None:
    """The POST goes to the stop path of the checked id, never the path __format__ returns."""
    route = vendor.post(STOP_PATH.format("dep-1")).respond(200, json={"deployment_id": "dep-1"})
    vendor.route().respond(500)  # anything else: it must not be reached

    result = await make_client().stop_deployment(Steering("dep-1"))

    assert route.call_count == 1
    assert len(vendor.calls) == 1
    assert type(result.deployment_id) is str


async def test_an_api_key_subclass_cannot_change_the_header_sent(
    make_client: MakeClient, vendor: respx.Router
) -> None:
    """The X-API-Key header holds the checked characters, not what the subclass encodes to."""
    route = vendor.post(STOP_PATH.format("dep-1")).respond(200, json={"deployment_id": "dep-1"})

    await make_client(api_key=Steering("key-123456")).stop_deployment("dep-1")

    assert route.calls.last.request.headers["x-api-key"] == "key-123456"


async def test_a_bad_id_fails_only_its_own_outcome(
    make_client: MakeClient, vendor: respx.Router
) -> None:
    """An id whose repr, hash and eq raise, or not a str with a raising repr: failed, not fatal."""
    vendor.post(path__regex=ANY_STOP).mock(
        side_effect=lambda request, deployment_id: respx.MockResponse(
            200, json={"deployment_id": deployment_id}
        )
    )
    items: list[Any] = ["dep-1", Unprintable("dep-2"), NoRepr(), PosingAsStr(), "dep-3"]

    report = await make_client().stop_deployments(items)

    assert len(report) == 5
    assert [report[f"dep-{n}"].ok for n in (1, 2, 3)] == [True, True, True]
    failed = report.failed
    assert len(failed) == 2
    for outcome in failed:
        assert isinstance(outcome.error, InvalidRequestError)
        assert "object at 0x" in outcome.deployment_id
    assert all(type(outcome.deployment_id) is str for outcome in report)
