"""One stop call's state across its attempts."""

from __future__ import annotations

from typing import Any

from ._transport import StopRequest

__all__ = ["Call"]


class Call:
    """The state of one stop call across its attempts (internal).

    Attributes:
        deployment_id: The id, as the caller gave it (already checked).
        request: The prepared POST.
        secrets: The credentials this call carries, to redact wherever text is kept.
        started: When the call started, on the client's clock.
        deadline: When the call must end, on the client's clock, or None.
        attempts: Requests sent so far.
        maybe_applied: True once an attempt may have reached the server.
        status: The status of the latest answer, None before one (or after no response).
        span: The call's OpenTelemetry span while one is recorded, else None.
    """

    __slots__ = (
        "attempts",
        "deadline",
        "deployment_id",
        "maybe_applied",
        "request",
        "secrets",
        "span",
        "started",
        "status",
    )

    def __init__(
        self,
        deployment_id: str,
        *,
        request: StopRequest,
        secrets: tuple[str, ...],
        started: float,
        deadline: float | None,
    ) -> None:
        self.deployment_id = deployment_id
        self.request = request
        self.secrets = secrets
        self.started = started
        self.deadline = deadline
        self.attempts = 0
        self.maybe_applied = False
        self.status: int | None = None
        # Any: this leaf must not import OpenTelemetry, which may not even be installed.
        self.span: Any = None
