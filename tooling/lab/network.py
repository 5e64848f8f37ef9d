"""Network namespace + veth pair for one lab host (root-namespace side effects)."""

from __future__ import annotations

import ipaddress
import json
import logging
from pathlib import Path

from .errors import LabError
from .naming import GUEST_IFACE, LAB_NETWORK, HostPlan, index_of_netns, index_of_veth
from .system import run

log = logging.getLogger("tooling.lab")

NETNS_DIR = Path("/run/netns")



def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def lab_netns() -> dict[int, str]:
    """index -> name of every lab netns present (by naming convention)."""
    if not NETNS_DIR.is_dir():
        return {}
    found = {}
    for p in NETNS_DIR.iterdir():
        i = index_of_netns(p.name)
        if i is not None:
            found[i] = p.name
    return found


def lab_veths() -> dict[int, str]:
    found = {}
    for p in Path("/sys/class/net").iterdir():
        i = index_of_veth(p.name)
        if i is not None:
            found[i] = p.name
    return found


def ensure_blackhole() -> None:
    """Route the whole lab range nowhere while the lab is up.

    The per-host /29 routes are more specific and win; an address of the range
    whose host is not (or no longer) up then fails at once instead of leaving
    this machine through the default route.
    """
    run(["ip", "route", "replace", "blackhole", str(LAB_NETWORK)])


def remove_blackhole() -> None:
    run(["ip", "route", "del", "blackhole", str(LAB_NETWORK)], check=False)


def check_free(plan: HostPlan) -> None:
    """Refuse to use a subnet that some other interface of this machine already routes."""
    cp = run(["ip", "-j", "-4", "route", "show", "table", "all"], check=False)
    try:
        routes = json.loads(cp.stdout or "[]")
    except ValueError:
        return
    for r in routes:
        dst, dev = r.get("dst", ""), r.get("dev", "")
        if not dst or dst == "default" or dev == plan.veth or r.get("type") == "blackhole":
            continue
        try:
            net = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if net.overlaps(plan.subnet):
            raise LabError(
                f"{plan.name}: subnet {plan.subnet} is already routed via {dev or '?'} ({dst}); refusing to reuse it"
            )


def _disable_ipv6(path: str, netns: str | None = None) -> None:
    argv = ["tee", path] if netns is None else ["ip", "netns", "exec", netns, "tee", path]
    run(argv, input="1\n", check=False)


def create(plan: HostPlan) -> None:
    """netns ``prov-labN`` with host0 = .2/29; veth ``vprov-labN`` = .1/29 + .3/29; no default route."""
    ns, veth, cidr = plan.netns, plan.veth, plan.prefixlen
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", GUEST_IFACE, "netns", ns])
        # Only the IPv4 addresses below: no link-local IPv6 path around a v4 firewall.
        _disable_ipv6(f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6")
        _disable_ipv6(f"/proc/sys/net/ipv6/conf/{GUEST_IFACE}/disable_ipv6", ns)
        run(["ip", "addr", "add", f"{plan.control_address}/{cidr}", "dev", veth])
        run(["ip", "addr", "add", f"{plan.outsider_address}/{cidr}", "dev", veth])
        run(["ip", "link", "set", veth, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{plan.address}/{cidr}", "dev", GUEST_IFACE])
        run(["ip", "-n", ns, "link", "set", GUEST_IFACE, "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    except BaseException:
        destroy(plan)
        raise
    log.debug(
        "%s: netns %s, %s %s/%s (+%s) <-> host0 %s",
        plan.name,
        ns,
        veth,
        plan.control_address,
        cidr,
        plan.outsider_address,
        plan.address,
    )


def destroy(plan: HostPlan) -> None:
    """Remove the veth pair and the netns; quiet when they are already gone."""
    if link_exists(plan.veth):
        run(["ip", "link", "del", plan.veth], check=False)
    if netns_exists(plan.netns):
        cp = run(["ip", "netns", "del", plan.netns], check=False)
        if cp.returncode != 0 and netns_exists(plan.netns):
            raise LabError(f"cannot delete netns {plan.netns}: {cp.stderr.strip()}")


def healthy(plan: HostPlan) -> bool:
    if not (netns_exists(plan.netns) and link_exists(plan.veth)):
        return False
    cp = run(["ip", "-j", "-4", "addr", "show", "dev", plan.veth], check=False)
    try:
        infos = json.loads(cp.stdout or "[]")
    except ValueError:
        return False
    have = {a.get("local") for i in infos for a in i.get("addr_info", [])}
    return {plan.control_address, plan.outsider_address} <= have
