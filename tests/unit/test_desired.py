"""The desired state as data: every line it gives is the line provisioner's own edits write."""

from __future__ import annotations

import pytest

from provisioner.desired import SMTPD_CONF, compatibility_level, desired_state, has_relay_restrictions, tls_protocols
from provisioner.keyedit import edit_main_cf, edit_shell_vars
from provisioner.platforms import ALL, DEBIAN12, EL6, EL7, EL8
from provisioner.steps.aliases import edit_aliases

from .conftest import STEP_CASES, load_case, mail_vars

VARS = mail_vars(mail_users=["alice"], root_alias="alice", virtual_aliases={"info@example.test": "alice"},
                 main_cf={"smtpd_sender_restrictions": None})


def shipped_saslauthd(platform) -> str:
    """saslauthd's settings file as the platform's package ships it (a recorded case)."""
    case = load_case(STEP_CASES / "sasl" / f"{platform.name}-fresh-installed.json")
    return case["facts"]["files"][platform.saslauthd_defaults]["content"]


@pytest.mark.parametrize("platform", ALL, ids=lambda p: p.name)
def test_main_cf_lines_are_the_ones_the_editor_writes(platform):
    state = desired_state(VARS, platform)
    written, _, _ = edit_main_cf("smtpd_sender_restrictions = x\n", dict(
        [*((key, line.partition(" =")[2].strip()) for key, line in state.main_cf.lines),
         *((key, None) for key in state.main_cf.absent)]))
    lines = written.splitlines()
    assert [line for line in lines if not line.startswith("#")] == [line for _, line in state.main_cf.lines]
    assert "smtpd_sender_restrictions" in state.main_cf.absent


@pytest.mark.parametrize("platform", ALL, ids=lambda p: p.name)
def test_saslauthd_lines_are_what_an_edit_of_the_shipped_file_leaves(platform):
    state = desired_state(VARS, platform)
    edited, _ = edit_shell_vars(shipped_saslauthd(platform), platform.saslauthd_settings)
    assert state.saslauthd_defaults.path == platform.saslauthd_defaults
    for _, line in state.saslauthd_defaults.lines:
        assert line in edited.splitlines()


def test_files_groups_aliases_and_services():
    state = desired_state(VARS, EL7)
    assert state.packages == EL7.mail_packages and state.removed_packages == EL7.sendmail_packages
    assert (state.smtpd_sasl_conf.path, state.smtpd_sasl_conf.content) == ("/etc/sasl2/smtpd.conf", SMTPD_CONF)
    assert state.pam_allow_file.content == "mail_login\n"
    assert (state.mail_group, state.mail_users) == ("mail_login", ("alice",))
    assert "info@example.test" in state.virtual_map.content
    edited, _ = edit_aliases("postmaster:    root\n", "alice")
    assert dict(state.aliases.lines)["root"] in edited.splitlines()
    assert state.services == ("saslauthd", "postfix")
    kept = desired_state(mail_vars(remove_sendmail=False), EL7)
    assert kept.removed_packages == () and kept.aliases.lines == ()


def test_what_each_platform_s_postfix_knows():
    assert [compatibility_level(p) for p in (DEBIAN12, EL6, EL7, EL8)] == ["3.6", None, None, "2"]
    assert [has_relay_restrictions(p) for p in (DEBIAN12, EL6, EL7, EL8)] == [True, False, True, True]
    assert tls_protocols(DEBIAN12) == ">=TLSv1.2"
    assert {tls_protocols(p) for p in (EL6, EL7, EL8)} == {"!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"}
