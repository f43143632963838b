"""Benchmarks for issue 6: throughput and CPU per stop against local servers.

Not part of the test run (``norecursedirs`` in pyproject.toml). Run everything
with ``nox -s bench`` or ``python -m tests.benchmarks.run``; see
``docs/benchmarks.md`` for what each part measures.

Modules:
    run: the orchestrator (servers, rounds, medians, targets, JSON, chart).
    server: the FakeVendorAPI socket server, in a process of its own.
    contenders: our client, raw httpx and aiohttp, each run in a fresh process.
    inprocess: the in-process measurements (per-call overhead, stream memory).
    measure: what a run records, and how a child process reports it.
    targets: the issue's targets, checked against the medians.
    report: the tables, as text for the terminal and Markdown for the docs.
    chart: the throughput chart, as a dependency-free SVG.
"""
