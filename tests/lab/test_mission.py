"""The whole mission on real hosts: plan, provision, verify, converge, drift, repair.

The scenario is one story, in order, told on a Debian 12 host (lab1) and a Debian
13 host (lab4) at once: every run names both (``--host lab1 --host lab4``), so the
tool handles them in parallel and the second platform costs no extra run. Each
test states what it needs and asserts per host.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import MISSION_HOSTS, ensure_provisioned, host, invoke, smtp_banner, ssh

INV = "inventories/lab.yaml"
HOSTS = tuple(arg for name in MISSION_HOSTS for arg in ("--host", name))
# Both hosts at once (a real run on several hosts is a rolling update of 25% at a time by default).
ALL_AT_ONCE = ("--serial", "100%")
PLATFORMS = {"lab1": "debian12", "lab4": "debian13"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("mission")


def test_fresh_host_dry_run_then_apply_makes_exactly_the_plan(lab, work):
    plan = invoke("provision", "--inventory", INV, *HOSTS, "--dry-run", tmp=work)
    assert plan.code == 2, plan.out
    assert plan.report["dry_run"] is True
    planned = {}
    for name in MISSION_HOSTS:
        report = plan.report["hosts"][name]
        assert (report["status"], report["platform"]) == ("pending", PLATFORMS[name]), report
        planned[name] = plan.summaries(name)
        steps = {step for step, _ in planned[name]}
        assert {"firewall_lockdown", "packages", "main_cf", "sasl", "pam", "tls", "master_cf", "aliases", "services",
                "firewall_lift"} <= steps, planned[name]
        # A dry run changes nothing.
        assert ssh(lab, name, "dpkg-query -W postfix", check=False).returncode != 0

    applied = invoke("provision", "--inventory", INV, *HOSTS, *ALL_AT_ONCE, tmp=work)
    assert applied.code == 0, applied.out
    for name in MISSION_HOSTS:
        assert applied.report["hosts"][name]["status"] == "changed"
        # Plan fidelity: the real run made exactly the changes the dry run listed.
        assert applied.summaries(name) == planned[name], name
        verify = applied.report["hosts"][name]["verify"]
        assert verify["ok"] and all(c["ok"] for c in verify["checks"]), verify
        assert {c["port"] for c in verify["checks"]} == {25, 587}


def test_ports_25_and_587_are_open_to_everyone_after_verify(lab):
    # Every greeting waits 5 s (smtpd_client_restrictions = sleep 5): all four at once.
    targets = [(host(lab, name), port) for name in MISSION_HOSTS for port in (25, 587)]
    with ThreadPoolExecutor(len(targets)) as pool:
        banners = list(pool.map(lambda t: smtp_banner(t[0].address, t[1], source=t[0].outsider_address), targets))
    assert [banner[:4] for banner in banners] == ["220 "] * len(targets), banners


def test_second_run_changes_nothing(lab, work):
    again = invoke("provision", "--inventory", INV, *HOSTS, *ALL_AT_ONCE, tmp=work)
    assert again.code == 0, again.out
    dry = invoke("provision", "--inventory", INV, *HOSTS, "--dry-run", tmp=work)
    assert dry.code == 0, dry.out
    for name in MISSION_HOSTS:
        assert again.report["hosts"][name]["status"] == "ok"
        assert again.summaries(name) == []
        # Verified by the first run, and nothing changed since: --verify auto skips verify and says so.
        verify = again.report["hosts"][name]["verify"]
        assert verify["ran"] is False and verify["reason"] == f"verified {verify['verified_at']}, unchanged since"
        assert f"{name}: verified {verify['verified_at']}, unchanged since" in again.out
        assert again.report["hosts"][name]["round_trips"] == 2
        assert dry.summaries(name) == []
        # A converged host costs one connection and one batched fact script.
        assert dry.report["hosts"][name]["round_trips"] == 2


def test_hand_edited_main_cf_key_is_the_only_diff_and_the_rest_survives(lab, work):
    for name in MISSION_HOSTS:
        ensure_provisioned(lab, name, work)
        ssh(lab, name, "sed -i 's/^smtpd_tls_auth_only = yes/smtpd_tls_auth_only = no/' /etc/postfix/main.cf && "
                       "printf '# a comment of the admin\\nmessage_size_limit = 20480000\\n' >> /etc/postfix/main.cf")
    dry = invoke("provision", "--inventory", INV, *HOSTS, "--dry-run", tmp=work)
    assert dry.code == 2, dry.out
    for name in MISSION_HOSTS:
        changes = dry.report["hosts"][name]["changes"]
        assert [(c["step"], c["summary"]) for c in changes] == [
            ("main_cf", "update /etc/postfix/main.cf: set smtpd_tls_auth_only = yes"),
            ("services", "reload postfix (its configuration changed)"),
        ]
        diff = changes[0]["diff"]
        assert "-smtpd_tls_auth_only = no\n+smtpd_tls_auth_only = yes\n" in diff
        assert sum(1 for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")) == 2

    applied = invoke("provision", "--inventory", INV, *HOSTS, *ALL_AT_ONCE, tmp=work)
    assert applied.code == 0, applied.out
    for name in MISSION_HOSTS:
        assert applied.summaries(name) == dry.summaries(name)
        main_cf = ssh(lab, name, "cat /etc/postfix/main.cf").stdout
        assert "smtpd_tls_auth_only = yes\n" in main_cf
        assert "# a comment of the admin\nmessage_size_limit = 20480000\n" in main_cf
    assert invoke("provision", "--inventory", INV, *HOSTS, "--dry-run", tmp=work).code == 0


DRIFT = {
    "edit a main.cf key": "sed -i 's/^smtpd_tls_mandatory_ciphers = high/smtpd_tls_mandatory_ciphers = medium/' /etc/postfix/main.cf",
    "delete a virtual alias": "sed -i '/^info@example.test/d' /etc/postfix/virtual_users && postmap /etc/postfix/virtual_users",
    "take the user out of the group": "gpasswd -d mailuser mail_login",
    "delete the pam_listfile line": "sed -i '/pam_listfile/d' /etc/pam.d/smtp",
    "stop saslauthd": "systemctl stop saslauthd",
    "disable postfix at boot": "systemctl disable --quiet postfix",
}


def test_drift_is_reported_exactly_then_repaired(lab, work):
    for name in MISSION_HOSTS:
        ensure_provisioned(lab, name, work)
        for command in DRIFT.values():
            ssh(lab, name, command)
    dry = invoke("provision", "--inventory", INV, *HOSTS, "--dry-run", tmp=work)
    assert dry.code == 2, dry.out
    for name in MISSION_HOSTS:
        assert dry.summaries(name) == [
            ("main_cf", "update /etc/postfix/main.cf: set smtpd_tls_mandatory_ciphers = high"),
            ("pam", "add mailuser to group mail_login"),
            ("pam", "put the pam_listfile group restriction first in /etc/pam.d/smtp"),
            ("aliases", "update /etc/postfix/virtual_users: add info@example.test -> mailuser"),
            ("aliases", "rebuild /etc/postfix/virtual_users.db (its source changed)"),
            ("services", "enable postfix at boot"),
            ("services", "start saslauthd"),
            ("services", "reload postfix (its configuration changed)"),
        ], name

    applied = invoke("provision", "--inventory", INV, *HOSTS, *ALL_AT_ONCE, tmp=work)
    assert applied.code == 0, applied.out
    for name in MISSION_HOSTS:
        assert applied.summaries(name) == dry.summaries(name)  # plan fidelity on a drifted host
        assert applied.report["hosts"][name]["verify"]["ok"]
    assert invoke("provision", "--inventory", INV, *HOSTS, "--dry-run", tmp=work).code == 0
    assert invoke("verify", "--inventory", INV, *HOSTS, json_report=False).code == 0
