"""The report says what happened: changes made count on a failed host, rollbacks, interrupts, per-step times."""

from __future__ import annotations

import json

from rich.console import Console

from provisioner import report
from provisioner.engine.results import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ChangeRecord,
    HostReport,
    RollbackRecord,
    RunReport,
    StepRecord,
)


def failed_host() -> HostReport:
    return HostReport(
        name="mail1",
        status="failed",
        changes=[ChangeRecord("main_cf", f"change {n}", None) for n in range(22)],
        error="step aliases: postmap failed with exit status 1",
        run_id="20260301T120000Z-0a0b0c",
        platform="debian12",
        steps=[StepRecord("main_cf", 0.4, 22, "changed"), StepRecord("aliases", 0.2, 2, "failed")],
        rollback=RollbackRecord("rolled-back", done=["restore /etc/postfix/main.cf"]),
    )


def recap(run: RunReport) -> str:
    console = Console(record=True, width=200)
    report.print_recap(console, run)
    return console.export_text()


def test_the_recap_counts_what_a_failed_host_changed_and_says_it_was_rolled_back():
    text = recap(RunReport(dry_run=False, hosts={"mail1": failed_host()}))
    row = next(line for line in text.splitlines() if "mail1" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[:7] == ["mail1", "failed", "0", "22", "1", "0", "done"], cells


def test_an_interrupted_run_exits_130_and_says_so():
    host = failed_host()
    host.status = "interrupted"
    run = RunReport(dry_run=False, hosts={"mail1": host}, interrupted="SIGINT")
    assert run.exit_code == EXIT_INTERRUPTED
    assert "interrupted by SIGINT" in recap(run)
    data = report.to_json(run)
    assert data["interrupted"] == "SIGINT" and data["exit_code"] == 130
    assert data["hosts"]["mail1"]["status"] == "interrupted"


def test_the_json_carries_the_run_id_the_steps_and_the_rollback():
    entry = report.to_json(RunReport(dry_run=False, hosts={"mail1": failed_host()}))["hosts"]["mail1"]
    assert entry["run_id"] == "20260301T120000Z-0a0b0c"
    assert entry["steps"] == [
        {"step": "main_cf", "duration_s": 0.4, "changes": 22, "outcome": "changed"},
        {"step": "aliases", "duration_s": 0.2, "changes": 2, "outcome": "failed"},
    ]
    assert entry["rollback"] == {"status": "rolled-back", "undone": ["restore /etc/postfix/main.cf"], "failed": [],
                                 "notes": []}
    json.dumps(entry)


def test_exit_codes():
    ok = HostReport(name="a", status="changed")
    assert RunReport(False, {"a": ok}).exit_code == EXIT_OK
    assert RunReport(False, {"a": ok, "b": HostReport(name="b", status="unreachable")}).exit_code == EXIT_FAILED
    assert RunReport(False, {"a": HostReport(name="a", status="interrupted")}).exit_code == EXIT_FAILED
    assert RunReport(False, {"a": ok}, interrupted="SIGTERM").exit_code == EXIT_INTERRUPTED


def test_a_rollback_that_failed_and_one_left_to_the_host_read_as_such():
    failed = RollbackRecord("rollback-failed", done=["restore /a"], failed=["bring postfix back"])
    assert failed.summary() == "ROLLBACK FAILED to: bring postfix back (done: restore /a)"
    assert "on its own" in RollbackRecord("by-host").summary()


def profiled(name: str, steps: dict[str, float], phases: dict[str, float], **kw) -> HostReport:
    return HostReport(name=name, status=kw.pop("status", "ok"), duration_s=sum(steps.values()) + sum(phases.values()),
                      steps=[StepRecord(step, seconds, 0, "ok") for step, seconds in steps.items()], phases=phases, **kw)


def test_the_recap_lists_the_slowest_steps_across_hosts_and_per_host():
    from provisioner.engine.results import VerifyDecision

    run = RunReport(dry_run=False, hosts={
        "mx1": profiled("mx1", {"packages": 6.0, "aliases": 1.3}, {"verify": 9.4, "facts": 0.5},
                        verify_decision=VerifyDecision(True, "this run changed the host")),
        "mx2": profiled("mx2", {"packages": 5.5, "tls": 0.3}, {"connect": 0.07, "facts": 0.2}),
    })
    text = recap(run)
    lines = text[text.index("slowest steps"):].splitlines()
    rows = [line.split() for line in lines[3:8]]
    assert [(r[0], r[2], r[4]) for r in rows] == [("mx1", "verify", "9.40s"), ("mx1", "packages", "6.00s"),
                                                 ("mx2", "packages", "5.50s"), ("mx1", "aliases", "1.30s"),
                                                 ("mx1", "facts", "0.50s")]
    assert "slowest per host: mx1 verify 9.4s of 17.2s; mx2 packages 5.5s of 6.1s" in text
    data = report.to_json(run)
    assert data["slowest"][0] == {"host": "mx1", "step": "verify", "duration_s": 9.4}
    assert data["hosts"]["mx1"]["phases"] == {"verify": 9.4, "facts": 0.5}
    assert data["hosts"]["mx1"]["verify"] == {"ran": True, "reason": "this run changed the host", "verified_at": None}
    assert data["rolling"] is None and "batch" not in data["hosts"]["mx1"]


def test_a_stopped_rolling_update_in_the_recap_and_the_json():
    run = RunReport(dry_run=False, serial="1", max_fail=0, halted="1 host(s) failed in batch 1 of 2 or before", hosts={
        "mx1": profiled("mx1", {}, {"verify": 9.0}, status="failed", batch=1),
        "mx2": HostReport(name="mx2", status="not-run", error="not started: ...", batch=2),
    })
    text = recap(run)
    assert "not run" in text and "rolling update stopped: 1 host(s) failed in batch 1 of 2 or before" in text
    row = next(line for line in text.splitlines() if line.startswith("│ mx2"))
    assert "not-run" in row
    data = report.to_json(run)
    assert data["exit_code"] == 3
    assert data["rolling"] == {"serial": "1", "max_fail": 0, "halted": "1 host(s) failed in batch 1 of 2 or before"}
    assert data["hosts"]["mx2"]["status"] == "not-run" and data["hosts"]["mx2"]["batch"] == 2
