"""Pure parts of the lab: names, subnets and addresses of lab hosts."""

import ipaddress
from pathlib import Path

import pytest

from tooling.lab import LabError, LabHost
from tooling.lab.config import MAX_HOSTS
from tooling.lab.naming import (
    LAB_NETWORK,
    index_of_name,
    index_of_netns,
    index_of_veth,
    plan_host,
    plan_hosts,
)
from tooling.lab.system import nspawn_root


def test_first_host_layout():
    p = plan_host(1)
    assert (p.name, p.netns, p.veth, p.machine) == ("lab1", "prov-lab1", "vprov-lab1", "prov-lab1")
    assert str(p.subnet) == "10.200.1.0/29"
    assert (p.control_address, p.address, p.outsider_address) == ("10.200.1.1", "10.200.1.2", "10.200.1.3")
    assert p.prefixlen == 29


def test_host_n_gets_its_own_slash29():
    p = plan_host(12)
    assert str(p.subnet) == "10.200.12.0/29"
    assert p.address == "10.200.12.2"
    assert p.veth == "vprov-lab12"


def test_plan_hosts_counts_from_one():
    assert [p.name for p in plan_hosts(3)] == ["lab1", "lab2", "lab3"]


def test_all_subnets_disjoint_and_inside_the_lab_network():
    assert str(LAB_NETWORK) == "10.200.0.0/16"
    subnets = [p.subnet for p in plan_hosts(MAX_HOSTS)]
    for i, a in enumerate(subnets):
        assert a.subnet_of(LAB_NETWORK)
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b)


def test_addresses_inside_their_subnet_and_distinct():
    for p in plan_hosts(MAX_HOSTS):
        addrs = {ipaddress.IPv4Address(a) for a in (p.control_address, p.address, p.outsider_address)}
        assert len(addrs) == 3
        assert all(a in p.subnet and a not in (p.subnet.network_address, p.subnet.broadcast_address) for a in addrs)


def test_interface_names_fit_ifnamsiz():
    for p in plan_hosts(MAX_HOSTS):
        assert len(p.veth) <= 15


@pytest.mark.parametrize("bad", [0, -1, MAX_HOSTS + 1, "1", 1.0, True, None])
def test_bad_counts_and_indices_rejected(bad):
    with pytest.raises(LabError):
        plan_hosts(bad)
    with pytest.raises(LabError):
        plan_host(bad)


def test_index_parsing():
    assert index_of_name("lab3") == 3
    assert index_of_netns("prov-lab10") == 10
    assert index_of_veth("vprov-lab2@if5") == 2
    for bad in ("lab0", "lab", "labx", "lab01", "plab1", "lab1x", f"lab{MAX_HOSTS + 1}"):
        assert index_of_name(bad) is None
    assert index_of_netns("plab1") is None  # the manual probe's netns is not ours
    assert index_of_veth("vplab1@if2") is None


def test_nspawn_root_from_cmdline():
    argv = ["/usr/bin/systemd-nspawn", "--boot", "-D", "/var/lib/provisioner-lab/hosts/lab1/root", "-M", "x"]
    assert nspawn_root(argv) == "/var/lib/provisioner-lab/hosts/lab1/root"
    assert nspawn_root(["systemd-nspawn", "--directory=/r"]) == "/r"
    assert nspawn_root(["/usr/lib/systemd/systemd"]) is None
    assert nspawn_root([]) is None


def test_labhost_constructor_as_documented():
    h = LabHost(
        name="lab1",
        address="10.200.1.2",
        control_address="10.200.1.1",
        outsider_address="10.200.1.3",
        netns="prov-lab1",
        root=Path("/var/lib/provisioner-lab/hosts/lab1/root"),
    )
    assert h.name == "lab1" and h.pid is None
