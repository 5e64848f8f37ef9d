"""After verify has passed: remove every lockdown found and write the verified marker."""

from __future__ import annotations

from provisioner.desired import STATE_DIR, VERIFIED_MARKER
from provisioner.probes import FactSpec
from provisioner.model import Action, Change, Command, Facts, FileState, WriteFile
from provisioner.steps.base import Context, Step
from provisioner.steps.firewall.backends import BACKENDS
from provisioner.steps.firewall.state import firewall_facts, firewall_state, with_state
from provisioner.vars import MailVars

MARKER_CONTENT = "verified by provisioner\n"


class FirewallLift(Step):
    name = "firewall_lift"

    def needs(self, vars: MailVars) -> FactSpec:
        return firewall_facts()

    def check(self, ctx: Context) -> list[Change]:
        facts, platform = ctx.facts, ctx.platform
        state = firewall_state(facts)
        present = state.lockdown_present
        verified = facts.file(VERIFIED_MARKER).exists
        if not ctx.options.verify or not ctx.vars.verify:
            if present:
                return [Change(step=self.name, summary="keep the port 25/465/587 lockdown: verify was skipped")]
            return []
        if not present and verified:
            return []
        # Every lockdown found, whichever mechanism made it.
        actions: list[Action] = [a for backend in BACKENDS for a in backend.unlock(state, platform, facts)]
        if not verified:
            actions.append(Command(("install", "-d", "-m", "755", STATE_DIR)))
            actions.append(WriteFile(VERIFIED_MARKER, MARKER_CONTENT, mode="644"))
        summary = "lift the port 25/465/587 lockdown (verify passed)" if present else "record that verify passed"

        def effect(f: Facts) -> Facts:
            f = with_state(f, firewall_state(f).unlocked())
            return f.with_file(FileState(VERIFIED_MARKER, exists=True, content=MARKER_CONTENT, mode="644",
                                         owner="root", group="root"))

        return [Change(step=self.name, summary=summary, actions=tuple(actions), effect=effect)]
