"""Developer tasks: ``nox -s lint typecheck tests`` before every push."""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]

PACKAGE = "hiveon_async"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the suite on asyncio and trio with branch coverage (>= 95%)."""
    session.install("-e", ".[cli,speedups]", *nox.project.dependency_groups(PYPROJECT, "tests"))
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff, and the import contracts with import-linter."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on the package and on the never-run typing examples."""
    session.install("-e", ".[cli,speedups]", *nox.project.dependency_groups(PYPROJECT, "typecheck"))
    session.run("mypy", PACKAGE, "tests/typing")


PYPROJECT = nox.project.load_toml("pyproject.toml")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly (warnings are errors) and offline."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        "build/site",
        env={"NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's banner about its successor
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark throughput and CPU per stop (issue 6); ~15 minutes. See docs/benchmarks.md.

    Options go to the harness: ``nox -s bench -- --quick``, ``-- --full``, ``-- --help``.
    """
    session.install("-e", ".[speedups]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "-m", "tests.benchmarks.run", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The long fault soak: 50,000 ids on asyncio and trio over every path, flat memory."""
    session.install("-e", ".[cli,speedups]", *nox.project.dependency_groups(PYPROJECT, "tests"))
    session.run("python", "-m", "tests.soak.long_soak", *session.posargs)
