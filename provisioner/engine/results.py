"""What a run reports: per host, the changes made, the steps' durations, the rollback; and the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK, EXIT_FAILED, EXIT_PENDING, EXIT_HALTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# not-run: a later batch of a rolling update that did not start, because earlier batches failed (--max-fail).
STATUSES = ("ok", "changed", "pending", "failed", "unreachable", "interrupted", "not-run")


@dataclass(frozen=True)
class Event:
    """What the engine tells the report while hosts run (the report decides how to show it).

    ``kind``: ``queued`` (the run knows the host), ``started``, ``activity``
    (``text`` names the step or phase it is in), ``message`` (a line worth
    printing), ``finished`` (``status`` is the host's).
    """

    host: str
    kind: str
    text: str = ""
    status: str | None = None
    batch: int = 0  # 1-based, in a rolling update; 0 otherwise


@dataclass(frozen=True)
class ChangeRecord:
    step: str
    summary: str
    diff: str | None


@dataclass(frozen=True)
class StepRecord:
    """One step on one host: how long its check (and apply) took and what came of it."""

    name: str
    duration_s: float
    changes: int
    outcome: str  # ok | changed | pending | failed | interrupted


@dataclass(frozen=True)
class VerifyDecision:
    """Whether a real run verified, and why (``--verify auto`` skips a host unchanged since it passed)."""

    ran: bool
    reason: str
    verified_at: str | None = None  # the last passed verify, when it was skipped for it


@dataclass
class RollbackRecord:
    """A rollback of this run on the host, by the control node or (``by_host``) by the host's holder."""

    status: str  # rolled-back | rollback-failed | by-host | unknown
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.status == "by-host":
            return "the host rolls this run back on its own once it has stopped hearing from this node"
        if self.status == "rolled-back":
            return "rolled back: " + ("; ".join(self.done) if self.done else "nothing was recorded")
        if self.status == "rollback-failed":
            return ("ROLLBACK FAILED to: " + "; ".join(self.failed)
                    + (f" (done: {'; '.join(self.done)})" if self.done else ""))
        return "rollback outcome unknown"


@dataclass
class HostReport:
    name: str
    status: str = "ok"  # one of STATUSES
    changes: list[ChangeRecord] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    round_trips: int = 0
    platform: str | None = None
    verify: object | None = None  # provisioner.verify.VerifyReport
    verify_duration_s: float | None = None
    verify_decision: VerifyDecision | None = None  # real runs
    run_id: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    rollback: RollbackRecord | None = None
    # Runs left open by a host that went down, rolled back before this run started.
    recovered: list[RollbackRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Seconds spent outside the steps: connect, facts, lock, verify, record, commit, rollback.
    phases: dict[str, float] = field(default_factory=dict)
    batch: int = 0  # its batch in a rolling update (1-based); 0 when every host ran at once


@dataclass
class RunReport:
    dry_run: bool
    hosts: dict[str, HostReport]
    interrupted: str | None = None  # the signal that interrupted the run
    halted: str | None = None  # why later batches of a rolling update did not start
    serial: str | None = None  # the batch size of a rolling update ("25%", "1")
    max_fail: int | None = None

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.halted:
            return EXIT_HALTED
        if any(h.status in ("failed", "unreachable", "interrupted") for h in self.hosts.values()):
            return EXIT_FAILED
        if self.dry_run and any(h.status == "pending" for h in self.hosts.values()):
            return EXIT_PENDING
        return EXIT_OK
