"""Progress while hosts run: a live table on a terminal, plain lines elsewhere (the engine only emits events).

``LiveProgress`` (a terminal, without ``--no-live``) keeps one row per host --
its status, the step or phase it is in, the time it has taken -- and a summary
line, redrawn a few times a second; lines worth keeping (a host applying a
step, verifying, rolling back, finished) print above it. ``PlainProgress``
(output to a file or a pipe, cron, CI, or ``--no-live``) prints those lines
only, one per event, each starting with the host's name. Either way the recap
is printed after the progress has stopped, as the last thing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provisioner.engine.results import Event

STATUS_STYLE = {
    "ok": "green",
    "changed": "yellow",
    "pending": "cyan",
    "failed": "bold red",
    "unreachable": "bold magenta",
    "interrupted": "bold yellow",
    "not-run": "dim",
    "waiting": "dim",
    "running": "bold blue",
}


@dataclass
class HostRow:
    name: str
    batch: int = 0
    status: str = "waiting"  # waiting | running | a finished host's status
    doing: str = ""
    started: float | None = None
    ended: float | None = None

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now) - self.started


@dataclass
class ProgressState:
    """The rows, as the events left them: pure, so that the live view's rendering is tested without a terminal."""

    rows: dict[str, HostRow] = field(default_factory=dict)
    batches: int = 0

    def apply(self, event: Event, now: float) -> None:
        if event.kind == "queued":
            row = self.rows.setdefault(event.host, HostRow(event.host))
            row.batch = event.batch
            self.batches = max(self.batches, event.batch)
            return
        row = self.rows.get(event.host)
        if row is None:
            return  # not a host of the run (the CLI's own messages, e.g. about a Ctrl-C)
        if event.kind == "started":
            row.status, row.started = "running", now
        elif event.kind == "activity":
            row.doing = event.text
        elif event.kind == "finished":
            row.status, row.doing, row.ended = event.status or "?", "", now
            if row.started is None:
                row.started = now

    def summary(self, now: float) -> str:
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        done = sum(n for status, n in counts.items() if status not in ("waiting", "running"))
        parts = [f"{done}/{len(self.rows)} hosts done"]
        parts += [f"{n} {status}" for status, n in sorted(counts.items()) if status != "waiting" or n]
        running = [r for r in self.rows.values() if r.status == "running"]
        if self.batches > 1 and running:
            parts.append(f"batch {max(r.batch for r in running)} of {self.batches}")
        started = [r.started for r in self.rows.values() if r.started is not None]
        if started:
            parts.append(f"{now - min(started):.1f}s")
        return ", ".join(parts)

    def table(self, now: float, max_rows: int = 40) -> Table:
        """Running hosts first, then failed ones, then the rest; at most ``max_rows`` rows."""
        order = {"running": 0, "failed": 1, "unreachable": 1, "interrupted": 1}
        rows = sorted(self.rows.values(), key=lambda r: (order.get(r.status, 2), r.name))
        table = Table(show_edge=False, pad_edge=False, box=None)
        table.add_column("host")
        table.add_column("status")
        table.add_column("step")
        table.add_column("elapsed", justify="right")
        for row in rows[:max_rows]:
            style = STATUS_STYLE.get(row.status, "")
            elapsed = row.elapsed(now)
            table.add_row(escape(row.name), f"[{style}]{escape(row.status)}[/{style}]" if style else escape(row.status),
                          escape(row.doing), "" if elapsed is None else f"{elapsed:.1f}s")
        if len(rows) > max_rows:
            table.add_row(f"[dim]... {len(rows) - max_rows} more[/dim]", "", "", "")
        return table

    def render(self, now: float, max_rows: int = 40) -> Group:
        return Group(self.table(now, max_rows), Text(self.summary(now), style="bold"))


def event_line(event: Event, state: ProgressState, now: float) -> str | None:
    """The plain line an event is worth, or None (activities only move the live view's rows)."""
    if event.kind == "message":
        return f"{event.host}: {event.text}"
    if event.kind == "started" and event.batch:
        return f"{event.host}: started (batch {event.batch} of {state.batches})"
    if event.kind == "finished":
        row = state.rows.get(event.host)
        elapsed = row.elapsed(now) if row else None
        took = f" in {elapsed:.1f}s" if elapsed else ""
        return f"{event.host}: {event.status}{took}"
    return None


class PlainProgress:
    """One line per event worth it; safe from every host's thread."""

    def __init__(self, console: Console):
        self.console = console
        self.state = ProgressState()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            now = time.monotonic()
            self.state.apply(event, now)
            line = event_line(event, self.state, now)
            if line is not None:
                self.console.print(f"[dim]{escape(line)}[/dim]", soft_wrap=True)

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        pass


class LiveProgress(PlainProgress):
    """The live table, redrawn 4 times a second; the same lines as PlainProgress print above it."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.live = Live(console=console, refresh_per_second=4, transient=True, get_renderable=self._renderable)

    def _renderable(self):
        with self._lock:
            return self.state.render(time.monotonic(), max_rows=max(3, self.console.size.height - 6))

    def __enter__(self) -> "LiveProgress":
        self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        self.live.stop()  # transient: the table goes, the recap that follows is the last thing printed


def progress_for(console: Console, live: bool = True) -> PlainProgress:
    """The live view on a terminal (unless ``live`` is off), plain lines otherwise."""
    if live and console.is_terminal and not console.is_dumb_terminal:
        return LiveProgress(console)
    return PlainProgress(console)
