"""The engine: per host, gather facts once, then check and apply each step in order.

A dry run and a real run go through the same code up to the point where a
step's actions would be sent; both then carry the facts forward the same way
(each change's predicted effect), except that a real run re-reads the host
after a step that installs packages. So the plan of a dry run is the list of
changes the real run makes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from provisioner.facts import FactSpec, FactError, gather
from provisioner.inventory import Host
from provisioner.vars import MailVars
from provisioner.desired import VERIFIED_MARKER
from provisioner.model import Change, Facts, Shell, apply_effects, backup_path
from provisioner.platforms import Platform, UnsupportedPlatform, detect
from provisioner.steps import POST_VERIFY_STEPS, STEPS
from provisioner.steps.base import Context, Step, StepError, merge_specs
from provisioner.transport import HostConnection, RemoteCommandError, TransportError

EXIT_OK, EXIT_FAILED, EXIT_PENDING = 0, 1, 2


@dataclass(frozen=True)
class ChangeRecord:
    step: str
    summary: str
    diff: str | None


@dataclass
class HostReport:
    name: str
    status: str = "ok"  # ok | changed | pending | failed | unreachable
    changes: list[ChangeRecord] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    round_trips: int = 0
    platform: str | None = None
    verify: object | None = None  # provisioner.verify.VerifyReport


@dataclass
class RunReport:
    dry_run: bool
    hosts: dict[str, HostReport]

    @property
    def exit_code(self) -> int:
        if any(h.status in ("failed", "unreachable") for h in self.hosts.values()):
            return EXIT_FAILED
        if self.dry_run and any(h.status == "pending" for h in self.hosts.values()):
            return EXIT_PENDING
        return EXIT_OK


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    verify: bool = True
    forks: int = 5


class StepFailed(Exception):
    pass


def fact_spec(host: Host, steps: list[Step]) -> FactSpec:
    return merge_specs([step.facts(host.vars) for step in steps])


Verifier = Callable[[Host, HostConnection, Facts, Platform], object]


class HostRun:
    """One host's run. Its state lives here; every decision lives in the steps."""

    def __init__(self, host: Host, options: RunOptions, verifier: Verifier | None, log: Callable[[str, str], None]):
        self.host = host
        self.options = options
        self.verifier = verifier
        self.log = log
        self.report = HostReport(name=host.name)
        self.written: list[tuple[str, bool]] = []  # (path, existed before) for rollback

    def run(self) -> HostReport:
        started = time.monotonic()
        conn = HostConnection(self.host)
        try:
            conn.open()
        except TransportError as exc:
            self.report.status = "unreachable"
            self.report.error = str(exc)
            self.report.duration_s = time.monotonic() - started
            return self.report
        try:
            self._run(conn)
        except TransportError as exc:
            self.report.status = "unreachable"
            self.report.error = str(exc)
        except (StepFailed, StepError, RemoteCommandError, UnsupportedPlatform, FactError) as exc:
            self.report.status = "failed"
            self.report.error = str(exc)
        except Exception as exc:  # a bug must not take the other hosts down
            self.report.status = "failed"
            self.report.error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self.report.round_trips = conn.round_trips
            conn.close()
            self.report.duration_s = round(time.monotonic() - started, 3)
        return self.report

    # ------------------------------------------------------------------

    def _gather(self, conn: HostConnection, spec: FactSpec) -> Facts:
        return gather(lambda script: conn.run_script(script, what="fact gathering").stdout, spec)

    def _run(self, conn: HostConnection) -> None:
        host, dry_run = self.host, self.options.dry_run
        spec = fact_spec(host, [*STEPS, *POST_VERIFY_STEPS])
        facts = self._gather(conn, spec)
        self.initial_facts = facts
        platform = detect(facts.os)
        self.platform = platform
        self.report.platform = platform.name
        verifying = self.options.verify and host.vars.verify and self.verifier is not None
        step_options = {"verify": verifying}

        def apply(step: Step, changes: list[Change], before: Facts) -> Facts:
            self._apply(conn, step, changes, before)
            if step.refresh_after_apply:
                return step.reconcile(before, self._gather(conn, spec), changes, platform)
            return apply_effects(before, changes)

        facts, notified = walk_steps(
            STEPS, host.name, host.vars, platform, facts, step_options, frozenset(), dry_run,
            None if dry_run else apply, self._record,
        )

        if not dry_run and verifying:
            self.log(host.name, "verifying with a real SMTP client")
            outcome = self.verifier(host, conn, facts, platform)
            self.report.verify = outcome
            if not getattr(outcome, "ok", False):
                failed = [c for c in outcome.checks if not c.ok]
                first = failed[0] if failed else None
                detail = f": port {first.port} {first.name}: {first.detail}" if first else ""
                if self.initial_facts.file(VERIFIED_MARKER).exists:
                    # A live server: put the configuration that passed before back in service.
                    restored = self._restore(conn, next(s for s in STEPS if s.name == "services"))
                    raise StepFailed(f"verify failed ({len(failed)} check(s)){detail}; {restored or 'nothing to restore'}")
                raise StepFailed(f"verify failed ({len(failed)} check(s)); the port-25 lockdown stays in place{detail}")

        walk_steps(
            POST_VERIFY_STEPS, host.name, host.vars, platform, facts, step_options, notified, dry_run,
            None if dry_run else apply, self._record,
        )

        if self.report.changes:
            self.report.status = "pending" if dry_run else "changed"

    def _record(self, changes: list[Change]) -> None:
        for change in changes:
            self.report.changes.append(ChangeRecord(change.step, change.summary, change.diff))

    def _apply(self, conn: HostConnection, step: Step, changes: list[Change], facts: Facts) -> None:
        script = "set -e\n" + "\n".join(change.script() for change in changes if change.actions)
        for change in changes:
            for path in change.writes:
                self.written.append((path, facts.file(path).exists))
        self.log(self.host.name, f"applying {step.name}")
        try:
            conn.run_script(script, what=f"step {step.name}")
        except RemoteCommandError as exc:
            restored = self._restore(conn, step)
            raise StepFailed(f"step {step.name}: {exc}" + (f"; {restored}" if restored else "")) from exc

    def _restore(self, conn: HostConnection, step: Step) -> str:
        """Roll back the files this run rewrote, then the step's recovery (restart what ran before)."""
        restored = self._rollback(conn)
        message = f"restored {restored}" if restored else ""
        recovery = step.recovery(self.initial_facts, self.platform)
        if recovery and restored:
            try:
                conn.run_script("\n".join(action.render() for action in recovery), what="recovery")
                message += "; ran " + ", ".join(a.describe() for a in recovery)
            except (RemoteCommandError, TransportError) as again:
                message += f"; recovery failed too: {again}"
        return message

    def _rollback(self, conn: HostConnection) -> str:
        """Put back every file this run rewrote, so a failed run leaves the old config."""
        if not self.written:
            return ""
        lines = []
        for path, existed in reversed(self.written):
            if existed:
                lines.append(Shell("if [ -e {1} ]; then mv -f {1} {0}; fi", (path, backup_path(path))).render())
            else:
                lines.append(Shell("rm -f {0}", (path,)).render())
        try:
            conn.run_script("\n".join(lines), what="rollback")
        except (RemoteCommandError, TransportError):
            return "nothing (rollback failed)"
        paths = sorted({path for path, _ in self.written})
        self.written.clear()
        return ", ".join(paths)


