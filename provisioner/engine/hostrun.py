"""One host's run over SSH: the lock, the facts, the steps, verify, then commit, or roll back.

A real run takes the host's lock through a holder on its own channel
(provisioner/hostlock.py), opened while the fact script runs. Each step's
changes go out as one script that journals every change before making it
(provisioner/journal.py). When anything fails after the first change -- a
step, verify, an interrupt, a timeout -- the holder rolls this run back on
the host: the host is left as it was, apart from packages and the port-25
lockdown (docs/reliability.md). When the link drops, or the run is
aborted, the holder does the same on its own once it stops hearing from
this node. A run that reaches its end is committed.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from provisioner.credentials import CredentialsError
from provisioner.desired import VERIFIED_MARKER
from provisioner.engine.control import Aborted, Interrupted, RunControl
from provisioner.engine.results import ChangeRecord, Event, HostReport, RollbackRecord, StepRecord, VerifyDecision
from provisioner.engine.verified import VerifyRecord, decide, parse_record, record_script, state_digest
from provisioner.engine.walk import Walk, fact_spec, walk_plan
from provisioner.hostlock import HostLocked, LockError, RollbackOutcome, RunHolder
from provisioner.inventory import Host
from provisioner.holder import IN_PROGRESS_PROBE
from provisioner.journal import new_run_id, step_script
from provisioner.model import Change, Facts, apply_effects
from provisioner.platforms import UnsupportedPlatform, detect
from provisioner.probes import FactError, FactSpec, Probe, gather
from provisioner.steps import POST_VERIFY_STEPS, STEPS
from provisioner.steps.base import Step, StepError, StepOptions, merge_specs
from provisioner.steps.files import refuse_outside_links
from provisioner.transport import HostConnection, RemoteCommandError, TransportError

IN_PROGRESS = "run_in_progress"
# The least a rollback or a commit is given, whatever command_timeout says (restarting services takes time).
HOLDER_TIMEOUT = 60.0


class StepFailed(Exception):
    pass


def run_fact_spec(host: Host) -> FactSpec:
    """Every fact a provision run gathers, in its one fact script (the bench sends the same script)."""
    return merge_specs([fact_spec(host, [*STEPS, *POST_VERIFY_STEPS]),
                        FactSpec(extra=(Probe(IN_PROGRESS, IN_PROGRESS_PROBE, parse_holder),))])


def parse_holder(text: str) -> dict[str, str] | None:
    """The holder file of a run in progress (``key=value`` lines), or None."""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return fields or None


def control_node() -> str:
    """How a holder names this control node to the runs it blocks."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


def _rollback_record(outcome: RollbackOutcome) -> RollbackRecord:
    return RollbackRecord(outcome.status, outcome.done, outcome.failed, outcome.notes)


