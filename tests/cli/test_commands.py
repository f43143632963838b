"""The ``hiveon-async`` group: its commands, shared options, and how every command exits."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hiveon_async import __version__, cli
from hiveon_async.cli import main
from hiveon_async.cli._exit import CliExit, exits
from hiveon_async.cli._faults import FAULT_MIX, fault_rates


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
