"""The lockdown across reboots: which hosts need a boot-time copy, what it is, and that the lift removes it."""

from __future__ import annotations

import subprocess

import pytest

from provisioner.desired import VERIFIED_MARKER
from provisioner.model import Facts, OsRelease, ServiceState, apply_effects
from provisioner.platforms import DEBIAN12, EL6, EL7, EL8
from provisioner.steps.firewall import FirewallLift, FirewallLockdown, persist
from provisioner.steps.firewall.state import PROBE, parse_firewall_state

from .conftest import context

CTRL = "10.77.1.1"
NFT = "tool nft\ntool iptables\ntool ip6tables\n"
IPT = "tool iptables\ntool ip6tables\n"
FIREWALLD = ("tool firewall-cmd\nfirewalld running\nzone-runtime public\nzone-runtime   ports: 25/tcp 587/tcp\n"
             "zone-permanent public\nzone-permanent   ports: 25/tcp 587/tcp\n")


def facts(raw: str, services=None) -> Facts:
    return Facts(os=OsRelease(id="x"), extra={PROBE: parse_firewall_state(raw)}, services=services or {},
                 ssh_client_address=CTRL)


def lockdown(f: Facts, platform=DEBIAN12):
    return FirewallLockdown().check(context(f, platform))


def boot_change(changes):
    return [c for c in changes if "across reboots" in c.summary]


def test_debian_nft_gets_a_unit_of_its_own_that_runs_the_same_commands():
    changes = lockdown(facts(NFT))
    (keep,) = boot_change(changes)
    assert keep.summary == ("keep the lockdown across reboots (provisioner-lockdown.service, loaded before the "
                            "network and Postfix)")
    script, unit = keep.actions[:2]
    assert (script.path, script.mode, script.journal) == (persist.LOCKDOWN_SCRIPT, "700", False)
    # The very commands of the runtime lockdown.
    runtime = next(c for c in changes if c.summary.startswith("lock down"))
    assert runtime.actions[0].render() in script.content and CTRL in script.content
    assert f"if [ -e {VERIFIED_MARKER} ]; then" in script.content
    for line in ("Before=network-pre.target postfix.service postfix@-.service shutdown.target",
                 "PartOf=nftables.service netfilter-persistent.service iptables.service ip6tables.service",
                 "ReloadPropagatedFrom=nftables.service", f"ConditionPathExists=!{VERIFIED_MARKER}",
                 f"ExecStart=/bin/sh {persist.LOCKDOWN_SCRIPT}", "WantedBy=sysinit.target nftables.service"):
        assert line in unit.content, line
    assert [a.describe() for a in keep.actions[2:]] == [
        "systemctl daemon-reload", "systemctl enable --quiet provisioner-lockdown.service",
        "systemctl restart provisioner-lockdown.service"]


def test_in_place_it_is_left_alone_and_a_new_control_address_rewrites_it():
    fresh = facts(NFT)
    done = apply_effects(fresh, lockdown(fresh))
    assert lockdown(done) == []
    moved = done.replace(ssh_client_address="10.77.1.9")
    changes = lockdown(moved)
    (keep,) = boot_change(changes)
    assert [a.describe() for a in keep.actions][0] == f"write {persist.LOCKDOWN_SCRIPT} (mode 700, root:root)"
    assert "10.77.1.9" in keep.actions[0].content
    disabled = done.replace(services={**done.services, persist.HOOK: ServiceState(persist.HOOK, enabled=False)})
    (keep,) = boot_change(lockdown(disabled))
    assert [a.describe() for a in keep.actions][-2] == "systemctl enable --quiet provisioner-lockdown.service"


def test_where_the_rules_persist_on_their_own_nothing_is_added():
    enabled = {"iptables": ServiceState("iptables", True, True), "ip6tables": ServiceState("ip6tables", True, True)}
    assert boot_change(lockdown(facts(IPT, enabled), EL6)) == []  # service iptables save
    assert boot_change(lockdown(facts(FIREWALLD), EL8)) == []  # permanent direct rules
    assert boot_change(lockdown(facts(FIREWALLD), EL7)) == []


def test_el6_without_its_iptables_service_gets_an_init_script():
    (keep,) = boot_change(lockdown(facts(IPT), EL6))
    assert keep.summary.startswith("keep the lockdown across reboots (/etc/init.d/provisioner-lockdown")
    script, init = keep.actions[:2]
    assert init.path == persist.INIT_SCRIPT and "# chkconfig: 2345 09 91" in init.content
    assert [a.describe() for a in keep.actions[2:]] == ["chkconfig --add provisioner-lockdown"]
    assert "iptables -I PROVISIONER_LOCKDOWN 1 -s 10.77.1.1" in script.content
    assert "service iptables save" not in script.content


def test_a_verified_host_gets_none_and_the_lift_removes_it_recording_how_to_lock_again():
    locked = apply_effects(facts(NFT), lockdown(facts(NFT)))
    (lift,) = FirewallLift().check(context(locked))
    described = [a.describe() for a in lift.actions]
    assert described[0] == "on rollback: lock the mail ports down again"
    assert described[1].endswith("| nft -f -")  # the runtime table goes
    assert "on rollback: enable provisioner-lockdown.service again" in described
    assert described.index("systemctl disable --quiet provisioner-lockdown.service") < described.index(
        f"rm -f {persist.UNIT_FILE}")
    assert f"rm -f {persist.LOCKDOWN_SCRIPT}" in described
    after = apply_effects(locked, [lift])
    assert not persist.present(after) and after.file(VERIFIED_MARKER).exists
    assert lockdown(after) == [] and FirewallLift().check(context(after)) == []
    # Verify skipped: the boot-time copy stays with the lockdown.
    (keep,) = FirewallLift().check(context(locked, options={"verify": False}))
    assert keep.actions == ()


def test_the_boot_script_loads_the_lockdown_with_the_hosts_own_tools(tmp_path):
    (keep,) = boot_change(lockdown(facts(NFT)))
    fake = tmp_path / "nft"
    fake.write_text(f"#!/bin/sh\necho \"nft $*\" > {tmp_path}/called\ncat > {tmp_path}/ruleset\n")
    fake.chmod(0o755)
    script = keep.actions[0].content.replace("PATH=/usr/local/sbin", f"PATH={tmp_path}:/usr/local/sbin")
    script = script.replace(VERIFIED_MARKER, str(tmp_path / "verified"))
    subprocess.run(["sh", "-c", script], check=True)
    assert (tmp_path / "called").read_text() == "nft -f -\n"
    ruleset = (tmp_path / "ruleset").read_text()
    assert "table inet provisioner_lockdown {" in ruleset and f"ip saddr {CTRL} tcp dport {{ 25, 465, 587 }} accept" in ruleset
    (tmp_path / "called").unlink()
    (tmp_path / "verified").write_text("")
    subprocess.run(["sh", "-c", script], check=True)
    assert not (tmp_path / "called").exists()  # verified: nothing is loaded


@pytest.mark.parametrize("verb", ["start", "restart"])
def test_the_el6_init_script_runs_the_lockdown_on_start(tmp_path, verb):
    script = tmp_path / "lockdown.sh"
    script.write_text(f"echo loaded > {tmp_path}/loaded\n")
    init = persist.INIT.replace(persist.LOCKDOWN_SCRIPT, str(script)).replace(VERIFIED_MARKER, str(tmp_path / "v"))
    subprocess.run(["sh", "-c", init, "init", verb], check=True)
    assert (tmp_path / "loaded").exists()
    assert subprocess.run(["sh", "-c", init, "init", "stop"]).returncode == 0