class HostRun:
    """One host's run. Its state lives here; every decision lives in the steps."""

    def __init__(self, host: Host, dry_run: bool, verifying: bool, verifier, events: Callable[[Event], None],
                 control: RunControl, verify_mode: str = "auto",
                 verify_scope: Callable[[Host], Mapping[str, Any]] | None = None):
        self.host = host
        self.dry_run = dry_run
        self.verifying = verifying  # verify is enabled for this host (it may still be skipped: verify_mode auto)
        self.verify_mode = verify_mode
        self.verify_scope = verify_scope or (lambda host: {})
        self.verifier = verifier
        self.events = events
        self.control = control
        self.report = HostReport(name=host.name)
        self.run_id = None if dry_run else new_run_id()
        self.holder: RunHolder | None = None
        self.applied = False  # a step script went out: the journal may hold changes
        self.finished = False

    # ------------------------------------------------------------ the run

    # ------------------------------------------------------------ events

    def say(self, message: str) -> None:
        self.events(Event(self.host.name, "message", message))

    def doing(self, what: str) -> None:
        self.events(Event(self.host.name, "activity", what))

    @contextmanager
    def phase(self, name: str):
        """Time a part of the run that is not a step (connect, facts, verify...), and say it is under way."""
        self.doing(name)
        started = time.monotonic()
        try:
            yield
        finally:
            self.report.phases[name] = round(self.report.phases.get(name, 0.0) + time.monotonic() - started, 3)

    def _finish(self) -> None:
        self.finished = True
        self.events(Event(self.host.name, "finished", status=self.report.status, batch=self.report.batch))

    def not_run(self, why: str) -> None:
        """A later batch of a rolling update that does not start."""
        self.report.status, self.report.error = "not-run", f"not started: {why}"
        self._finish()

    def abandon(self, reason: str | None) -> None:
        """Stop waiting on a host still busy after an abort (its holder rolls the run back on its own)."""
        self.report.status = "interrupted"
        self.report.error = (f"aborted by a second {reason} while the host was still busy"
                             + ("; the host rolls this run back on its own" if self.applied else ""))
        if self.applied:
            self.report.rollback = RollbackRecord("by-host")
        self._finish()

    # ------------------------------------------------------------ the run

    def run(self) -> HostReport:
        started = time.monotonic()
        try:
            self.control.check("this host")
        except Interrupted as exc:
            self.report.status, self.report.error = "interrupted", f"not started: {exc}"
            self._finish()
            return self.report
        self.events(Event(self.host.name, "started", batch=self.report.batch))
        conn = HostConnection(self.host)
        self.conn = conn
        try:
            with self.phase("connect"):
                conn.open()
        except TransportError as exc:
            self.report.status, self.report.error = "unreachable", str(exc)
            self._done(conn, started)
            return self.report
        try:
            self._run(conn)
        except (HostLocked, LockError) as exc:
            self._fail("failed", str(exc))  # nothing was done
        except Aborted as exc:
            conn.close()  # the holder sees the connection close, stops the step and rolls back
            self._fail("interrupted", str(exc), by_host=True)
        except TransportError as exc:
            self._fail("unreachable", str(exc), by_host=True)
        except Interrupted as exc:
            self._fail("interrupted", str(exc), conn=conn)
        except (StepFailed, StepError, RemoteCommandError, UnsupportedPlatform, FactError, CredentialsError) as exc:
            self._fail("failed", str(exc), conn=conn)
        except Exception as exc:  # a bug must not take the other hosts down
            self._fail("failed", f"internal error: {type(exc).__name__}: {exc}", conn=conn)
        self._done(conn, started)
        return self.report

    def _done(self, conn: HostConnection, started: float) -> None:
        with self.phase("close"):
            if self.holder is not None:
                self.holder.close()
            self.report.round_trips = conn.round_trips
            conn.close()
        self.report.duration_s = round(time.monotonic() - started, 3)
        self._finish()

    def _fail(self, status: str, error: str, conn: HostConnection | None = None, by_host: bool = False) -> None:
        self.report.status, self.report.error = status, error
        if not (self.applied and self.holder is not None):
            return
        if by_host:
            self.report.rollback = RollbackRecord("by-host")
        else:
            self.report.rollback = self._roll_back(conn)
        self.report.error = f"{error}; {self.report.rollback.summary()}"
        notes = self.report.rollback.notes
        if notes:
            self.report.error += " (" + "; ".join(notes) + ")"

    def _roll_back(self, conn: HostConnection | None) -> RollbackRecord:
        assert self.holder is not None
        self.say("rolling back this run")
        try:
            if conn is not None:
                conn.round_trips += 1
            with self.phase("rollback"):
                return _rollback_record(self.holder.rollback(max(self.host.command_timeout, HOLDER_TIMEOUT)))
        except (TransportError, Aborted):
            return RollbackRecord("by-host")

    def _give_up(self) -> Exception | None:
        return self.control.give_up() or (self.holder.give_up() if self.holder is not None else None)

    def _gather(self, conn: HostConnection, spec: FactSpec) -> Facts:
        with self.phase("facts"):
            return gather(lambda script: conn.run_script(script, what="fact gathering", give_up=self._give_up).stdout,
                          spec)

    def _run(self, conn: HostConnection) -> None:
        host, dry_run = self.host, self.dry_run
        spec = run_fact_spec(host)
        if not dry_run:
            # Concurrent with the fact script: the lock costs no round trip of its own.
            started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.holder = RunHolder(conn, self.run_id, control_node(), started, abort=self.control.give_up)
            self.holder.start()
        facts = self._gather(conn, spec)
        if self.holder is not None:
            with self.phase("lock"):
                self.holder.wait_acquired(max(self.host.command_timeout, HOLDER_TIMEOUT))
            self.report.run_id = self.run_id
            if self.holder.recovered:
                self.report.recovered = [_rollback_record(o) for o in self.holder.recovered]
                facts = self._gather(conn, spec)  # the host changed under the facts
        else:
            other = facts.extra.get(IN_PROGRESS)
            if other:
                self.report.notes.append(
                    f"run {other.get('run_id', '?')} from {other.get('control', '?')} has been applying changes "
                    f"since {other.get('started', '?')}: this plan may see some of them half-made")
        initially_verified = facts.file(VERIFIED_MARKER).exists
        platform = detect(facts.os)
        self.report.platform = platform.name
        refuse_outside_links(host.name, facts)  # before the first step: a refused host is left as it was

        def apply(step: Step, changes: list[Change], before: Facts) -> Facts:
            self._apply(conn, step, changes)
            if step.refresh_after_apply:
                return step.reconcile(before, self._gather(conn, spec), changes, platform)
            return apply_effects(before, changes)

        options = StepOptions(verify=self.verifying)
        if not dry_run:
            # The planning pass: a refusal (a StepError) stops the run before its first change.
            walk_plan(host.name, host.vars, platform, options, facts)
        walk = Walk(host.name, host.vars, platform, options, dry_run,
                    apply=None if dry_run else apply, record=self._record, observe=self._observe,
                    enter=lambda step: self.doing(step.name))
        facts, trail = walk.through(STEPS, facts)

        passed_at: str | None = None
        if not dry_run:
            decision = decide(self.verify_mode, self.verifying, self.applied,
                              parse_record(facts.file(VERIFIED_MARKER).content), self._digest(facts, platform.name))
            self.report.verify_decision = VerifyDecision(decision.run, decision.reason, decision.verified_at)
            if decision.run:
                passed_at = self._verify(conn, facts, platform, initially_verified)
            elif decision.verified_at:
                self.say(decision.reason)

        walk.through(POST_VERIFY_STEPS, facts, trail)

        if self.applied and self.holder is not None:
            try:
                conn.round_trips += 1
                with self.phase("commit"):
                    self.holder.commit(max(self.host.command_timeout, HOLDER_TIMEOUT))
            except TransportError as exc:
                raise TransportError(
                    f"{exc}; every step was applied, but the commit may not have reached the host: it either kept "
                    "this run or rolls it back on its own (a dry run shows which)") from exc
        if passed_at is not None:
            self._record_verify(conn, spec, facts, platform.name, passed_at)
        if self.report.changes:
            self.report.status = "pending" if dry_run else "changed"

    def _digest(self, facts: Facts, platform: str) -> str:
        return state_digest(facts, platform, self.verify_scope(self.host), ignore_probes=(IN_PROGRESS,))

    def _verify(self, conn: HostConnection, facts: Facts, platform, initially_verified: bool) -> str:
        """Verify with the real SMTP client; the time it passed, or StepFailed."""
        self.control.check("verify")
        self.say("verifying with a real SMTP client")
        started_verify = time.monotonic()
        with self.phase("verify"):
            outcome = self.verifier(self.host, conn, facts, platform)
        self.report.verify_duration_s = round(time.monotonic() - started_verify, 3)
        self.report.verify = outcome
        if not getattr(outcome, "ok", False):
            failed = [c for c in outcome.checks if not c.ok]
            first = failed[0] if failed else None
            detail = f": port {first.port} {first.name}: {first.detail}" if first else ""
            lockdown = "" if initially_verified else "; the port-25 lockdown stays in place"
            raise StepFailed(f"verify failed ({len(failed)} check(s)){lockdown}{detail}")
        return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _record_verify(self, conn: HostConnection, spec: FactSpec, facts: Facts, platform: str, at: str) -> None:
        """Record the passed verify with the digest of the state it passed in (--verify auto reads it).

        A run that changed the host reads its facts again for it: what the
        steps predicted is not byte for byte what the host holds. The record
        is written after the commit and is not journaled: it only vouches for
        the state with its digest, so a state rolled back later no longer
        matches it. Failing to write it fails nothing: the next run verifies.
        """
        try:
            if self.applied:
                facts = self._gather(conn, spec)
            record = VerifyRecord(state=self._digest(facts, platform), at=at, run_id=self.run_id)
            with self.phase("record"):
                conn.run_script(record_script(record), what="recording the passed verify", give_up=self._give_up)
        except (RemoteCommandError, FactError) as exc:
            self.report.notes.append(f"verify passed but could not be recorded ({exc}): the next run verifies again")

    def _record(self, changes: list[Change]) -> None:
        for change in changes:
            self.report.changes.append(ChangeRecord(change.step, change.summary, change.diff))

    def _observe(self, step: Step, changes: list[Change], seconds: float, outcome: str) -> None:
        self.report.steps.append(StepRecord(step.name, round(seconds, 3), len(changes), outcome))

    def _apply(self, conn: HostConnection, step: Step, changes: list[Change]) -> None:
        self.control.check(f"step {step.name}")
        body = "\n".join(change.script() for change in changes if change.actions)
        if not body:
            return  # changes that only say something (e.g. "keep the lockdown: verify was skipped")
        assert self.run_id is not None
        self.say(f"applying {step.name}")
        self.applied = True
        try:
            conn.run_script(step_script(self.run_id, body), what=f"step {step.name}", give_up=self._give_up)
        except RemoteCommandError as exc:
            raise StepFailed(f"step {step.name}: {exc}") from exc
