"""--verify auto on real hosts, and a rolling update that stops at its first failed batch.

Runs on the mission's hosts once the mission has left them converged and
verified (lab1, Debian 12; lab4 joins the rolling update), and leaves them so.
Cheap: two verifies and one failed one (each about 10 s on the lab, whose
Postfix sleeps 5 s per connection), the rest are converged reruns.
"""

from __future__ import annotations

import pytest

from conftest import ensure_provisioned, invoke, ssh

INV = "inventories/lab.yaml"
HOST = "lab1"


@pytest.fixture(scope="module")
def converged(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify-auto")
    ensure_provisioned(lab, HOST, tmp)
    # A run with verify, so the host holds a record of it whatever ran before.
    assert invoke("provision", "--inventory", INV, "--host", HOST, "--verify", "always", tmp=tmp).code == 0
    return tmp


def provision(tmp, *args, env=None):
    return invoke("provision", "--inventory", INV, "--host", HOST, *args, tmp=tmp, env=env)


def test_a_converged_rerun_skips_verify_and_says_since_when(lab, converged):
    rerun = provision(converged)
    assert rerun.code == 0, rerun.out
    report = rerun.report["hosts"][HOST]
    assert report["status"] == "ok" and report["changes"] == []
    verify = report["verify"]
    assert verify["ran"] is False and verify["verified_at"], verify
    assert verify["reason"] == f"verified {verify['verified_at']}, unchanged since"
    assert f"verify: verified {verify['verified_at']}, unchanged since" in rerun.out
    assert report["round_trips"] == 2  # the connection and the fact script: no SMTP, no write
    assert "verify" not in report["phases"]
    # The record is root's alone and holds the digest, never a password.
    marker = ssh(lab, HOST, "stat -c '%a %U' /var/lib/provisioner/verified; cat /var/lib/provisioner/verified").stdout
    assert marker.startswith("600 root\nverified by provisioner\n"), marker
    assert f"verified_at={verify['verified_at']}" in marker and "state=" in marker
    secrets = (lab.inventory_path.parent / "lab-secrets.yaml").read_text()
    for line in secrets.splitlines():
        if "password" in line:
            assert line.split(":", 1)[1].strip().strip("'\"") not in marker


def test_drift_the_run_does_not_repair_still_makes_it_verify_then_always_forces_it(lab, converged):
    # Not a managed file, not repaired (exclusive_membership is off), but who may AUTH changed.
    ssh(lab, HOST, "gpasswd -a daemon mail_login >/dev/null")
    try:
        drifted = provision(converged)
        assert drifted.code == 0, drifted.out
        report = drifted.report["hosts"][HOST]
        assert report["changes"] == []
        assert report["verify"]["ran"] is True and report["verify"]["ok"] is True
        assert report["verify"]["reason"].startswith("the host changed since its last passed verify"), report["verify"]
    finally:
        ssh(lab, HOST, "gpasswd -d daemon mail_login >/dev/null")
    forced = provision(converged, "--verify", "always")
    assert forced.code == 0, forced.out
    assert forced.report["hosts"][HOST]["verify"]["ran"] is True
    assert forced.report["hosts"][HOST]["verify"]["reason"] == "--verify always"
    # That verify was recorded for this state: the next run skips again; --verify never skips too.
    again = provision(converged)
    assert again.report["hosts"][HOST]["verify"]["ran"] is False, again.out
    never = provision(converged, "--no-verify")
    assert never.code == 0 and never.report["hosts"][HOST]["verify"] == {
        "ran": False, "reason": "--verify never", "verified_at": None}


def test_a_rolling_update_stops_after_its_first_batch_fails(lab, converged):
    ensure_provisioned(lab, "lab4", converged)
    # A wrong password makes lab1's verify fail (nothing changes on either host).
    rolled = invoke("provision", "--inventory", INV, "--host", HOST, "--host", "lab4", "--serial", "1",
                    "--max-fail", "0", "--verify", "always", tmp=converged,
                    env={"PROVISIONER_VERIFY_PASSWORD": "not-the-password"})
    assert rolled.code == 3, rolled.out
    first, second = rolled.report["hosts"][HOST], rolled.report["hosts"]["lab4"]
    assert first["status"] == "failed" and first["error"].startswith("verify failed"), first
    assert first["batch"] == 1 and second["batch"] == 2
    assert second["status"] == "not-run" and second["round_trips"] == 0 and second["run_id"] is None, second
    assert second["error"].startswith("not started: 1 host(s) failed in batch 1 of 2")
    assert rolled.report["rolling"] == {"serial": "1", "max_fail": 0, "halted": rolled.report["rolling"]["halted"]}
    assert "later batches did not start" in rolled.report["rolling"]["halted"]
    assert "rolling update stopped" in rolled.out
    assert "not-the-password" not in rolled.out
