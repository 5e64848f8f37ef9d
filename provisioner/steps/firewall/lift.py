"""After verify has passed: remove every lockdown found (and its boot-time copy), and write the verified marker.

The lift is journaled like any step: if it fails half-way, the run's
rollback locks the ports down again (the lockdown's own commands, recorded
before the first rule goes) and puts the boot-time lockdown back, so a
failed lift never leaves an unverified configuration open.
"""

from __future__ import annotations

from provisioner.desired import STATE_DIR, VERIFIED_MARKER
from provisioner.probes import FactSpec
from provisioner.model import Action, Change, Command, Facts, FileState, Undo, WriteFile, one_line
from provisioner.steps.base import Context, Step, merge_specs
from provisioner.steps.firewall import persist
from provisioner.steps.firewall.backends import BACKENDS
from provisioner.steps.firewall.lockdown import FirewallError, control_address
from provisioner.steps.firewall.state import FirewallState, firewall_facts, firewall_state, with_state
from provisioner.vars import MailVars

MARKER_CONTENT = "verified by provisioner\n"


def relock(ctx: Context, state: FirewallState) -> tuple[Action, ...]:
    """The commands that put every lockdown found back, as it is now (for the journal)."""
    actions: list[Action] = []
    for backend in BACKENDS:
        allowed, exists = backend.found(state)
        if not exists:
            continue
        try:
            ctrl = control_address(ctx)
        except FirewallError:
            if not allowed:
                continue
            ctrl = sorted(allowed)[0]
        empty = FirewallState(tools=state.tools, saved_by_service=state.saved_by_service)
        actions.extend(backend.lockdown(empty, ctrl, ctx.platform, ctx.facts))
    return tuple(actions)


class FirewallLift(Step):
    name = "firewall_lift"

    def needs(self, vars: MailVars) -> FactSpec:
        return merge_specs([firewall_facts(), persist.persistence_facts()])

    def check(self, ctx: Context) -> list[Change]:
        facts, platform = ctx.facts, ctx.platform
        state = firewall_state(facts)
        present = state.lockdown_present or persist.present(facts)
        verified = facts.file(VERIFIED_MARKER).exists
        if not ctx.options.verify or not ctx.vars.verify:
            if present:
                return [Change(step=self.name, summary="keep the port 25/465/587 lockdown: verify was skipped")]
            return []
        if not present and verified:
            return []
        # Every lockdown found, whichever mechanism made it.
        actions: list[Action] = []
        again = relock(ctx, state)
        if again:
            actions.append(Undo("lock the mail ports down again", one_line(again)))
        actions += [a for backend in BACKENDS for a in backend.unlock(state, platform, facts)]
        actions += persist.removal(facts, platform)
        if not verified:
            actions.append(Command(("install", "-d", "-m", "755", STATE_DIR)))
            actions.append(WriteFile(VERIFIED_MARKER, MARKER_CONTENT, mode="600"))
        summary = "lift the port 25/465/587 lockdown (verify passed)" if present else "record that verify passed"

        def effect(f: Facts) -> Facts:
            f = persist.removed(with_state(f, firewall_state(f).unlocked()))
            return f.with_file(FileState(VERIFIED_MARKER, exists=True, content=MARKER_CONTENT, mode="600",
                                         owner="root", group="root"))

        return [Change(step=self.name, summary=summary, actions=tuple(actions), effect=effect)]
