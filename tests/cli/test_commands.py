"""The ``hiveon-async`` group: its commands, shared options, and how every command exits."""

from __future__ import annotations

import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hiveon_async import __version__, cli
from hiveon_async.cli import main
from hiveon_async.cli._exit import CliExit, exits
from hiveon_async.cli._faults import FAULT_MIX, describe_faults, fault_rates, parse_faults


def test_help_lists_the_commands() -> None:
    """``--help`` names every command; ``--version`` prints the library's version."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("demo", "fake-server", "stop"):
        assert name in result.output
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"hiveon-async, version {__version__}\n"


def test_python_dash_m(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m hiveon_async.cli`` runs the group."""
    monkeypatch.setattr(sys, "argv", ["hiveon-async", "--help"])
    with pytest.raises(SystemExit) as exited:
        # By path: pytest's import hook, which rewrites this plugin's package, cannot run_module.
        runpy.run_path(str(Path(cli.__file__).with_name("__main__.py")), run_name="__main__")
    assert exited.value.code == 0
    assert "fake-server" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["stop", "demo"])
def test_shared_options_are_the_same_everywhere(command: str) -> None:
    """``--concurrency`` and ``--quiet`` read the same in each command that takes them."""
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Requests in flight at most.  [default: 32; 1<=x<=1024]" in result.output
    assert "-q, --quiet" in result.output
    assert "No progress bar and no summary on stderr." in result.output


def test_an_exit_anywhere_ends_the_command_with_its_status() -> None:
    """A ``CliExit`` and a stray Ctrl-C both become the process's exit status."""

    @click.command()
    @click.argument("how")
    def probe(how: str) -> None:
        with exits():
            if how == "exit":
                raise CliExit(141)
            raise KeyboardInterrupt

    exited = CliRunner().invoke(probe, ["exit"])
    assert (exited.exit_code, exited.output) == (141, "")
    interrupted = CliRunner().invoke(probe, ["ctrl-c"])
    assert (interrupted.exit_code, interrupted.stderr) == (130, "Interrupted.\n")


def test_one_fault_mix() -> None:
    """The fail rate is spread over the same faults; the demo's fake throttles for real only."""
    assert sum(FAULT_MIX.values()) == pytest.approx(1)
    served = fault_rates(0.3)
    assert served.keys() == FAULT_MIX.keys()
    assert sum(served.values()) == pytest.approx(0.3)
    demo = fault_rates(0.2, random_throttling=False)
    assert 429 not in demo
    assert sum(demo.values()) == pytest.approx(0.2)
    assert demo["reset"] == demo["drop"] == pytest.approx(0.03)
    assert fault_rates(0.0) == dict.fromkeys(FAULT_MIX, 0.0)


def test_the_fault_mix_of_fake_server() -> None:
    """``--faults`` reads status codes and fault names; the banner lists the non-zero ones."""
    rates = parse_faults(" 500=0.1,503=0.05 , 429=0.02,reset=0.01,drop=0")
    assert rates == {500: 0.1, 503: 0.05, 429: 0.02, "reset": 0.01, "drop": 0.0}
    assert describe_faults(rates) == "500 10%, 503 5%, 429 2%, reset 1%"
    assert describe_faults(fault_rates(0.3)) == "500 15%, 503 6%, 429 3%, reset 3%, drop 3%"
    assert describe_faults({}) == "none"
    with pytest.raises(ValueError, match="expected FAULT=RATE"):
        parse_faults("500=0.1,")
    with pytest.raises(ValueError, match="unknown fault 'boom'; expected a status code or drop"):
        parse_faults("boom=0.1")


#: Runs the command line in a fresh interpreter that cannot import one package of the extra.
WITHOUT = """
import sys
sys.modules[{blocked!r}] = None  # an import of it raises ModuleNotFoundError
sys.argv = ["hiveon-async", "--help"]
{entry}
"""
CONSOLE_SCRIPT = "from hiveon_async.cli import run; sys.exit(run())"
PYTHON_DASH_M = "import runpy; runpy.run_module('hiveon_async.cli', run_name='__main__')"


@pytest.mark.parametrize("blocked", ["click", "rich"])
@pytest.mark.parametrize("entry", [CONSOLE_SCRIPT, PYTHON_DASH_M], ids=["script", "python-m"])
def test_without_the_cli_extra_one_line_and_exit_2(blocked: str, entry: str) -> None:
    """No traceback: one line on stderr saying how to install the extra, and exit 2."""
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT.format(blocked=blocked, entry=entry)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr == f"{cli.EXTRA_HINT}\n"
    assert "pip install 'hiveon-async[cli]'" in cli.EXTRA_HINT


def test_the_package_imports_without_click() -> None:
    """``hiveon_async.cli`` itself needs no click: only its ``main`` does."""
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['click'] = None; import hiveon_async.cli as cli; "
            "print(callable(cli.run)); cli.main",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.stdout == "True\n"
    assert completed.stderr.rstrip().endswith(
        "ModuleNotFoundError: import of click halted; None in sys.modules"
    )


def test_main_is_the_click_group_and_run_is_the_console_script() -> None:
    """Tests and docs import ``main`` (the group); the console script is ``run``."""
    assert isinstance(cli.main, click.Group)
    assert main is cli.main
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cli.nope  # noqa: B018
    pyproject = tomllib.loads((Path(cli.__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"hiveon-async": "hiveon_async.cli:run"}


def test_run_runs_the_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the extra, ``run`` is the group with its exit status."""
    monkeypatch.setattr(sys, "argv", ["hiveon-async", "--version"])
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"hiveon-async, version {__version__}\n"
