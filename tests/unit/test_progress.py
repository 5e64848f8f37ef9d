"""Progress while hosts run: the plain lines (no terminal, --no-live) and the live view's rendering."""

from __future__ import annotations

import io

from rich.console import Console

from provisioner.engine.results import Event
from provisioner.progress import LiveProgress, PlainProgress, ProgressState, event_line, progress_for


def console(terminal: bool = False, width: int = 100, height: int = 30) -> Console:
    return Console(file=io.StringIO(), force_terminal=terminal, width=width, height=height, color_system=None,
                   highlight=False, emoji=False)


STORY = [
    Event("mx1", "queued", batch=1), Event("mx2", "queued", batch=2),
    Event("mx1", "started", batch=1), Event("mx1", "activity", "facts"),
    Event("mx1", "activity", "packages"), Event("mx1", "message", "applying packages"),
    Event("mx1", "finished", status="changed", batch=1),
    Event("mx2", "finished", status="not-run", batch=2),
]


def test_plain_progress_prints_one_line_per_event_worth_it():
    out = console()
    progress = PlainProgress(out)
    for event in STORY:
        progress(event)
    lines = out.file.getvalue().splitlines()
    assert lines[0] == "mx1: started (batch 1 of 2)"
    assert lines[1] == "mx1: applying packages"
    assert lines[2].startswith("mx1: changed in ") or lines[2] == "mx1: changed"
    assert lines[3] == "mx2: not-run"
    assert len(lines) == 4  # activities only move the live view's rows


def test_plain_lines_carry_no_terminal_codes():
    out = console()
    progress = PlainProgress(out)
    progress(Event("mx1", "message", "[bold]not markup[/bold]"))
    assert out.file.getvalue() == "mx1: [bold]not markup[/bold]\n"


def test_the_live_view_has_a_row_per_host_with_its_step_status_and_elapsed_time():
    state = ProgressState()
    state.apply(Event("mx1", "queued"), now=0.0)
    state.apply(Event("mx2", "queued"), now=0.0)
    state.apply(Event("mx3", "queued"), now=0.0)
    state.apply(Event("mx1", "started"), now=1.0)
    state.apply(Event("mx1", "activity", "services"), now=2.0)
    state.apply(Event("mx2", "started"), now=1.0)
    state.apply(Event("mx2", "finished", status="failed"), now=3.5)
    out = console(terminal=True)
    out.print(state.render(now=5.0))
    text = out.file.getvalue()
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("mx")}
    assert rows["mx1"][1:] == ["running", "services", "4.0s"]
    assert rows["mx2"][1:] == ["failed", "2.5s"]
    assert rows["mx3"][1:] == ["waiting"]
    summary = text.strip().splitlines()[-1]
    assert summary == "1/3 hosts done, 1 failed, 1 running, 1 waiting, 4.0s"


def test_the_live_view_puts_running_and_failed_hosts_first_and_caps_its_rows():
    state = ProgressState()
    for i in range(50):
        state.apply(Event(f"mx{i:02}", "queued"), now=0.0)
    state.apply(Event("mx40", "started"), now=0.0)
    state.apply(Event("mx41", "started"), now=0.0)
    state.apply(Event("mx41", "finished", status="unreachable"), now=1.0)
    out = console(terminal=True)
    out.print(state.table(now=2.0, max_rows=5))
    lines = [line for line in out.file.getvalue().splitlines() if line.strip()]
    assert [line.split()[0] for line in lines[1:3]] == ["mx40", "mx41"]
    assert lines[-1].strip() == "... 45 more"


def test_the_live_view_names_the_batch_in_a_rolling_update():
    state = ProgressState()
    state.apply(Event("mx1", "queued", batch=1), now=0.0)
    state.apply(Event("mx2", "queued", batch=2), now=0.0)
    state.apply(Event("mx1", "finished", status="ok"), now=1.0)
    state.apply(Event("mx2", "started", batch=2), now=1.0)
    assert "batch 2 of 2" in state.summary(now=2.0)


def test_live_only_on_a_terminal_and_not_with_no_live():
    assert type(progress_for(console(terminal=False))) is PlainProgress
    assert type(progress_for(console(terminal=True), live=False)) is PlainProgress
    assert type(progress_for(console(terminal=True))) is LiveProgress


def test_the_live_view_leaves_nothing_behind_so_the_recap_comes_last():
    out = console(terminal=True)
    with progress_for(out) as progress:
        for event in STORY:
            progress(event)
    out.print("RECAP")
    assert out.file.getvalue().rstrip().endswith("RECAP")
    assert "hosts done" not in out.file.getvalue().split("RECAP")[-1]


def test_event_lines():
    state = ProgressState()
    assert event_line(Event("mx1", "activity", "facts"), state, 0.0) is None
    assert event_line(Event("mx1", "message", "verifying"), state, 0.0) == "mx1: verifying"


def test_the_clis_own_messages_print_but_make_no_row():
    out = console()
    progress = PlainProgress(out)
    progress(Event("mx1", "queued"))
    progress(Event("provisioner", "message", "SIGINT: finishing the running steps"))
    assert out.file.getvalue() == "provisioner: SIGINT: finishing the running steps\n"
    assert list(progress.state.rows) == ["mx1"]
