"""Whole plans from the facts of real hosts, recorded with `invoke facts` on lab hosts.

<platform>-fresh.json: a lab host straight after lab.up; <platform>-converged.json: the same host
after `invoke provision`. The expected plan is the one the real run made on that host (its JSON
report), for Debian 12 (bookworm) and Debian 13 (trixie) lab hosts.
"""

from __future__ import annotations

import pytest

from provisioner.engine.walk import planned_changes

from .conftest import lab_vars, recorded_host

# The changes `invoke provision` made on each recorded fresh host (lab1), in order.
DEBIAN13_FRESH_RUN = [
    ('firewall_lockdown', 'install nftables, then lock down inbound 25, 465, 587 except from 10.200.1.1 (nftables)'),
    ('firewall_lockdown', 'keep the lockdown across reboots (provisioner-lockdown.service, loaded before the network '
                          'and Postfix)'),
    ('packages', 'install postfix, sasl2-bin, libsasl2-modules, openssl'),
    ('main_cf', 'create /etc/postfix/main.cf with 39 managed keys'),
    ('sasl', 'write /etc/postfix/sasl/smtpd.conf'),
    ('sasl', 'set MECHANISMS, OPTIONS in /etc/default/saslauthd (file as shipped by sasl2-bin)'),
    ('sasl', "write /etc/systemd/system/saslauthd.service.d/provisioner.conf (saslauthd's socket and pid file inside "
             "Postfix's chroot)"),
    ('sasl', 'add postfix to group sasl'),
    ('pam', 'write /etc/pam.d/mail_auth_group.allow'),
    ('pam', 'create group mail_login'),
    ('pam', 'add mailuser to group mail_login'),
    ('pam', 'create /etc/pam.d/smtp'),
    ('tls', 'create directory /etc/postfix/tls (mode 755, root:root)'),
    ('tls', 'generate a self-signed certificate for lab1.example.test (valid 825 days)'),
    ('master_cf', 'enable submission (port 587) in /etc/postfix/master.cf (file as shipped by postfix)'),
    ('aliases', 'create /etc/postfix/virtual_users with 2 aliases'),
    ('aliases', 'rebuild /etc/postfix/virtual_users.db (missing)'),
    ('aliases', 'set root: mailuser in /etc/aliases'),
    ('aliases', 'rebuild /etc/aliases.db (missing)'),
    ('services', 'enable saslauthd at boot'),
    ('services', 'enable postfix at boot'),
    ('services', 'start saslauthd'),
    ('services', 'start postfix'),
    ('firewall_lift', 'lift the port 25/465/587 lockdown (verify passed)'),
]


DEBIAN12_FRESH_RUN = [
    ('firewall_lockdown', 'install nftables, then lock down inbound 25, 465, 587 except from 10.200.1.1 (nftables)'),
    ('firewall_lockdown', 'keep the lockdown across reboots (provisioner-lockdown.service, loaded before the network '
                          'and Postfix)'),
    ('packages', 'install postfix, sasl2-bin, libsasl2-modules'),
    ('main_cf', 'create /etc/postfix/main.cf with 39 managed keys'),
    ('sasl', 'write /etc/postfix/sasl/smtpd.conf'),
    ('sasl', 'set START, MECHANISMS, OPTIONS in /etc/default/saslauthd (file as shipped by sasl2-bin)'),
    ('sasl', 'add postfix to group sasl'),
    ('pam', 'write /etc/pam.d/mail_auth_group.allow'),
    ('pam', 'create group mail_login'),
    ('pam', 'add mailuser to group mail_login'),
    ('pam', 'create /etc/pam.d/smtp'),
    ('tls', 'create directory /etc/postfix/tls (mode 755, root:root)'),
    ('tls', 'generate a self-signed certificate for lab1.example.test (valid 825 days)'),
    ('tls', 'write /etc/postfix/tls/ffdhe2048.pem (RFC 7919 ffdhe2048 DH parameters)'),
    ('master_cf', 'enable submission (port 587) in /etc/postfix/master.cf (file as shipped by postfix)'),
    ('aliases', 'create /etc/postfix/virtual_users with 2 aliases'),
    ('aliases', 'rebuild /etc/postfix/virtual_users.db (missing)'),
    ('aliases', 'set root: mailuser in /etc/aliases'),
    ('aliases', 'rebuild /etc/aliases.db (missing)'),
    ('services', 'enable saslauthd at boot'),
    ('services', 'enable postfix at boot'),
    ('services', 'start saslauthd'),
    ('services', 'start postfix'),
    ('firewall_lift', 'lift the port 25/465/587 lockdown (verify passed)'),
]
FRESH_RUNS = {"debian12": DEBIAN12_FRESH_RUN, "debian13": DEBIAN13_FRESH_RUN}


@pytest.mark.parametrize("platform", list(FRESH_RUNS))
def test_fresh_host_plan_is_what_the_real_run_made(platform):
    vars = lab_vars()
    facts = recorded_host(f"{platform}-fresh.json", vars)
    assert [(c.step, c.summary) for c in planned_changes("lab1", vars, facts)] == FRESH_RUNS[platform]


@pytest.mark.parametrize("platform", list(FRESH_RUNS))
def test_converged_host_has_nothing_to_do(platform):
    vars = lab_vars()
    assert planned_changes("lab1", vars, recorded_host(f"{platform}-converged.json", vars)) == []


@pytest.mark.parametrize("platform", list(FRESH_RUNS))
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
