"""Fail closed: until verify passes, port 25 (and 587/465) answer only the control node."""

from __future__ import annotations

import pytest

from conftest import ensure_provisioned, host, invoke, smtp_banner, ssh

INV = "inventories/lab.yaml"


def shut_to(address: str, port: int, source: str) -> bool:
    try:
        smtp_banner(address, port, source=source, timeout=5)
    except OSError:
        return True
    return False


def test_failed_verify_keeps_the_ports_shut_then_a_good_run_opens_them(lab, tmp_path):
    lab2 = host(lab, "lab2")
    failed = invoke("provision", "--inventory", INV, "--host", "lab2", tmp=tmp_path,
                    env={"PROVISIONER_VERIFY_PASSWORD": "not-the-password"})
    assert failed.code == 1, failed.out
    report = failed.report["hosts"]["lab2"]
    assert report["status"] == "failed"
    assert "verify failed" in report["error"] and "lockdown stays" in report["error"]
    assert "not-the-password" not in failed.out and "not-the-password" not in str(failed.report)
    # The run is rolled back (the host is as it was: Postfix installed, not configured, not running);
    # the lockdown stays, so nothing but the control node could reach it anyway.
    assert report["rollback"]["status"] == "rolled-back", report
    assert report["changes"] and report["run_id"]
    assert ssh(lab, "lab2", "test -e /etc/postfix/main.cf", check=False).returncode != 0
    assert ssh(lab, "lab2", "pgrep -x master", check=False).returncode != 0
    for port in (25, 587):
        assert shut_to(lab2.address, port, lab2.outsider_address), port
    # SSH is never touched by the lockdown.
    assert ssh(lab, "lab2", "true").returncode == 0

    skipped = invoke("provision", "--inventory", INV, "--host", "lab2", "--no-verify", tmp=tmp_path)
    assert skipped.code == 0, skipped.out
    assert ("firewall_lift", "keep the port 25/465/587 lockdown: verify was skipped") in skipped.summaries("lab2")
    assert shut_to(lab2.address, 25, lab2.outsider_address)

    good = invoke("provision", "--inventory", INV, "--host", "lab2", tmp=tmp_path)
    assert good.code == 0, good.out
    assert good.report["hosts"]["lab2"]["verify"]["ok"]
    assert smtp_banner(lab2.address, 25, source=lab2.outsider_address).startswith("220 ")


def test_a_verified_host_is_never_locked_down_again(lab, tmp_path):
    lab2 = host(lab, "lab2")
    ensure_provisioned(lab, "lab2", tmp_path)
    ssh(lab, "lab2", "sed -i 's/^smtpd_tls_loglevel = 0/smtpd_tls_loglevel = 1/' /etc/postfix/main.cf")
    rerun = invoke("provision", "--inventory", INV, "--host", "lab2", tmp=tmp_path)
    assert rerun.code == 0, rerun.out
    assert all(step != "firewall_lockdown" for step, _ in rerun.summaries("lab2"))
    assert smtp_banner(lab2.address, 25, source=lab2.outsider_address).startswith("220 ")


def _bad_inventory(lab, tmp_path, extra_line: str):
    bad = tmp_path / "bad.yaml"
    bad.write_text(lab.inventory_path.read_text().replace(
        "smtpd_sender_restrictions: null", "smtpd_sender_restrictions: null\n        " + extra_line))
    return bad


def test_config_that_postfix_check_rejects_is_rolled_back(lab, tmp_path):
    """postfix check fails -> the run is rolled back (its files restored), nothing restarted, the run fails."""
    lab2 = host(lab, "lab2")
    ensure_provisioned(lab, "lab2", tmp_path)
    before = ssh(lab, "lab2", "cat /etc/postfix/main.cf").stdout
    pid_before = ssh(lab, "lab2", "pgrep -x master").stdout
    failed = invoke("provision", "--inventory", str(_bad_inventory(lab, tmp_path, "mail_owner: nosuchuser")),
                    "--host", "lab2", tmp=tmp_path)
    assert failed.code == 1, failed.out
    error = failed.report["hosts"]["lab2"]["error"]
    assert "postfix check failed" in error and "nosuchuser" in error and "restore /etc/postfix/main.cf" in error, error
    assert ssh(lab, "lab2", "cat /etc/postfix/main.cf").stdout == before
    assert ssh(lab, "lab2", "pgrep -x master").stdout == pid_before  # never restarted on a bad config
    assert smtp_banner(lab2.address, 25, source=lab2.outsider_address).startswith("220 ")


def test_live_host_whose_verify_fails_gets_its_previous_config_back(lab, tmp_path):
    """A config postfix check accepts but that breaks mail (a missing map): verify catches it."""
    lab2 = host(lab, "lab2")
    ensure_provisioned(lab, "lab2", tmp_path)
    before = ssh(lab, "lab2", "cat /etc/postfix/main.cf").stdout
    failed = invoke("provision", "--inventory",
                    str(_bad_inventory(lab, tmp_path, "sender_canonical_maps: hash:/etc/postfix/nonexistent")),
                    "--host", "lab2", tmp=tmp_path)
    assert failed.code == 1, failed.out
    error = failed.report["hosts"]["lab2"]["error"]
    assert error.startswith("verify failed") and "restore /etc/postfix/main.cf" in error, error
    assert ssh(lab, "lab2", "cat /etc/postfix/main.cf").stdout == before
    assert smtp_banner(lab2.address, 25, source=lab2.outsider_address).startswith("220 ")
    assert invoke("verify", "--inventory", INV, "--host", "lab2", json_report=False).code == 0
