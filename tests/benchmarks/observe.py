"""What observability costs per call: OpenTelemetry absent, installed but unused, and hooks.

``python -m tests.benchmarks.observe --before /path/to/tree-before --n 20000 --repeat 5``
runs the in-process ``call`` mode of :mod:`.inprocess` (``await
client.stop_deployment(id)`` against ``FakeVendorAPI(record=False).transport()``,
no socket) in a fresh process per sample, the variants interleaved so that a
busy machine weighs on each alike:

- ``before``: the package of another tree (``--before``, e.g. ``git archive``
  of the commit before observability), with opentelemetry made unimportable.
- ``absent``: this tree, with opentelemetry made unimportable: what a user
  without the ``otel`` extra pays.
- ``noop``: this tree, opentelemetry-api importable and no tracer or meter
  provider set (the API's no-op default): the ``otel`` extra installed but unused.
- ``sdk``: this tree with the SDK's tracer and meter providers set, spans
  sampled and dropped by a processor that does nothing: for information.
- ``hooks``: this tree without opentelemetry, with an ``on_attempt`` hook that
  does nothing: for information.

It prints the median and the lowest CPU per stop of each variant, and their
ratios to ``before``'s (on a shared machine the lowest is the least disturbed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

VARIANTS = ("before", "absent", "noop", "sdk", "hooks")
HERE = Path(__file__).resolve().parents[2]

_BLOCK_OTEL = """
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(name)
sys.meta_path.insert(0, _Absent())
"""

_SDK = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
provider = TracerProvider()
provider.add_span_processor(SpanProcessor())
trace.set_tracer_provider(provider)
metrics.set_meter_provider(MeterProvider())
"""

_HOOKS = """
from tests.benchmarks import inprocess
inprocess._client = lambda fake, c: fake.client(max_concurrency=c, on_attempt=lambda info: None)
"""


def _child(variant: str, tree: Path, n: int) -> str:
    setup = {
        "before": _BLOCK_OTEL,
        "absent": _BLOCK_OTEL,
        "noop": "",
        "sdk": _SDK,
        "hooks": _BLOCK_OTEL + _HOOKS,
    }[variant]
    return (
        f"import sys\nsys.path.insert(0, {str(tree)!r})\n{setup}\n"
        "from tests.benchmarks import inprocess\n"
        f"inprocess.main(['call', '--n', '{n}'])\n"
    )


def _cpu_per_stop(variant: str, tree: Path, n: int) -> float:
    run = subprocess.run(
        [sys.executable, "-c", _child(variant, tree, n)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    from .measure import parse_sample

    sample = parse_sample(run.stdout)
    assert sample is not None
    assert sample.ok == n, sample.error
    return sample.cpu / n


def main(argv: list[str] | None = None) -> None:
    """Run the variants interleaved and print their medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    samples: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.repeat):
        for variant in VARIANTS:
            tree = args.before if variant == "before" else HERE
            samples[variant].append(_cpu_per_stop(variant, tree.resolve(), args.n))
    base = statistics.median(samples["before"])
    base_low = min(samples["before"])
    for variant in VARIANTS:
        median = statistics.median(samples[variant])
        low = min(samples[variant])
        spread = ", ".join(f"{s * 1e6:.1f}" for s in samples[variant])
        print(
            f"{variant:7} median {median * 1e6:6.1f} us/stop x{median / base:.3f}  "
            f"lowest {low * 1e6:6.1f} us/stop x{low / base_low:.3f}  ({spread})",
            flush=True,
        )


if __name__ == "__main__":
    main()
