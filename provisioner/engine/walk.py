"""One pass of the steps over a host's facts: the path a dry run and a real run share.

Each step checks the facts and returns its changes. A dry run then predicts
the facts after them (each change's ``effect``); a real run sends them and
carries on from the facts they leave (re-read after a step that installs
packages). Either way the next step plans from the state the host is, or
will be, in: so the plan of a dry run is the list of changes the real run
makes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from provisioner.probes import FactSpec
from provisioner.inventory import Host
from provisioner.model import Change, Facts, apply_effects
from provisioner.platforms import Platform, detect
from provisioner.steps import POST_VERIFY_STEPS, STEPS
from provisioner.steps.base import Context, Step, StepOptions, merge_specs
from provisioner.vars import MailVars

# Sends a step's changes and returns the facts after them.
Applier = Callable[[Step, list[Change], Facts], Facts]
# Told after each step: the step, its changes, the seconds its check (and apply) took, and the outcome.
Observer = Callable[[Step, list[Change], float, str], None]


@dataclass(frozen=True)
class Trail:
    """What the steps of a run so far leave for the next ones."""

    notified: frozenset[str] = frozenset()  # handler tags
    installed: frozenset[str] = frozenset()  # packages this run installs

    def after(self, changes: list[Change]) -> "Trail":
        return Trail(
            notified=self.notified.union(*(change.notify for change in changes)),
            installed=self.installed.union(*(change.installs for change in changes)),
        )


@dataclass(frozen=True)
class Walk:
    """A pass over steps for one host: ``apply`` None predicts (a dry run), else it sends the changes."""

    host: str
    vars: MailVars
    platform: Platform
    options: StepOptions
    dry_run: bool = True
    apply: Applier | None = None
    record: Callable[[list[Change]], None] = lambda changes: None
    observe: Observer = lambda step, changes, seconds, outcome: None
    enter: Callable[[Step], None] = lambda step: None  # told before each step's check

    def through(self, steps: list[Step], facts: Facts, trail: Trail = Trail()) -> tuple[Facts, Trail]:
        """Check each step against the facts, carry the facts forward; the facts and trail after the last."""
        for step in steps:
            self.enter(step)
            started = time.monotonic()
            changes: list[Change] = []
            try:
                ctx = Context(self.host, self.vars, self.platform, facts, self.dry_run, trail.notified,
                              self.options, trail.installed)
                changes = step.check(ctx)
                trail = trail.after(changes)
                if changes:
                    facts = self.apply(step, changes, facts) if self.apply else apply_effects(facts, changes)
            except BaseException as exc:
                self.observe(step, changes, time.monotonic() - started, getattr(exc, "outcome", "failed"))
                raise
            self.record(changes)  # after apply: a real run reports only what it made
            outcome = ("pending" if self.dry_run else "changed") if changes else "ok"
            self.observe(step, changes, time.monotonic() - started, outcome)
        return facts, trail


def fact_spec(host: Host, steps: list[Step]) -> FactSpec:
    """Everything ``steps`` look at on this host, for one fact script."""
    return merge_specs([step.needs(host.vars) for step in steps])


def planned_changes(host_name: str, vars: MailVars, facts: Facts, verify: bool = True) -> list[Change]:
    """The changes a dry run lists for a host in this state (pure: no host needed)."""
    changes: list[Change] = []
    walk = Walk(host_name, vars, detect(facts.os), StepOptions(verify=verify), record=changes.extend)
    facts, trail = walk.through(STEPS, facts)
    walk.through(POST_VERIFY_STEPS, facts, trail)
    return changes
