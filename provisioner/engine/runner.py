"""One host's run over SSH, and every host in parallel.

Per host: connect, gather the facts in one script, walk the steps (a real
run applies each step's changes as one script), verify with a real SMTP
client, then walk the post-verify steps. A failed step puts back the files
the run wrote; a failure stays with its host.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from provisioner.engine.walk import Walk, fact_spec
from provisioner.probes import FactSpec, FactError, gather
from provisioner.inventory import Host
from provisioner.desired import VERIFIED_MARKER
from provisioner.model import Action, Change, Facts, Shell, apply_effects, backup_path
from provisioner.platforms import Platform, UnsupportedPlatform, detect
from provisioner.steps import POST_VERIFY_STEPS, STEPS
from provisioner.steps.base import Step, StepError, StepOptions
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
        self.after_restore: list[Action] = []  # actions that make the rollback take effect (daemon-reload...)

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

        def apply(step: Step, changes: list[Change], before: Facts) -> Facts:
            self._apply(conn, step, changes, before)
            if step.refresh_after_apply:
                return step.reconcile(before, self._gather(conn, spec), changes, platform)
            return apply_effects(before, changes)

        walk = Walk(host.name, host.vars, platform, StepOptions(verify=verifying), dry_run,
                    apply=None if dry_run else apply, record=self._record)
        facts, trail = walk.through(STEPS, facts)

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

        walk.through(POST_VERIFY_STEPS, facts, trail)

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
            self.after_restore += [a for a in change.after_restore if a not in self.after_restore]
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
        lines += [action.render() for action in self.after_restore]
        try:
            conn.run_script("\n".join(lines), what="rollback")
        except (RemoteCommandError, TransportError):
            return "nothing (rollback failed)"
        paths = sorted({path for path, _ in self.written})
        self.written.clear()
        return ", ".join(paths)


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
