"""OpenTelemetry's global providers, set for one test and forgotten after it."""

from __future__ import annotations

import sys

from opentelemetry import trace
from opentelemetry.util._once import Once

__all__ = ["reset_otel_globals"]


def reset_otel_globals() -> None:
    """Forget the global tracer and meter providers, as OpenTelemetry's own test utilities do.

    The API lets a process set each provider once; a test that sets them must
    leave the next test the API's defaults (no provider: nothing recorded).
    """
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    internal = sys.modules["opentelemetry.metrics._internal"]
    internal._METER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    internal._METER_PROVIDER = None  # type: ignore[attr-defined]
    internal._PROXY_METER_PROVIDER = internal._ProxyMeterProvider()  # type: ignore[attr-defined]
