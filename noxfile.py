"""Developer tasks: ``nox -s lint typecheck tests`` before every push."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests", "tests_httpx2", "docs", "build"]

PACKAGE = "hiveon_async"
OLDEST_PYTHON = 11  # 3.11: requires-python in pyproject.toml
NEWEST_PYTHON_TRIED = 20


def _runs(executable: str | None) -> bool:
    """Tell whether an interpreter on PATH runs (a pyenv shim of an inactive version does not)."""
    if executable is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 (an interpreter found on PATH)
            [executable, "-c", "pass"], capture_output=True, timeout=30, check=False
        )
    except OSError:
        return False
    return done.returncode == 0


def _pythons() -> list[str]:
    """List every CPython 3.X >= 3.11 on this machine, for the ``tests`` session.

    An interpreter counts when ``python3.X`` on PATH runs, or when pyenv has it
    installed without it being active: nox finds those only through pyenv's
    shims, so their versions are appended to ``$PYENV_VERSION`` (the active
    version stays first, so ``python3`` is unchanged).
    """
    found: list[str] = []
    inactive: list[str] = []
    pyenv = shutil.which("pyenv")
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for minor in range(OLDEST_PYTHON, NEWEST_PYTHON_TRIED):
        version = f"3.{minor}"
        if _runs(shutil.which(f"python{version}")):
            found.append(version)
            continue
        if pyenv is None:
            continue
        installs = [
            path.name
            for path in pyenv_root.glob(f"versions/{version}.*")
            if re.fullmatch(rf"3\.{minor}\.\d+", path.name)
            and (path / "bin" / f"python{version}").is_file()
        ]
        if installs:
            inactive.append(max(installs, key=lambda name: int(name.rsplit(".", 1)[1])))
            found.append(version)
    if inactive:
        active = (
            os.environ.get("PYENV_VERSION")
            or subprocess.run(  # noqa: S603
                [pyenv, "version-name"], capture_output=True, text=True, check=False
            ).stdout.strip()
        )
        os.environ["PYENV_VERSION"] = ":".join([*filter(None, active.split(":")), *inactive])
    return found


# Found when the noxfile loads, so `nox --list` shows one tests-3.X session per Python.
PYTHONS = _pythons()


# None found: a tests-3.11 session still exists, and reports its Python missing.
@nox.session(python=PYTHONS or [f"3.{OLDEST_PYTHON}"], download_python="never")
def tests(session: nox.Session) -> None:
    """Run the suite on asyncio and trio with branch coverage (>= 95%), on each Python >= 3.11.

    Each Python's run must reach the coverage floor on its own. CI needs two Pythons at least.
    """
    session.log(f"Pythons >= 3.11 found on this machine: {', '.join(PYTHONS) or 'none'}")
    if os.environ.get("CI") and len(PYTHONS) < 2:
        session.error(
            f"CI runs the tests on two Pythons >= 3.11 at least; found only {PYTHONS}."
            " Install another (pyenv install 3.13, or apt-get install python3.X)."
        )
    session.install(
        "-e", ".[cli,speedups,redis]", *nox.project.dependency_groups(PYPROJECT, "tests")
    )
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report")


#: The tests that run again on httpx2: the user's client, transport and timeout, the lean
#: pool on httpcore2, and the batches and cancellations through the fake's httpx2 transport.
HTTPX2_TESTS = [
    "tests/test_http_library.py",
    "tests/transport/test_httpcore.py",
    "tests/test_batch.py",
    "tests/test_batch_progress.py",
    "tests/test_base_url.py",
    "tests/test_cancellation.py",
    "tests/test_with_options.py",
]


@nox.session(name="tests_httpx2")
def tests_httpx2(session: nox.Session) -> None:
    """Run the tests of the httpx2 paths with httpx2 as the library under test (about 2 minutes).

    ``$HIVEON_TESTS_HTTP=httpx2`` makes the tests' own clients, timeouts and fake
    transports httpx2's (tests/doubles.py); the ``httpx2`` extra is what a user installs.
    """
    session.install(
        "-e", ".[cli,speedups,httpx2]", *nox.project.dependency_groups(PYPROJECT, "tests")
    )
    session.run("pytest", *(session.posargs or HTTPX2_TESTS), env={"HIVEON_TESTS_HTTP": "httpx2"})


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
    session.install(
        "-e", ".[cli,speedups,redis]", *nox.project.dependency_groups(PYPROJECT, "typecheck")
    )
    session.run("mypy", PACKAGE, "tests/typing")


PYPROJECT = nox.project.load_toml("pyproject.toml")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly and offline, then check it in headless Chromium.

    The check (docs/check_site.py) opens build/site/index.html from the file system,
    follows every nav link and searches. It needs Chromium (Debian: `apt-get install
    chromium`): without it, it fails under CI and is skipped, loudly, elsewhere.
    """
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        "build/site",
        env={"NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's banner about its successor
    )
    session.run("python", "docs/check_site.py", "build/site")


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel into dist/ and check them as PyPI would (twine --strict)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "build"))
    shutil.rmtree("dist", ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", "dist")
    archives = sorted(Path("dist").iterdir())
    session.run("twine", "check", "--strict", *map(str, archives))
    for archive in archives:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as whl:
                names = whl.namelist()
            wanted = ".dist-info/licenses/LICENSE"
        else:
            with tarfile.open(archive) as sdist:
                names = sdist.getnames()
            wanted = "/LICENSE"
        if not any(name.endswith(wanted) for name in names):
            session.error(f"{archive.name} has no LICENSE (no member ending in {wanted})")
        session.log(f"{archive.name}: LICENSE included")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark throughput and CPU per stop, the rate-limited cell and its conditions, windows.

    About 25 minutes. The shared-limit cell needs redis-server too (Debian's package).

    Options go to the main harness: ``nox -s bench -- --quick``, ``-- --full``, ``-- --help``;
    ``--quick`` also shortens the rate-limited cell (nginx and haproxy from Debian's
    packages: ``apt-get install nginx-light haproxy``). See docs/benchmarks.md.
    """
    session.install("-e", ".[speedups,redis]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "-m", "tests.benchmarks.run", *session.posargs)
    if not any(arg in ("-h", "--help") or arg.startswith("--from-json") for arg in session.posargs):
        quick = ["--quick"] if "--quick" in session.posargs else []
        session.run("python", "-m", "tests.benchmarks.ratelimited", *quick)
        # Two processes learning on one key, a loaded machine, a key spent before.
        session.run(
            "python", "-m", "tests.benchmarks.conditions", *(["--rates", "100"] if quick else [])
        )
        # Quotas per window (10 s) and a quota used up for an hour, on HAProxy.
        session.run(
            "python", "-m", "tests.benchmarks.windows", *(["--clients", "ours"] if quick else [])
        )
        # Four processes sharing one RateLimit through Redis, one killed; what Redis costs.
        session.run(
            "python", "-m", "tests.benchmarks.shared_limit", *(["--repeats", "1"] if quick else [])
        )


@nox.session
def soak(session: nox.Session) -> None:
    """The long fault soak: 50,000 ids on asyncio and trio over every path, flat memory."""
    session.install(
        "-e", ".[cli,speedups,redis]", *nox.project.dependency_groups(PYPROJECT, "tests")
    )
    session.run("python", "-m", "tests.soak.long_soak", *session.posargs)
