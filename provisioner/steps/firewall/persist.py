"""The lockdown across reboots: loaded at boot, before the network and Postfix, until verify passes.

A backend whose rules persist on their own needs nothing here: firewalld's
direct rules are added to the permanent configuration too, and iptables
rules are saved with ``service iptables save`` where that service loads
them at boot (``Backend.persists``). Elsewhere -- nftables, and iptables
with no saving service (Debian; EL hosts whose iptables service is off) --
the lockdown is written as a script of its own, ``LOCKDOWN_SCRIPT`` (the
very commands of the runtime lockdown), run at boot by a hook of our own:

- systemd: ``provisioner-lockdown.service``, ordered after local file
  systems and after nftables.service / netfilter-persistent.service /
  iptables.service (each of which may flush the ruleset as it loads),
  before network-pre.target and Postfix. It is ``PartOf`` and
  ``ReloadPropagatedFrom`` those units and wanted by them: when an admin
  restarts or reloads one (``flush ruleset`` in /etc/nftables.conf would
  wipe our table), ours is applied again right after. The admin's
  /etc/nftables.conf is never edited.
- SysV (EL6): ``/etc/init.d/provisioner-lockdown``, ``chkconfig`` start
  position 09: after iptables (08), whose restore flushes the tables, and
  before the network (10) and Postfix (80).

Both skip when the verified marker exists. ``FirewallLift`` removes hook
and script with the lockdown. A failed run never removes them (the
journal does not record them): the lockdown is the fail-closed state.
"""

from __future__ import annotations

import dataclasses

from provisioner.desired import STATE_DIR, VERIFIED_MARKER
from provisioner.model import Action, Change, Command, Facts, FileState, RemoveFile, ServiceState, Undo, WriteFile
from provisioner.model import one_line
from provisioner.platforms import Platform
from provisioner.probes import FactSpec
from provisioner.probes import PREAMBLE

LOCKDOWN_SCRIPT = f"{STATE_DIR}/lockdown.sh"
HOOK = "provisioner-lockdown"
UNIT_FILE = f"/etc/systemd/system/{HOOK}.service"
INIT_SCRIPT = f"/etc/init.d/{HOOK}"
# Units that load a ruleset at boot or on restart (and may flush ours as they do).
FIREWALL_UNITS = "nftables.service netfilter-persistent.service iptables.service ip6tables.service"
HEADER = (
    "# Written by provisioner: keeps inbound TCP 25, 465 and 587 closed to all but the control node\n"
    "# until verify passes, across reboots. Removed when the lockdown is lifted; do not edit.\n"
)

UNIT = f"""{HEADER}[Unit]
Description=provisioner lockdown of the mail ports until verified
DefaultDependencies=no
After=local-fs.target {FIREWALL_UNITS}
Before=network-pre.target postfix.service postfix@-.service shutdown.target
Wants=network-pre.target
Conflicts=shutdown.target
PartOf={FIREWALL_UNITS}
ReloadPropagatedFrom={FIREWALL_UNITS}
ConditionPathExists=!{VERIFIED_MARKER}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh {LOCKDOWN_SCRIPT}
ExecReload=/bin/sh {LOCKDOWN_SCRIPT}

[Install]
WantedBy=sysinit.target {FIREWALL_UNITS}
"""

INIT = f"""#!/bin/sh
{HEADER}#
# chkconfig: 2345 09 91
# description: provisioner lockdown of the mail ports until verified
### BEGIN INIT INFO
# Provides: {HOOK}
# Required-Start: $local_fs
# Should-Start: iptables ip6tables
# X-Start-Before: postfix
# Default-Start: 2 3 4 5
# Default-Stop: 0 1 6
# Short-Description: provisioner lockdown of the mail ports until verified
### END INIT INFO
case "$1" in
  start|restart|reload|force-reload)
    if [ -e {VERIFIED_MARKER} ]; then
      exit 0
    fi
    exec /bin/sh {LOCKDOWN_SCRIPT} ;;
  stop|status)
    exit 0 ;;
  *)
    echo "usage: $0 start" >&2
    exit 2 ;;
esac
"""


