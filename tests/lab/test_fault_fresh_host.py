"""A fresh host's first runs failing for real, and a lockdown that survives a reboot until verify passes.

One story on lab5 (Debian 12), in order; this module runs before test_faults.py (by name), which carries on
from the provisioned host it leaves:
  a failed firewall install, then a failed package install: the host stays as it was, behind the lockdown;
  --no-verify, then a real reboot: port 25 stays shut to the outsider; a failing lift is rolled back
  (still shut); a run with verify opens it.
"""

from __future__ import annotations

import pytest

from conftest import host, invoke, smtp_banner, ssh
from faults import INV, broken, snapshot

HOST = "lab5"
# An apt pin that leaves postfix without an installation candidate: a real apt failure.
NO_POSTFIX = ("printf 'Package: postfix\\nPin: release *\\nPin-Priority: -1\\n' "
              "> /etc/apt/preferences.d/lab-fault-no-postfix")


def shut_to_outsider(lab, port: int = 25) -> bool:
    entry = host(lab, HOST)
    try:
        smtp_banner(entry.address, port, source=entry.outsider_address, timeout=5)
    except OSError:
        return True
    return False


def test_a_failed_firewall_install_leaves_the_fresh_host_as_it_was(lab, tmp_path):
    before = snapshot(lab, HOST)
    ssh(lab, HOST, "mv /etc/apt/sources.list /etc/apt/sources.list.lab-fault")
    try:
        failed = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
    finally:
        ssh(lab, HOST, "mv /etc/apt/sources.list.lab-fault /etc/apt/sources.list")
    assert failed.code == 1, failed.out
    report = failed.report["hosts"][HOST]
    assert report["status"] == "failed" and report["error"].startswith("step firewall_lockdown: "), report["error"]
    assert [s["outcome"] for s in report["steps"]] == ["failed"]
    assert report["rollback"]["status"] == "rolled-back"
    assert snapshot(lab, HOST).differences(before) == []  # no policy-rc.d, no temporary file, nothing else
    assert "rollback" in failed.out and "failed" in failed.out  # the recap says so


def test_a_failed_package_install_keeps_the_lockdown_and_leaves_no_policy_rc_d(lab, tmp_path):
    ssh(lab, HOST, NO_POSTFIX)
    try:
        failed = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
    finally:
        ssh(lab, HOST, "rm -f /etc/apt/preferences.d/lab-fault-no-postfix")
    assert failed.code == 1, failed.out
    report = failed.report["hosts"][HOST]
    assert report["error"].startswith("step packages: "), report["error"]
    assert "postfix" in report["error"]
    # The lockdown step made its changes (and keeps them: the fail-closed state); they are counted.
    assert [c["step"] for c in report["changes"]] == ["firewall_lockdown", "firewall_lockdown"]
    assert report["rollback"]["status"] == "rolled-back"
    assert ssh(lab, HOST, "test -e /usr/sbin/policy-rc.d", check=False).returncode != 0
    assert ssh(lab, HOST, "dpkg-query -W postfix", check=False).returncode != 0
    assert ssh(lab, HOST, "nft list table inet provisioner_lockdown").returncode == 0
    assert ssh(lab, HOST, "systemctl is-enabled provisioner-lockdown").stdout.strip() == "enabled"


def test_without_verify_the_lockdown_survives_a_reboot_until_verify_passes(lab, tmp_path):
    from tooling.lab.faults import reboot

    entry = host(lab, HOST)
    skipped = invoke("provision", "--inventory", INV, "--host", HOST, "--no-verify", tmp=tmp_path)
    assert skipped.code == 0, skipped.out
    assert ("firewall_lift", "keep the port 25/465/587 lockdown: verify was skipped") in skipped.summaries(HOST)
    assert shut_to_outsider(lab)

    reboot(HOST)  # the container restarted and its network namespace made again: no runtime rule is left
    assert ssh(lab, HOST, "pgrep -x master").returncode == 0  # Postfix came up at boot ...
    assert smtp_banner(entry.address, 25, source=entry.control_address).startswith("220 ")
    for port in (25, 587):
        assert shut_to_outsider(lab, port), port  # ... behind the lockdown loaded before it
    assert "provisioner_lockdown" in ssh(lab, HOST, "nft list tables").stdout

    # A lift that fails half-way is rolled back: the ports are locked down again.
    with broken(lab, HOST, "systemctl", when="disable*provisioner-lockdown*"):
        failed = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
    assert failed.code == 1, failed.out
    report = failed.report["hosts"][HOST]
    assert report["verify"]["ok"] and report["error"].startswith("step firewall_lift: "), report["error"]
    assert "lock the mail ports down again" in report["rollback"]["undone"]
    assert shut_to_outsider(lab)
    assert ssh(lab, HOST, "test -e /var/lib/provisioner/verified", check=False).returncode != 0

    opened = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
    assert opened.code == 0, opened.out
    assert opened.report["hosts"][HOST]["verify"]["ok"]
    assert smtp_banner(entry.address, 25, source=entry.outsider_address).startswith("220 ")
    assert ssh(lab, HOST, "test -e /etc/systemd/system/provisioner-lockdown.service", check=False).returncode != 0
    assert ssh(lab, HOST, "test -e /var/lib/provisioner/lockdown.sh", check=False).returncode != 0
