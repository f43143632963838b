"""The progress bar on stderr, drawn with rich (imported only when a bar is drawn).

It shows done/total (or done alone while the total is unknown), the rate over
the last few seconds, the time left, and how many ids were stopped, failed and
retried; once the server throttles, also the 429s, the time all sending was
paused for ``Retry-After`` and the rate the client paces itself to (what
explains a run that crawls). It is redrawn a few times a second by a task of
the run, never from a thread.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ._output import JsonLinesOutput, Output, throttling_text

if TYPE_CHECKING:
    from rich.console import Console

    from hiveon_async import BatchProgress

__all__ = ["ProgressBar", "progress_bar_for"]

#: Seconds between two redraws.
REDRAW_SECONDS = 0.1
#: The rate (and so the time left) is measured over this many seconds.
RATE_WINDOW = 5.0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def progress_bar_for(
    progress: BatchProgress,
    *,
    total: Callable[[], int | None],
    output: Output,
    quiet: bool = False,
    extra: Callable[[], str] | None = None,
) -> ProgressBar | None:
    """Return a bar for stderr when it is a terminal (and not ``quiet``), else None.

    When stdout is the same terminal, JSON Lines ``output`` is printed above the
    bar rather than through it.

    Args:
        progress: The batch's live counters.
        total: Returns the number of ids to send, or None while unknown.
        output: Where the run's records go.
        quiet: No bar at all.
        extra: Returns more text for the end of the line.

    Returns:
        The bar, or None.
    """
    if quiet or not sys.stderr.isatty():
        return None
    bar = ProgressBar(progress, total=total, extra=extra)
    if isinstance(output, JsonLinesOutput) and sys.stdout.isatty():
        output.stream = bar.above()
    return bar


class ProgressBar:
    """A live progress bar for one batch.

    Args:
        progress: The batch's live counters.
        total: Returns the number of ids to send, or None while unknown.
        extra: Returns more text for the end of the line.
        console: The rich console to draw on; None for stderr.
    """

    def __init__(
        self,
        progress: BatchProgress,
        *,
        total: Callable[[], int | None],
        extra: Callable[[], str] | None = None,
        console: Console | None = None,
    ) -> None:
        self._progress = progress
        self._total = total
        self._extra = extra
        self._console = console
        self._samples: deque[tuple[float, int]] = deque()
        self._live: Any = None
        self._task: Any = None

    def start(self) -> None:
        """Show the bar."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn
        from rich.table import Column

        console = self._console or Console(file=sys.stderr)
        self._live = Progress(
            TextColumn("Stopping"),
            BarColumn(bar_width=20),
            # Wrapped on a narrow terminal rather than cut: every count stays in view.
            TextColumn("{task.fields[status]}", table_column=Column(no_wrap=False)),
            console=console,
            auto_refresh=False,  # redrawn by our own task: no thread of rich's
            # Never redirect: rich would send what is printed to stdout to its own
            # console (stderr). Use above() when stdout is the same terminal.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._live.add_task("stop", total=None, status="")
        self._live.start()

    def status(self, now: float | None = None) -> str:
        """Return the text after the bar: counts, rate, time left."""
        now = time.monotonic() if now is None else now
        progress = self._progress
        done = progress.done
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        then, done_then = samples[0]
        rate = (done - done_then) / (now - then) if now > then else 0.0
        total = self._total()
        parts = [f"{done:,}/{total:,}" if total is not None else f"{done:,}", f"{rate:,.0f}/s"]
        if total is not None:
            left = max(total - done, 0)
            parts.append(f"ETA {_clock(left / rate)}" if rate > 0 else "ETA -:--")
        parts += [
            f"stopped {progress.stopped:,}",
            f"failed {progress.failed:,}",
            f"retries {progress.retries:,}",
        ]
        waiting_until = progress.waiting_until
        if waiting_until is not None and waiting_until > time.time():
            parts.append(f"waiting for quota reset, {_clock(waiting_until - time.time())} left")
        if progress.throttled or progress.paused or progress.paced_rate is not None:
            parts.append(throttling_text(progress.throttled, progress.paused, progress.paced_rate))
        if self._extra is not None:
            parts.append(self._extra())
        return "  ".join(parts)

    def above(self) -> _AboveTheBar:
        """Return a stream whose lines are printed above the bar (for a shared terminal)."""
        return _AboveTheBar(self)

    def print_above(self, line: str) -> None:
        """Print one line above the bar (or on stdout when no bar is shown)."""
        if self._live is None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        else:
            # Soft wrap: a long JSON line must stay one line when copied from the terminal.
            self._live.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def redraw(self) -> None:
        """Bring the bar up to date."""
        if self._live is None:
            return
        total = self._total()
        self._live.update(
            self._task, completed=self._progress.done, total=total, status=self.status()
        )
        self._live.refresh()

    def stop(self) -> None:
        """Draw the final state and leave it on screen."""
        if self._live is None:
            return
        self.redraw()
        self._live.stop()
        self._live = None

    async def run(self) -> None:
        """Redraw until cancelled; run it as a task next to the batch."""
        self.start()
        try:
            while True:
                self.redraw()
                await anyio.sleep(REDRAW_SECONDS)
        finally:
            self.stop()


class _AboveTheBar:
    """A text stream that prints whole lines above a progress bar."""

    def __init__(self, bar: ProgressBar) -> None:
        self._bar = bar
        self._pending = ""

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._bar.print_above(line)
        return len(text)

    def flush(self) -> None:
        """Lines are printed as they complete; nothing waits here."""
