"""main.cf: manage the keys the inventory gives, editing the file in place.

Comments and unmanaged keys stay where they are. A managed key is replaced
where it stands, even when it is commented out; a key that must not be set
is removed. Values compare the way Postfix reads them (whitespace folded,
blanks around commas ignored), so cosmetic edits are not drift.
"""

from __future__ import annotations

from provisioner.desired import MAIN_CF, main_cf_settings
from provisioner.probes import FactSpec
from provisioner.keyedit import edit_main_cf
from provisioner.vars import MailVars
from provisioner.model import Change, FileState
from provisioner.steps.base import Context, Step, StepError
from provisioner.steps.files import attributes_change, write_change

RESTART_KEYS = {"inet_interfaces", "inet_protocols", "compatibility_level"}


def describe(settings: dict[str, str | None], set_keys: list[str], removed: list[str]) -> str:
    parts = []
    if set_keys:
        parts.append("set " + ", ".join(f"{k} = {settings[k]}" if settings[k] else f"{k} =" for k in set_keys))
    if removed:
        parts.append("unset " + ", ".join(removed))
    return "; ".join(parts)


def notify_for(keys: list[str]) -> frozenset[str]:
    return frozenset({"postfix:restart" if RESTART_KEYS & set(keys) else "postfix:reload"})


class MainCf(Step):
    name = "main_cf"

    def needs(self, vars: MailVars) -> FactSpec:
        return FactSpec(files=(MAIN_CF,))

    def check(self, ctx: Context) -> list[Change]:
        installed = ctx.facts.packages.get("postfix")
        floor = ctx.platform.below_floor("postfix", installed)
        if floor is not None:
            # The packages step planned the update; the repositories could not bring it.
            raise StepError(
                f"{ctx.host}: postfix {installed} lacks {floor.lacks} ({floor.release} or later has them): "
                f"{floor.harm}; main.cf is left as it is; update postfix to {floor.release} or later "
                "(the repositories this host uses do not offer it) and run again"
            )
        settings = main_cf_settings(ctx.vars, ctx.platform)
        state = ctx.facts.file(MAIN_CF)
        wanted = sum(1 for v in settings.values() if v is not None)
        if state.exists and state.content is None:
            # Shipped by a package the plan installs first: its text is
            # known only once installed, so the summary cannot list keys.
            return [
                Change(
                    step=self.name,
                    summary=f"set {wanted} managed keys in {MAIN_CF} (file as shipped by {state.from_package})",
                    actions=(),
                    notify=frozenset({"postfix:restart"}),
                    effect=lambda f: f.with_file(FileState(MAIN_CF, exists=True, from_package=state.from_package)),
                )
            ]
        old = state.content or ""
        new, set_keys, removed = edit_main_cf(old, settings)
        if new == old:
            # Postfix reads main.cf at each (re)load: its attributes need no handler.
            change = attributes_change(self.name, state, "644")
            return [change] if change else []
        if state.from_package:
            summary = f"set {wanted} managed keys in {MAIN_CF} (file as shipped by {state.from_package})"
        elif not state.exists:
            summary = f"create {MAIN_CF} with {wanted} managed keys"
        else:
            summary = f"update {MAIN_CF}: {describe(settings, set_keys, removed)}"
        notify = notify_for(set_keys + removed) if state.exists else frozenset({"postfix:restart"})
        return [write_change(self.name, summary, state, new, notify=notify, settled=True)]