def lockdown_script(actions: tuple[Action, ...]) -> str:
    """The runtime lockdown's own commands as a script (plain commands under ``set -e``)."""
    body = "\n".join(action.render() for action in actions)
    return f"#!/bin/sh\n{HEADER}set -e\n{PREAMBLE}if [ -e {VERIFIED_MARKER} ]; then\n  exit 0\nfi\n{body}\n"


@dataclasses.dataclass(frozen=True)
class Hook:
    """How this platform runs the lockdown script at boot."""

    path: str
    content: str
    mode: str
    label: str
    enable: tuple[Action, ...]
    disable: tuple[Action, ...]


def hook(platform: Platform) -> Hook:
    if platform.services.kind == "sysv":
        return Hook(
            path=INIT_SCRIPT,
            content=INIT,
            mode="755",
            label=INIT_SCRIPT,
            enable=(Command(("chkconfig", "--add", HOOK)),),
            disable=(Command(("chkconfig", "--del", HOOK)),),
        )
    return Hook(
        path=UNIT_FILE,
        content=UNIT,
        mode="644",
        label=f"{HOOK}.service",
        enable=(
            Command(("systemctl", "daemon-reload")),
            Command(("systemctl", "enable", "--quiet", f"{HOOK}.service")),
            # Active, so that a restart or reload of the firewall units reaches it (PartOf).
            Command(("systemctl", "restart", f"{HOOK}.service")),
        ),
        disable=(
            Command(("systemctl", "disable", "--quiet", f"{HOOK}.service")),
            Command(("systemctl", "stop", f"{HOOK}.service")),
        ),
    )


def persistence_facts() -> FactSpec:
    return FactSpec(files=(LOCKDOWN_SCRIPT, UNIT_FILE, INIT_SCRIPT), services=(HOOK,))


def present(facts: Facts) -> bool:
    """Any part of the boot-time lockdown on the host."""
    service = facts.services.get(HOOK)
    return (any(facts.file(path).exists for path in (LOCKDOWN_SCRIPT, UNIT_FILE, INIT_SCRIPT))
            or bool(service and service.enabled))


def _enabled(facts: Facts) -> bool:
    service = facts.services.get(HOOK)
    return bool(service and service.enabled)


def keep_across_reboots(step: str, facts: Facts, platform: Platform, lockdown: tuple[Action, ...]) -> Change | None:
    """The change that makes the boot-time lockdown match ``lockdown`` (the runtime lockdown's actions)."""
    boot = hook(platform)
    script = lockdown_script(lockdown)
    files = ((LOCKDOWN_SCRIPT, script, "700"), (boot.path, boot.content, boot.mode))
    stale = [(path, content, mode) for path, content, mode in files
             if not (facts.file(path).content == content and facts.file(path).mode in (mode, None))]
    if not stale and _enabled(facts):
        return None
    actions: list[Action] = [WriteFile(path, content, mode=mode, journal=False) for path, content, mode in stale]
    actions += boot.enable

    def effect(f: Facts) -> Facts:
        for path, content, mode in files:
            f = f.with_file(FileState(path, exists=True, content=content, mode=mode, owner="root", group="root"))
        return f.replace(services={**f.services, HOOK: ServiceState(HOOK, enabled=True, active=True)})

    return Change(
        step=step,
        summary=f"keep the lockdown across reboots ({boot.label}, loaded before the network and Postfix)",
        actions=tuple(actions),
        effect=effect,
    )


def removal(facts: Facts, platform: Platform) -> tuple[Action, ...]:
    """Remove the boot-time lockdown (a rollback of the run puts it back)."""
    if not present(facts):
        return ()
    boot = hook(platform)
    actions: list[Action] = [Undo(f"enable {boot.label} again", one_line(boot.enable))]
    if _enabled(facts):
        actions += boot.disable
    actions += [RemoveFile(path) for path in (boot.path, LOCKDOWN_SCRIPT) if facts.file(path).exists]
    if platform.services.kind != "sysv":
        actions.append(Command(("systemctl", "daemon-reload")))
    return tuple(actions)


def removed(facts: Facts) -> Facts:
    for path in (LOCKDOWN_SCRIPT, UNIT_FILE, INIT_SCRIPT):
        facts = facts.with_file(FileState(path))
    services = {name: state for name, state in facts.services.items() if name != HOOK}
    return facts.replace(services={**services, HOOK: ServiceState(HOOK, enabled=False, active=False, exists=False)})
