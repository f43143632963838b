"""OpenTelemetry: set a tracer and a meter provider once; every client then reports to them."""

import anyio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from hiveon_async import AsyncVendorClient


def set_up_telemetry(spans: SpanExporter, reader: MetricReader) -> None:
    # In production: the OTLP exporters (opentelemetry-exporter-otlp), a periodic reader.
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


async def main() -> None:
    tracer = trace.get_tracer("fleet-ops")
    # Your own span: the client's spans become its children, and the vendor receives a
    # traceparent header naming each attempt's span.
    with tracer.start_as_current_span("drain-rack-7"):
        async with AsyncVendorClient() as client:
            report = await client.stop_deployments(["dep-1", "dep-2", "dep-3"])
    print(f"stopped {len(report.stopped)}")


if __name__ == "__main__":
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    set_up_telemetry(ConsoleSpanExporter(), PeriodicExportingMetricReader(ConsoleMetricExporter()))
    anyio.run(main)
    trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]  # flush the spans
