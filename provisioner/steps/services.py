"""Services and handlers: enabled at boot, running, restarted only when their config changed.

Runs last. Earlier steps only notify ("postfix:restart", "postfix:reload",
"saslauthd:restart"); here each service gets at most one restart or reload,
and Postfix's only after `postfix check` passes. A failed check fails the
step, and the engine rolls the run back. Each service's state before the
run is recorded by the platform's commands (``Platform.enable``,
``restart``, ``reload``, ``disable_now``), so that a rollback brings it
back there, with the restored configuration.

Whether a daemon runs is read from the process table, not from systemd
alone: on Debian 12 `postfix.service` is a wrapper that stays "active" while
`postfix@-` has failed, and saslauthd's SysV script reports "active" with no
daemon running when START=yes is missing.

sendmail kept (``remove_sendmail: false``): its service is stopped and
disabled first. Both daemons want port 25; on EL7+ postfix.service's
``Conflicts=sendmail.service`` leaves the boot to pick one of the two, and on
EL6 both init scripts start it at every boot, the second failing.
"""

from __future__ import annotations

from provisioner.desired import SERVICES
from provisioner.probes import FactSpec, Probe, parse_lines
from provisioner.vars import MailVars
from provisioner.model import Change, Facts, ServiceState
from provisioner.platforms import ALL
from provisioner.platforms.base import DAEMONS
from provisioner.steps.base import Context, Step

PROCESS_PROBE = "services_processes"


def running(facts: Facts, service: str) -> bool:
    processes = facts.extra.get(PROCESS_PROBE)
    if processes is None:  # no process probe (e.g. an old recorded case): trust the service manager
        return facts.services.get(service, ServiceState(service, exists=False)).active
    return DAEMONS[service] in processes


def _mark(service: str, enabled: bool | None = None, active: bool | None = None):
    def effect(facts: Facts) -> Facts:
        current = facts.services.get(service, ServiceState(service))
        updated = ServiceState(
            name=service,
            enabled=current.enabled if enabled is None else enabled,
            active=current.active if active is None else active,
            exists=True,
        )
        extra = dict(facts.extra)
        if active and PROCESS_PROBE in extra:
            extra[PROCESS_PROBE] = frozenset(extra[PROCESS_PROBE]) | {DAEMONS[service]}
        return facts.replace(services={**facts.services, service: updated}, extra=extra)

    return effect


class Services(Step):
    name = "services"

    def needs(self, vars: MailVars) -> FactSpec:
        return FactSpec(
            services=("postfix", "postfix@-", "saslauthd",
                      *dict.fromkeys(p.sendmail_service for p in ALL if p.sendmail_service)),
            extra=(
                Probe(
                    PROCESS_PROBE,
                    "for _p in master saslauthd; do "
                    "if command -v pgrep >/dev/null 2>&1; then pgrep -x \"$_p\" >/dev/null && echo \"$_p\"; "
                    "else ps -e -o comm= | grep -qx \"$_p\" && echo \"$_p\"; fi; done; true",
                    parse_lines,
                ),
            ),
        )

    def check(self, ctx: Context) -> list[Change]:
        platform, facts = ctx.platform, ctx.facts
        changes: list[Change] = []
        sendmail = self._sendmail(ctx)
        if sendmail:
            changes.append(sendmail)
        # Services of packages this run installs are enabled whatever the
        # distribution's install-time default (which a dry run cannot see).
        fresh = {service for package, (service, _, _) in platform.package_services.items() if package in ctx.installed}
        for service in SERVICES:
            state = facts.services.get(service, ServiceState(service, exists=False))
            if state.masked:
                # A masked unit can be neither enabled nor started (and update-rc.d's enable leaves the mask).
                changes.append(
                    Change(
                        step=self.name,
                        summary=f"unmask and enable {service} at boot",
                        actions=(*platform.unmask(service), platform.enable(service)),
                        effect=_mark(service, enabled=True),
                    )
                )
            elif not state.enabled or service in fresh:
                changes.append(
                    Change(
                        step=self.name,
                        summary=f"enable {service} at boot",
                        actions=(platform.enable(service),),
                        effect=_mark(service, enabled=True),
                    )
                )
        for service in SERVICES:
            is_running = running(facts, service)
            restart = f"{service}:restart" in ctx.notified
            reload = f"{service}:reload" in ctx.notified
            if is_running and not restart and not reload:
                continue
            actions: list = []
            if service == "postfix":
                actions.append(platform.postfix_check())
            if not is_running:
                summary = f"start {service}"
                actions.append(platform.restart(service))
            elif restart:
                summary = f"restart {service} (its configuration changed)"
                actions.append(platform.restart(service))
            else:
                summary = f"reload {service} (its configuration changed)"
                actions.append(platform.reload(service))
            actions.append(platform.is_active_check(service, DAEMONS[service]))
            changes.append(
                Change(step=self.name, summary=summary, actions=tuple(actions), effect=_mark(service, active=True))
            )
        return changes

    def _sendmail(self, ctx: Context) -> Change | None:
        service = ctx.platform.sendmail_service
        kept = any(name in ctx.facts.packages for name in ctx.platform.sendmail_packages)
        state = ctx.facts.services.get(service or "", ServiceState("", exists=False))
        if service is None or not kept or not state.exists or not (state.enabled or state.active):
            return None
        return Change(
            step=self.name,
            summary=f"stop and disable {service} (remove_sendmail: false keeps its package; "
                    "postfix is the MTA and needs port 25)",
            actions=ctx.platform.disable_now(service),
            effect=_mark(service, enabled=False, active=False),
        )
