"""Real faults on lab hosts: a reboot, and a link that drops.

``reboot(name)`` shuts the container down the way a reboot does (SIGTERM to
systemd-nspawn: the container's systemd stops every unit) and boots it again
from the same root directory. A lab host's network namespace outlives its
container, with every nft and iptables rule in it; a real reboot loses them
all. So the namespace and the veth pair are destroyed and made again before
the boot: whatever a rule is to be after a reboot, the host must load it
itself. It returns once sshd answers and systemd has finished booting.

``link_down(name)`` takes the control end of the host's veth down: packets
stop in both directions with no FIN and no RST, as when a cable is pulled
or a router dies; ``link_up`` brings it back.
"""

from __future__ import annotations

import logging
import time

from . import config, hosts, network, state
from .errors import LabError
from .image import ensure_image
from .naming import index_of_name, plan_host
from .system import children, cmdline, nspawn_root, require_root, run, start_time

log = logging.getLogger("tooling.lab")

WAIT_BOOTED = "timeout 60 systemctl is-system-running --wait 2>/dev/null || true"


def _plan(name: str):
    index = index_of_name(name)
    if index is None:
        raise LabError(f"{name!r} is not a lab host name (lab1, lab2, ...)")
    return plan_host(index)


def reboot(name: str, boot_timeout: float = config.BOOT_TIMEOUT) -> float:
    """Reboot a lab host as a real machine reboots (runtime firewall state lost); seconds it took."""
    require_root()
    plan = _plan(name)
    started = time.monotonic()
    with state.locked():
        st = state.load()
        entry = st["hosts"].get(name)
        if not entry:
            raise LabError(f"{name} is not up (no entry in {config.STATE_FILE})")
        image = ensure_image(entry.get("suite", config.SUITE))
        pid = entry.get("pid")
        if isinstance(pid, int) and hosts.alive(pid) and nspawn_root(cmdline(pid)) == str(hosts.root_dir(name)):
            hosts.stop([pid])
        network.destroy(plan)
        network.create(plan)
        pid = hosts.start(plan, image)
        hosts.wait_for_sshd(plan, pid, time.monotonic() + boot_timeout, boot_timeout)
        entry.update(pid=pid, started_at=time.time())
        inits = children(pid)
        if len(inits) == 1:
            entry.update(init_pid=inits[0], init_start=start_time(inits[0]))
        st["hosts"][name] = entry
        state.save(st)
    hosts.ssh(plan, WAIT_BOOTED, key=config.KEY_PATH, known_hosts=config.KNOWN_HOSTS_PATH, timeout=90, check=False)
    took = time.monotonic() - started
    log.info("%s: rebooted (network namespace made again) in %.1f s", name, took)
    return took


def link_down(name: str) -> None:
    plan = _plan(name)
    run(["ip", "link", "set", plan.veth, "down"])
    log.info("%s: link %s down", name, plan.veth)


def link_up(name: str) -> None:
    plan = _plan(name)
    run(["ip", "link", "set", plan.veth, "up"])
    log.info("%s: link %s up", name, plan.veth)
