"""What can go wrong: one :class:`Fault`, and a seeded :class:`FaultPlan` of random ones.

A fault pre-empts the fake's normal answer (the deployment is not stopped)
unless it was made with ``applied=True``, which models the nastiest case: the
server did the work, then the answer was lost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

import attrs

__all__ = ["Fault", "FaultKind", "FaultPlan", "ScriptEntry"]

FaultKind = Literal[
    "status", "reset", "drop", "stall", "trickle", "garbage", "mismatch", "huge", "redirect"
]
#: The kinds that a name alone selects (``"status"`` needs a code, so it is spelled as an int).
NAMED_KINDS: frozenset[str] = frozenset(get_args(FaultKind)) - {"status"}

#: Seconds a stall lasts before the connection is dropped: far past any sane client timeout.
DEFAULT_STALL_SECONDS = 3600.0
#: Seconds between two bytes of a trickled body.
DEFAULT_TRICKLE_INTERVAL = 0.01
#: Where a redirect points: a host that can never resolve (RFC 6761).
DEFAULT_REDIRECT_HOST = "https://elsewhere.invalid"
#: Bytes of padding in a huge body: twice the client's 64 KiB cap.
HUGE_BODY_BYTES = 128 * 1024


def _check_status(code: int) -> None:
    if isinstance(code, bool) or not isinstance(code, int) or not 400 <= code <= 599:
        raise ValueError(f"a status fault needs an int code in 400..599, got {code!r}")


def _check_retry_after(value: int | str | None) -> None:
    # Retry-After is delay-seconds (a non-negative integer) or an HTTP-date.
    if isinstance(value, bool) or (isinstance(value, int) and value < 0):
        raise ValueError(f"retry_after must be an int >= 0, an HTTP-date or None, got {value!r}")
    if isinstance(value, str) and (not value or "\r" in value or "\n" in value):
        raise ValueError("retry_after must be a non-empty single-line HTTP-date")


@attrs.frozen(kw_only=True)
class Fault:
    """One injected failure. Build it with the class methods, e.g. ``Fault.status(503)``.

    Attributes:
        kind: What goes wrong (see the class methods for each kind).
        status_code: The status a ``status`` fault answers.
        retry_after: The ``Retry-After`` header value a ``status`` fault sends, if any.
        seconds: How long a ``stall`` lasts before the connection is dropped.
        interval: Seconds between the bytes of a ``trickle``.
        chunked: Whether a ``huge`` body is sent chunked rather than with Content-Length.
        location: Where a ``redirect`` points.
        applied: Stop the deployment first, then fail (the answer is lost, the work is not).
    """

    kind: FaultKind
    status_code: int | None = None
    retry_after: int | str | None = None
    seconds: float = DEFAULT_STALL_SECONDS
    interval: float = DEFAULT_TRICKLE_INTERVAL
    chunked: bool = False
    location: str | None = None
    applied: bool = False

    def __attrs_post_init__(self) -> None:
        if self.kind not in NAMED_KINDS and self.kind != "status":
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "status":
            _check_status(self.status_code)  # type: ignore[arg-type]
        _check_retry_after(self.retry_after)
        for name in ("seconds", "interval"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @property
    def name(self) -> int | str:
        """How the fake counts this fault: the status code, or the kind's name."""
        return self.status_code if self.status_code is not None else self.kind

    @classmethod
    def status(
        cls, code: int, *, retry_after: int | str | None = None, applied: bool = False
    ) -> Fault:
        """Answer ``code`` with a small JSON error body.

        Args:
            code: An error status, 400 to 599.
            retry_after: A ``Retry-After`` value: delay-seconds or an HTTP-date.
            applied: Stop the deployment before answering the error.

        Returns:
            The fault.

        Example:
            ``Fault.status(429, retry_after=2)`` or
            ``Fault.status(503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")``.
        """
        return cls(kind="status", status_code=code, retry_after=retry_after, applied=applied)

    @classmethod
    def reset(cls, *, applied: bool = False) -> Fault:
        """Read the request, then reset the connection (a TCP RST; ``httpx.ReadError``).

        Args:
            applied: Stop the deployment before resetting.

        Returns:
            The fault.
        """
        return cls(kind="reset", applied=applied)

    @classmethod
    def drop(cls, *, applied: bool = False) -> Fault:
        """Read the request, then close the connection without an answer.

        The client sees ``httpx.RemoteProtocolError("Server disconnected without
        sending a response.")``.

        Args:
            applied: Stop the deployment before closing.

        Returns:
            The fault.
        """
        return cls(kind="drop", applied=applied)

    @classmethod
    def stall(cls, *, seconds: float = DEFAULT_STALL_SECONDS, applied: bool = False) -> Fault:
        """Read the request and never answer (for ``seconds``, then drop the connection).

        A client's read timeout fires first: ``httpx.ReadTimeout``.

        Args:
            seconds: How long to stay silent.
            applied: Stop the deployment before stalling.

        Returns:
            The fault.
        """
        return cls(kind="stall", seconds=seconds, applied=applied)

    @classmethod
    def trickle(cls, *, interval: float = DEFAULT_TRICKLE_INTERVAL) -> Fault:
        """Answer normally, but send the body one byte every ``interval`` seconds.

        The headers arrive at once, so only a read timeout shorter than
        ``interval`` fires (mid-body, as ``httpx.ReadTimeout``).

        Args:
            interval: Seconds between two bytes.

        Returns:
            The fault.
        """
        return cls(kind="trickle", interval=interval)

    @classmethod
    def garbage(cls) -> Fault:
        """Answer 200 with a body that is not JSON.

        Returns:
            The fault.
        """
        return cls(kind="garbage")

    @classmethod
    def mismatch(cls) -> Fault:
        """Answer 200 with the id of another deployment.

        Returns:
            The fault.
        """
        return cls(kind="mismatch")

    @classmethod
    def huge(cls, *, chunked: bool = False) -> Fault:
        """Answer 200 with a valid JSON body over 64 KiB (the client's cap).

        Args:
            chunked: Send it with ``Transfer-Encoding: chunked`` instead of Content-Length.

        Returns:
            The fault.
        """
        return cls(kind="huge", chunked=chunked)

    @classmethod
    def redirect(cls, *, location: str | None = None) -> Fault:
        """Answer ``307 Temporary Redirect`` to another host.

        Args:
            location: The ``Location`` header; by default the same path on
                ``https://elsewhere.invalid``, which never resolves.

        Returns:
            The fault.
        """
        return cls(kind="redirect", location=location)

    @classmethod
    def coerce(cls, entry: ScriptEntry) -> Fault | None:
        """Turn a script entry into a fault; None means "answer normally".

        Args:
            entry: ``200`` (answer normally), an error status such as ``503``,
                a fault name such as ``"reset"``, or a :class:`Fault`.

        Returns:
            The fault, or None for ``200``.

        Raises:
            ValueError: For anything else.
        """
        if isinstance(entry, Fault):
            return entry
        if isinstance(entry, str):
            if entry not in NAMED_KINDS:
                names = ", ".join(sorted(NAMED_KINDS))
                raise ValueError(f"unknown fault {entry!r}; expected a status code or {names}")
            return cls(kind=entry)  # type: ignore[arg-type]  # checked against NAMED_KINDS
        if entry == 200 and not isinstance(entry, bool):
            return None
        return cls.status(entry)


