"""Faults injected into real runs on a provisioned host (lab5): each step failing in turn, two runs at once,
a killed CLI, SIGINT and SIGTERM, a command that times out, a link that drops.

Before each run the host is drifted so that every configuration step has something to write; the run then
fails in one step (a real failing command on the host), after the earlier steps wrote their files. Every
managed file must then compare byte for byte (owner, mode, mtime) to its state before the run, services and
group membership too, with no temporary file left and no run left open; and an account outside the mail
group still gets 535 from a real SMTP client.
"""

from __future__ import annotations

import contextlib
import signal
import time

import pytest

from conftest import ensure_provisioned, invoke, ssh
from faults import (
    INV,
    broken,
    failing_start_once,
    full_disk,
    outsider_auth,
    rolled_back_by_the_host,
    snapshot,
    start,
)

HOST = "lab5"

# Something for each configuration step to do; none of it opens AUTH to an outsider.
DRIFT = " && ".join((
    "sed -i 's/^smtpd_tls_loglevel = .*/smtpd_tls_loglevel = 1/' /etc/postfix/main.cf",
    "sed -i 's|^OPTIONS=.*|OPTIONS=\"-m /var/spool/postfix/var/run/saslauthd\"|' /etc/default/saslauthd",
    "chmod 640 /etc/pam.d/mail_auth_group.allow",
    "{ gpasswd -d mailuser mail_login >/dev/null 2>&1 || true; }",
    "chmod 640 /etc/postfix/tls/key.pem",
    "printf '\\n' >> /etc/postfix/tls/ffdhe2048.pem",
    "sed -i 's|^  -o syslog_name=postfix/submission$|  -o syslog_name=postfix/sub|' /etc/postfix/master.cf",
    "sed -i '/^info@example.test/d' /etc/postfix/virtual_users",
    "postmap /etc/postfix/virtual_users",
    "systemctl disable --quiet postfix",
))
STALE_BACKUP = "cp -p /etc/postfix/main.cf /etc/postfix/main.cf.provisioner.bak"


@pytest.fixture(scope="module")
def provisioned(lab, tmp_path_factory):
    ensure_provisioned(lab, HOST, tmp_path_factory.mktemp("faults"))
    return lab


def drifted(lab) -> None:
    ssh(lab, HOST, DRIFT)


# postmap rebuilding a map (`postmap /etc/postfix/virtual_users`), not the fact script reading one (`postmap -s ...`).
REBUILD = "/*"


@contextlib.contextmanager
def in_the_aliases_step(tmp_path, lab, then: str):
    """A real run of the CLI, slowed down on the host in its aliases step (``then`` before postmap)."""
    with broken(lab, HOST, "postmap", when=REBUILD, then=then):
        run = start("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
        run.wait_for(f"{HOST}: applying aliases")
        yield run


# step -> (what fails, how it is made to fail on the host)
CASES = {
    "leftovers": ("the removal of an older version's backup",
                  lambda lab: broken(lab, HOST, "rm", when="*.provisioner.bak*")),
    "main_cf": ("chown of the new main.cf", lambda lab: broken(lab, HOST, "chown", when="*.main.cf.provisioner.*")),
    "sasl": ("chmod of saslauthd's new settings",
             lambda lab: broken(lab, HOST, "chmod", when="*.saslauthd.provisioner.*")),
    "pam": ("usermod (the issue's case: it once brought back a stale PAM file)",
            lambda lab: broken(lab, HOST, "usermod")),
    "tls": ("a write on a full file system", lambda lab: full_disk(lab, HOST, "/etc/postfix/tls")),
    "master_cf": ("the journal's copy of master.cf", lambda lab: broken(lab, HOST, "cp", when='*"master.cf /var/lib/"*')),
    "aliases": ("postmap", lambda lab: broken(lab, HOST, "postmap", when=REBUILD)),
    "services": ("saslauthd's start (a unit that fails)", lambda lab: failing_start_once(lab, HOST, "saslauthd")),
}


# make test runs these; make test-faults runs every case.
REPRESENTATIVE = ("pam", "tls", "services")


@pytest.mark.parametrize("step", [
    pytest.param(step, marks=() if step in REPRESENTATIVE else pytest.mark.faults_full) for step in CASES])
def test_a_step_that_fails_after_earlier_steps_wrote_files_leaves_the_host_as_it_was(provisioned, tmp_path, step):
    lab = provisioned
    drifted(lab)
    ssh(lab, HOST, STALE_BACKUP)
    before = snapshot(lab, HOST)
    what, fault = CASES[step]
    with fault(lab):
        failed = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
        after = snapshot(lab, HOST)
    assert failed.code == 1, failed.out
    report = failed.report["hosts"][HOST]
    assert report["status"] == "failed" and report["error"].startswith(f"step {step}: "), (what, report["error"])
    outcomes = {s["step"]: s["outcome"] for s in report["steps"]}
    assert outcomes[step] == "failed"
    assert report["rollback"]["status"] == "rolled-back", report["rollback"]
    # The changes it made before it failed are counted (the recap's "changed"), then rolled back.
    assert len(report["changes"]) == sum(s["changes"] for s in report["steps"] if s["outcome"] == "changed")
    assert after.differences(before) == [], what
    # An older version's backup goes for good (unless removing it was the fault): never restored.
    stale = ssh(lab, HOST, "test -e /etc/postfix/main.cf.provisioner.bak", check=False).returncode == 0
    assert stale == (step == "leftovers")
    assert outsider_auth(lab, HOST) == 535


@pytest.mark.faults_full
def test_the_host_converges_after_the_failures(provisioned, tmp_path):
    applied = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
    assert applied.code == 0, applied.out
    assert invoke("provision", "--inventory", INV, "--host", HOST, "--dry-run", tmp=tmp_path).code == 0


def test_a_second_run_fails_fast_naming_the_holder_and_a_dry_run_goes_on(provisioned, tmp_path):
    lab = provisioned
    drifted(lab)
    with in_the_aliases_step(tmp_path, lab, then="sleep 10") as first:
        began = time.monotonic()
        second = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
        waited = time.monotonic() - began
        dry = invoke("provision", "--inventory", INV, "--host", HOST, "--dry-run", tmp=tmp_path)
        code, out, report = first.finish()
    assert code == 0, out
    run_id = report["hosts"][HOST]["run_id"]
    assert second.code == 1
    error = second.report["hosts"][HOST]["error"]
    assert f"{HOST} is locked by run {run_id} from " in error and " since " in error, error
    assert second.report["hosts"][HOST]["changes"] == []
    assert waited < 10  # it did not wait for the lock
    assert dry.code == 2 and f"run {run_id}" in " ".join(dry.report["hosts"][HOST]["notes"])


def test_the_lock_of_a_killed_cli_does_not_block_the_next_run(provisioned, tmp_path):
    lab = provisioned
    drifted(lab)
    before = snapshot(lab, HOST)
    with in_the_aliases_step(tmp_path, lab, then="sleep 20; echo late >> /etc/postfix/virtual_users") as killed:
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait()
        # The host saw the connection close: it stops the step, rolls the run back, and lets go of the lock.
        released = rolled_back_by_the_host(lab, HOST, within=30)
    assert released < 15, released
    assert snapshot(lab, HOST).differences(before) == []
    nxt = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
    assert nxt.code == 0, nxt.out
    time.sleep(1)
    assert "late" not in ssh(lab, HOST, "cat /etc/postfix/virtual_users").stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.faults_full)],
                         ids=lambda s: s.name)
