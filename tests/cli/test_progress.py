"""The progress bar: what it shows, where JSON Lines go while it runs, when there is one."""

from __future__ import annotations

import io

import pytest

from hiveon_async import BatchProgress
from hiveon_async.cli._output import JsonLinesOutput, NoOutput, outcome_record
from hiveon_async.cli._progress import ProgressBar, progress_bar_for

from ._helpers import FAILED


def drawn(bar: ProgressBar, console_file: io.StringIO) -> str:
    bar.redraw()
    return console_file.getvalue()


def test_the_progress_bar() -> None:
    """done/total, rate, ETA and counts; done alone while the total is unknown."""
    from rich.console import Console

    progress = BatchProgress()
    total: list[int | None] = [None]
    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=160)
    bar = ProgressBar(
        progress, total=lambda: total[0], extra=lambda: "throttled 7", console=console
    )
    bar.redraw()  # not started: nothing drawn
    bar.stop()
    assert file.getvalue() == ""
    bar.start()
    assert bar.status(now=100.0).startswith("0  0/s  stopped 0")
    progress.done = progress.stopped = 50
    progress.retries = 5
    assert bar.status(now=101.0).startswith("50  50/s  stopped 50")
    total[0] = 150
    text = bar.status(now=102.0)
    assert text.startswith("50/150  25/s  ETA 0:04  stopped 50  failed 0  retries 5")
    assert text.endswith("throttled 7")
    progress.done = 150
    assert "ETA 0:00" in bar.status(now=103.0)
    bar.stop()
    assert "Stopping" in file.getvalue()
    assert "150/150" in file.getvalue()


def test_eta_clock() -> None:
    """Hours appear only when needed; no rate yet means no ETA."""
    progress = BatchProgress()
    bar = ProgressBar(progress, total=lambda: 100_000)
    bar.status(now=0.0)
    progress.done = 10
    assert "ETA 2:46:39" in bar.status(now=1.0)
    assert "ETA -:--" in ProgressBar(BatchProgress(), total=lambda: 5).status(now=0.0)


def test_lines_go_above_the_bar_when_it_shares_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whole lines are printed above a live bar (soft-wrapped); without a bar, on stdout."""
    from rich.console import Console

    screen = io.StringIO()
    bar = ProgressBar(
        BatchProgress(),
        total=lambda: None,
        console=Console(file=screen, force_terminal=True, width=40),
    )
    above = bar.above()
    above.write('{"deployment_id": "dep-1", ')  # not a whole line yet
    assert capsys.readouterr().out == ""
    above.write('"status": "stopped"}\n{"deployment_id": "dep-2"}\n')
    above.flush()
    assert capsys.readouterr().out.splitlines() == [
        '{"deployment_id": "dep-1", "status": "stopped"}',
        '{"deployment_id": "dep-2"}',
    ]
    bar.start()
    JsonLinesOutput(bar.above()).write(outcome_record(FAILED))
    bar.stop()
    text = screen.getvalue()
    assert '"deployment_id": "dep-2"' in text
    assert "[redacted]" in text  # not read as markup
    assert capsys.readouterr().out == ""


def test_no_bar_unless_stderr_is_a_terminal() -> None:
    """Under pytest stderr is not a terminal: no bar; ``quiet`` never has one."""
    progress = BatchProgress()
    assert progress_bar_for(progress, total=lambda: None, output=NoOutput()) is None
    assert progress_bar_for(progress, total=lambda: None, output=NoOutput(), quiet=True) is None


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal there is a bar, and JSON Lines on the same terminal go above it."""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    output = JsonLinesOutput()
    bar = progress_bar_for(BatchProgress(), total=lambda: None, output=output)
    assert isinstance(bar, ProgressBar)
    assert output.stream is not None


def test_the_bar_shows_throttling() -> None:
    """Once the server throttles: the 429s, the time paused and the pace; before, nothing."""
    progress = BatchProgress()
    bar = ProgressBar(progress, total=lambda: 100)
    assert "429s" not in bar.status(now=0.0)
    progress.throttled = 3
    assert bar.status(now=1.0).endswith("retries 0  429s: 3")
    progress.throttled, progress.paused, progress.paced_rate = 37, 4.04, 41.6
    assert bar.status(now=2.0).endswith("retries 0  429s: 37 · paused 4.0s · paced at 42/s")
    progress.throttled, progress.paced_rate = 0, None
    assert bar.status(now=3.0).endswith("retries 0  429s: 0 · paused 4.0s")


def test_the_bar_says_how_long_the_wait_for_a_quota_reset_lasts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the batch waits for a used-up quota, the bar says so and counts down."""
    progress = BatchProgress()
    bar = ProgressBar(progress, total=lambda: 100)
    monkeypatch.setattr("time.time", lambda: 1_000.0)
    assert "quota" not in bar.status(now=0.0)
    progress.waiting_until = 1_000.0 + 41 * 60 + 12
    assert "waiting for quota reset, 41:12 left" in bar.status(now=1.0)
    monkeypatch.setattr("time.time", lambda: 1_000.0 + 41 * 60 + 13)
    assert "quota" not in bar.status(now=2.0)