Applier = Callable[[Step, list[Change], Facts], Facts]


def walk_steps(
    steps: list[Step],
    host_name: str,
    vars: MailVars,
    platform: Platform,
    facts: Facts,
    options: dict,
    notified: frozenset[str],
    dry_run: bool,
    apply: Applier | None,
    record: Callable[[list[Change]], None],
) -> tuple[Facts, frozenset[str]]:
    """Check each step against the facts and carry the facts forward.

    The one path shared by a dry run (``apply`` None: predicted effects) and a
    real run (``apply`` sends the changes and returns the facts after them).
    """
    for step in steps:
        changes = step.check(Context(host_name, vars, platform, facts, dry_run, notified, options))
        for change in changes:
            notified |= change.notify
        if changes:
            facts = apply(step, changes, facts) if apply else apply_effects(facts, changes)
        record(changes)  # after apply: a real run reports only what it made
    return facts, notified


def plan(host_name: str, vars: MailVars, facts: Facts, verify: bool = True) -> list[Change]:
    """The changes a dry run lists for a host in this state (pure: no host needed)."""
    platform = detect(facts.os)
    changes: list[Change] = []
    options = {"verify": verify}
    facts, notified = walk_steps(STEPS, host_name, vars, platform, facts, options, frozenset(), True, None, changes.extend)
    walk_steps(POST_VERIFY_STEPS, host_name, vars, platform, facts, options, notified, True, None, changes.extend)
    return changes


def run(
    hosts: list[Host],
    options: RunOptions,
    verifier: Verifier | None = None,
    log: Callable[[str, str], None] = lambda host, message: None,
) -> RunReport:
    """Provision (or plan) every host in parallel; one host's failure never stops the others."""
    with ThreadPoolExecutor(max_workers=max(1, min(options.forks, len(hosts) or 1))) as pool:
        reports = list(pool.map(lambda h: HostRun(h, options, verifier, log).run(), hosts))
    return RunReport(dry_run=options.dry_run, hosts={r.name: r for r in reports})
