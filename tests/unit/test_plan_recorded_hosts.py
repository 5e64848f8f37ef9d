"""Whole plans from the facts of real hosts, recorded with `invoke facts` on lab hosts.

<platform>-fresh.json: a lab host straight after lab.up; <platform>-converged.json: the same host
after `invoke provision`. The expected plan, <platform>-fresh.plan.json, is the one the real run made
on that host (its JSON report), for Debian 12 (bookworm) and Debian 13 (trixie) lab hosts.
"""

from __future__ import annotations

import json

import pytest

from provisioner.engine.walk import planned_changes

from .conftest import DATA, lab_vars, recorded_host

PLATFORMS = ("debian12", "debian13")


def fresh_run(platform: str) -> list[tuple[str, str]]:
    """The changes `invoke provision` made on the recorded fresh host, in order (<platform>-fresh.plan.json)."""
    return [(step, summary) for step, summary in json.loads((DATA / "hosts" / f"{platform}-fresh.plan.json")
                                                            .read_text())["changes"]]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_fresh_host_plan_is_what_the_real_run_made(platform):
    vars = lab_vars()
    facts = recorded_host(f"{platform}-fresh.json", vars)
    assert [(c.step, c.summary) for c in planned_changes("lab1", vars, facts)] == fresh_run(platform)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_converged_host_has_nothing_to_do(platform):
    vars = lab_vars()
    assert planned_changes("lab1", vars, recorded_host(f"{platform}-converged.json", vars)) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_converged_host_drifts_are_planned_exactly(platform):
    """One drift per concern, made on the recorded facts, gives exactly that change."""
    vars = lab_vars()
    facts = recorded_host(f"{platform}-converged.json", vars)
    main_cf = facts.file("/etc/postfix/main.cf")
    drifted = facts.with_file(main_cf.__class__(**{**main_cf.__dict__, "content": main_cf.content.replace(
        "smtpd_tls_auth_only = yes", "smtpd_tls_auth_only = no")}))
    drifted = drifted.replace(groups={**drifted.groups, "mail_login": ()},
                              users={**drifted.users, "mailuser": drifted.users["mailuser"].__class__(
                                  "mailuser", tuple(g for g in drifted.users["mailuser"].groups if g != "mail_login"))})
    assert [(c.step, c.summary) for c in planned_changes("lab1", vars, drifted)] == [
        ("main_cf", "update /etc/postfix/main.cf: set smtpd_tls_auth_only = yes"),
        ("pam", "add mailuser to group mail_login"),
        ("services", "reload postfix (its configuration changed)"),
    ]


def test_a_dry_run_without_verify_keeps_the_lockdown_pending():
    vars = lab_vars()
    changes = planned_changes("lab1", vars, recorded_host("debian12-fresh.json", vars), verify=False)
    assert changes[-1].summary == "keep the port 25/465/587 lockdown: verify was skipped"