def test_an_interrupt_mid_apply_finishes_the_step_rolls_back_and_reports(provisioned, tmp_path, sig):
    lab = provisioned
    drifted(lab)
    before = snapshot(lab, HOST)
    with in_the_aliases_step(tmp_path, lab, then="sleep 3") as run:
        run.proc.send_signal(sig)
        code, out, report = run.finish()
    assert code == 130, out
    assert "recap" in out and f"interrupted by {sig.name}" in out
    entry = report["hosts"][HOST]
    assert report["interrupted"] == sig.name and entry["status"] == "interrupted"
    assert entry["error"].startswith(f"interrupted by {sig.name} before step services"), entry["error"]
    assert [s["step"] for s in entry["steps"]][-1] == "services"
    assert entry["rollback"]["status"] == "rolled-back"
    assert "Traceback" not in out
    assert snapshot(lab, HOST).differences(before) == []


def test_a_timed_out_command_is_killed_on_the_host_before_the_rollback(provisioned, tmp_path):
    import yaml

    lab = provisioned
    drifted(lab)
    before = snapshot(lab, HOST)
    inv = yaml.safe_load(lab.inventory_path.read_text())
    inv["hosts"][HOST]["command_timeout"] = 4
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(inv))
    # Left alone, the slow command would write after the rollback restored the file.
    with broken(lab, HOST, "postmap", when=REBUILD, then="sleep 10; echo late >> /etc/postfix/virtual_users"):
        failed = invoke("provision", "--inventory", str(path), "--host", HOST, tmp=tmp_path)
        time.sleep(8)
        after = snapshot(lab, HOST)
        leftover = ssh(lab, HOST, "pgrep -f 'slee[p] 10'", check=False).stdout
    assert failed.code == 1, failed.out
    entry = failed.report["hosts"][HOST]
    assert "step aliases timed out after 4s" in entry["error"], entry["error"]
    assert any("stopped the step script still running" in note for note in entry["rollback"]["notes"]), entry
    assert entry["rollback"]["status"] == "rolled-back"
    assert leftover == ""
    assert after.differences(before) == []


@pytest.mark.faults_full
def test_a_dropped_link_reports_the_host_unreachable_and_the_next_run_converges(provisioned, tmp_path):
    from tooling.lab.faults import link_down, link_up

    lab = provisioned
    drifted(lab)
    before = snapshot(lab, HOST)
    with in_the_aliases_step(tmp_path, lab, then="sleep 6") as run:
        time.sleep(1.5)  # the step's script runs on the host: the link drops under it
        link_down(HOST)
        try:
            code, out, report = run.finish(timeout=120)
        finally:
            link_up(HOST)
        rolled_back_by_the_host(lab, HOST, within=60)
    assert code == 1, out
    entry = report["hosts"][HOST]
    assert entry["status"] == "unreachable", entry
    assert "no answer from the host" in entry["error"] and entry["rollback"]["status"] == "by-host"
    assert [c["step"] for c in entry["changes"]][:2] == ["main_cf", "sasl"]  # what it had applied
    assert snapshot(lab, HOST).differences(before) == []  # the host rolled it back by itself
    again = invoke("provision", "--inventory", INV, "--host", HOST, tmp=tmp_path)
    assert again.code == 0, again.out
    assert invoke("provision", "--inventory", INV, "--host", HOST, "--dry-run", tmp=tmp_path).code == 0