#: A script entry: an int status (200 means "answer normally"), a fault name, or a Fault.
ScriptEntry = int | str | Fault


def _check_rates(
    instance: FaultPlan,
    attribute: attrs.Attribute[Mapping[ScriptEntry, float]],
    value: Mapping[ScriptEntry, float],
) -> None:
    # The converter has already made a mapping of it (or raised TypeError).
    for key, rate in value.items():
        if Fault.coerce(key) is None:
            raise ValueError("rates cannot hold 200: normal answers are what is left over")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"the rate of {key!r} must be in [0, 1], got {rate!r}")
    if sum(value.values()) > 1 + 1e-9:
        raise ValueError(f"the rates add up to {sum(value.values())!r}, more than 1")


def _check_seconds(instance: FaultPlan, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _check_plan_retry_after(
    instance: FaultPlan, attribute: attrs.Attribute[Any], value: int | str | None
) -> None:
    _check_retry_after(value)


#: What ``FaultPlan(rates=...)`` takes: a mapping keyed by any kind of script entry.
#: (A union, because ``Mapping`` is invariant in its keys: a ``dict[int | str, float]``
#: is not a ``Mapping[int | str | Fault, float]`` to a type checker.)
RatesInput = (
    Mapping[int, float]
    | Mapping[str, float]
    | Mapping[Fault, float]
    | Mapping[int | str, float]
    | Mapping[ScriptEntry, float]
)


def _frozen_rates(rates: RatesInput) -> Mapping[ScriptEntry, float]:
    # A read-only copy: the plan is frozen, and the caller's dict may change later.
    # dict() raises TypeError for what is not a mapping (or pairs), as the plan promises.
    return MappingProxyType(dict(cast(Mapping[ScriptEntry, float], rates)))


@attrs.frozen(kw_only=True)
class FaultPlan:
    """Random faults and latency, reproducible: the same seed and request order, the same faults.

    Each request that no script claims rolls once against ``rates``; what is
    left over is a normal answer. Latency is added to every request.

    Args:
        seed: Seeds the fake's random generator.
        rates: Probability per fault: a status code (``500``), a fault name
            (``"reset"``) or a :class:`Fault` (``Fault.stall(seconds=2)``). They
            may add up to at most 1.
        retry_after: The ``Retry-After`` sent with random 429s and 503s (None: none).
        latency: Seconds added before every answer.
        jitter: Up to this many more seconds, uniformly at random.

    Example:
        ``FaultPlan(seed=7, rates={500: 0.1, 429: 0.01, "reset": 0.01}, latency=0.002)``
    """

    seed: int = 0
    rates: Mapping[ScriptEntry, float] = attrs.field(
        factory=dict, converter=_frozen_rates, validator=_check_rates
    )
    retry_after: int | str | None = attrs.field(default=1, validator=_check_plan_retry_after)
    latency: float = attrs.field(default=0.0, validator=_check_seconds)
    jitter: float = attrs.field(default=0.0, validator=_check_seconds)


def thresholds(plan: FaultPlan) -> list[tuple[float, Fault]]:
    """Return the cumulative thresholds a roll in [0, 1) is compared against.

    Args:
        plan: The plan whose rates to lay end to end.

    Returns:
        ``(upper bound, fault)`` pairs in increasing order, zero rates left out;
        random 429s and 503s carry the plan's ``retry_after``.
    """
    pairs: list[tuple[float, Fault]] = []
    total = 0.0
    for key, rate in plan.rates.items():
        if rate <= 0:
            continue
        total += rate
        fault = Fault.coerce(key)
        assert fault is not None
        if fault.status_code in (429, 503):
            fault = Fault.status(fault.status_code, retry_after=plan.retry_after)
        pairs.append((total, fault))
    return pairs
