"""Pure allocation of names and addresses for lab host N (no side effects).

Host N (1-based) gets the /29 ``10.200.N.0``:

* ``10.200.N.1`` control end, on veth ``vprov-labN`` in the root namespace
* ``10.200.N.2`` the host, on ``host0`` inside netns ``prov-labN``
* ``10.200.N.3`` second ("outsider") address on the control end
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .config import MAX_HOSTS
from .errors import LabError

#: Every lab address lies in here, and nowhere else.
LAB_NETWORK = ipaddress.IPv4Network("10.200.0.0/16")
SUBNET_PREFIX = 29

HOST_PREFIX = "lab"
NETNS_PREFIX = "prov-lab"
VETH_PREFIX = "vprov-lab"
MACHINE_PREFIX = "prov-lab"
GUEST_IFACE = "host0"

_NAME_RE = re.compile(rf"^{HOST_PREFIX}([1-9][0-9]*)$")
_NETNS_RE = re.compile(rf"^{NETNS_PREFIX}([1-9][0-9]*)$")
_VETH_RE = re.compile(rf"^{VETH_PREFIX}([1-9][0-9]*)$")


@dataclass(frozen=True)
class HostPlan:
    index: int
    name: str
    netns: str
    veth: str
    machine: str
    subnet: ipaddress.IPv4Network
    control_address: str
    address: str
    outsider_address: str

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen


def plan_host(index: int) -> HostPlan:
    if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= MAX_HOSTS:
        raise LabError(f"lab host index must be an integer from 1 to {MAX_HOSTS}, got {index!r}")
    subnet = ipaddress.IPv4Network(f"{LAB_NETWORK.network_address + index * 256}/{SUBNET_PREFIX}")
    if not subnet.subnet_of(LAB_NETWORK):  # pragma: no cover - guarded by MAX_HOSTS
        raise LabError(f"subnet {subnet} falls outside {LAB_NETWORK}")
    base = subnet.network_address
    return HostPlan(
        index=index,
        name=f"{HOST_PREFIX}{index}",
        netns=f"{NETNS_PREFIX}{index}",
        veth=f"{VETH_PREFIX}{index}",
        machine=f"{MACHINE_PREFIX}{index}",
        subnet=subnet,
        control_address=str(base + 1),
        address=str(base + 2),
        outsider_address=str(base + 3),
    )


def plan_hosts(count: int) -> list[HostPlan]:
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_HOSTS:
        raise LabError(f"number of lab hosts must be an integer from 1 to {MAX_HOSTS}, got {count!r}")
    return [plan_host(i) for i in range(1, count + 1)]


def _index(regex: re.Pattern[str], text: str) -> int | None:
    m = regex.match(text)
    if not m:
        return None
    n = int(m.group(1))
    return n if 1 <= n <= MAX_HOSTS else None


def index_of_name(name: str) -> int | None:
    """``lab3`` -> 3; None for anything that is not a lab host name."""
    return _index(_NAME_RE, name)


def index_of_netns(name: str) -> int | None:
    return _index(_NETNS_RE, name)


def index_of_veth(name: str) -> int | None:
    return _index(_VETH_RE, name.split("@", 1)[0])
