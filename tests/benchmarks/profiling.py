"""Profile one contender or in-process mode with pyinstrument, to see where its time goes.

``python -m tests.benchmarks.profiling ours --concurrency 64`` starts the server
process (``--latency`` seconds), runs the contender once in this process under
pyinstrument and prints the profile; ``--html PATH`` also writes pyinstrument's
HTML view. ``python -m tests.benchmarks.profiling call`` profiles an in-process
mode (``floor``, ``bare``, ``call``, ``batch``) instead. Profiling slows the
code down, so read the shares, not the rates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .contenders import CONTENDERS, Job, deployment_ids, run_contender
from .inprocess import MODES, run_mode
from .measure import Sample, preload
from .server import ServerProcess

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Profile one run and print the profile."""
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=[*CONTENDERS, *MODES])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML view here")
    args = parser.parse_args(argv)

    preload()
    profiler = Profiler(async_mode="disabled")
    sample: Sample
    if args.target in MODES:
        with profiler:
            sample = run_mode(args.target, args.n, args.concurrency)
    else:
        server = ServerProcess.start(args.latency)
        try:
            job = Job(server.url, deployment_ids(args.n), args.concurrency)
            with profiler:
                sample = run_contender(CONTENDERS[args.target], job)
        finally:
            server.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(
        f"{args.target}: {sample.ok} of {args.n} stopped in {sample.wall:.2f} s "
        f"({1000 * sample.cpu / args.n:.3f} ms CPU per stop, profiled){sample.error or ''}"
    )
    if args.html is not None:
        args.html.write_text(profiler.output_html(), encoding="utf-8")


if __name__ == "__main__":
    main()
