"""Benchmarks: throughput and CPU per stop against local servers.

Not part of the test run (``norecursedirs`` in pyproject.toml). Run everything
with ``nox -s bench`` or ``python -m tests.benchmarks.run``; see
``docs/benchmarks.md`` for what each part measures.

Modules:
    run: the orchestrator (servers, rounds, medians, checks, JSON, chart).
    compare: the same client from two checkouts, before and after, in one run.
    server: the FakeVendorAPI socket server, in a process of its own.
    contenders: our client, raw httpx and aiohttp, each run in a fresh process.
    inprocess: the in-process measurements (per-call overhead, stream memory).
    measure: what a run records, and how a child process reports it.
    summary: the medians per cell.
    targets: the project's performance checks, against the medians (a development aid).
    report: the tables, as text for the terminal and Markdown for the docs.
    chart: the throughput chart and the rate-limited timeline, as dependency-free SVG.
    ratelimited: the rate-limited cell: our client and a naive loop against real limiters.
    limiters: nginx limit_req and HAProxy stick tables, configured and run on loopback.
    profiling: one contender or in-process mode under pyinstrument.
    budget: the retry budget's and the rate limiter's counts, in-process.
"""
