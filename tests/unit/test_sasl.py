"""The sasl step: the KEY=VALUE shell-file editor, and its data cases."""

from __future__ import annotations

import pytest

from provisioner.probes.recorded import facts_from_dict
from provisioner.model import Facts, UserState, WriteFile, apply_effects
from provisioner.platforms import DEBIAN12, EL6, EL7, EL8
from provisioner.keyedit import edit_shell_vars, shell_assignments, shell_value
from provisioner.desired import SMTPD_CONF
from provisioner.steps.sasl import Sasl

from .conftest import case_platform, context, load_case, planned_summaries, step_cases

SHIPPED = """#
# Settings for saslauthd daemon
#
DESC="SASL Authentication Daemon"
# Example: MECHANISMS="pam"
MECHANISMS="pam"
THREADS=5
# Example for chroot Postfix users: "-c -m /var/spool/postfix/var/run/saslauthd"
OPTIONS="-c -m /var/run/saslauthd"
"""
DEBIAN_SETTINGS = {"START": "yes", "MECHANISMS": "pam", "OPTIONS": "-c -m /var/spool/postfix/var/run/saslauthd"}


# ------------------------------------------------------------ shell values


@pytest.mark.parametrize(
    "raw, value",
    [
        ("yes", "yes"),
        ('"yes"', "yes"),
        ("'yes'", "yes"),
        ('"-c -m /var/run/saslauthd"', "-c -m /var/run/saslauthd"),
        ("", ""),
        ('""', ""),
        ("yes # comment", "yes"),
        ("-c -m /x", None),  # KEY=-c runs `-m /x`: not a value
        (" yes", None),
        ('"unbalanced', None),
    ],
)
def test_shell_value(raw, value):
    assert shell_value(raw) == value


def test_last_assignment_wins():
    assert shell_assignments("START=no\n#START=maybe\nexport START=yes\n") == {"START": "yes"}


# ------------------------------------------------------------ the editor


def test_edits_in_place_keeping_comments_and_other_variables():
    new, changed = edit_shell_vars(SHIPPED, DEBIAN_SETTINGS)
    assert changed == ["START", "OPTIONS"]
    lines = new.splitlines()
    assert lines[:5] == SHIPPED.splitlines()[:5]
    assert "THREADS=5" in lines and 'MECHANISMS="pam"' in lines
    # replaced where it stood, keeping its double quotes
    assert lines[SHIPPED.splitlines().index('OPTIONS="-c -m /var/run/saslauthd"')] == (
        'OPTIONS="-c -m /var/spool/postfix/var/run/saslauthd"'
    )
    # a comment that only mentions an assignment is not a commented-out assignment
    assert '# Example: MECHANISMS="pam"' in lines
    # absent: appended
    assert lines[-1] == "START=yes"


def test_second_edit_is_a_no_op():
    once, _ = edit_shell_vars(SHIPPED, DEBIAN_SETTINGS)
    twice, changed = edit_shell_vars(once, DEBIAN_SETTINGS)
    assert twice == once and changed == []


def test_quoting_does_not_matter_for_equality():
    text = "START='yes'\nMECHANISMS=pam\nOPTIONS='-c -m /var/spool/postfix/var/run/saslauthd'\n"
    assert edit_shell_vars(text, DEBIAN_SETTINGS) == (text, [])


def test_commented_out_assignment_is_replaced_where_it_stands():
    text = "A=1\n#START=yes\n# START=no\nB=2\n"
    new, changed = edit_shell_vars(text, {"START": "yes"})
    assert changed == ["START"]
    assert new == "A=1\nSTART=yes\n# START=no\nB=2\n"


def test_wrong_value_replaced_and_duplicates_dropped():
    text = "START=no\nX=1\nSTART=no\n"
    assert edit_shell_vars(text, {"START": "yes"}) == ("START=yes\nX=1\n", ["START"])


def test_effective_value_counts_even_with_duplicates():
    text = "START=no\nSTART=yes\n"
    assert edit_shell_vars(text, {"START": "yes"}) == (text, [])


def test_unquoted_value_with_spaces_gets_quotes():
    new, _ = edit_shell_vars("OPTIONS=-c\n", {"OPTIONS": "-c -m /run/x"})
    assert new == 'OPTIONS="-c -m /run/x"\n'


def test_missing_final_newline_and_empty_file():
    assert edit_shell_vars("MECH=shadow", {"MECH": "pam"})[0] == "MECH=pam\n"
    assert edit_shell_vars("A=1", {"MECH": "pam"})[0] == "A=1\nMECH=pam\n"
    assert edit_shell_vars("", {"MECH": "pam"}, header="# h\n")[0] == "# h\nMECH=pam\n"


def test_unsafe_value_is_refused():
    with pytest.raises(ValueError):
        edit_shell_vars("", {"OPTIONS": 'a"; rm -rf /'})


def test_settings_per_family():
    assert DEBIAN12.saslauthd_settings == DEBIAN_SETTINGS
    for platform in (EL6, EL7, EL8):
        assert platform.saslauthd_settings == {"MECH": "pam"}


# ------------------------------------------------------------ the step


@pytest.mark.parametrize("path", step_cases("sasl", "*fresh*.json"), ids=lambda p: p.stem)
def test_effects_converge(path):
    """Applying the predicted effects of a fresh host's changes leaves nothing to do (when the text is known)."""
    case = load_case(path)
    facts = facts_from_dict(case["facts"])
    platform = case_platform(case, facts)
    changes = Sasl().check(context(facts, platform))
    after = apply_effects(facts, changes)
    left = Sasl().check(context(after, platform))
    if path.stem.endswith("installed"):
        assert left == []
    else:  # dry run: a shipped file's text stays unknown, nothing else is left
        assert all(c.actions == () for c in left)


@pytest.mark.parametrize("fresh", step_cases("sasl", "*-fresh.json"), ids=lambda p: p.stem)
def test_dry_run_and_real_run_plan_the_same(fresh):
    """The dry run (shipped file unknown) and the real run (re-read after install) plan the same changes."""
    installed = fresh.with_name(fresh.stem + "-installed.json")
    assert planned_summaries(fresh) == planned_summaries(installed)


def test_smtpd_conf_is_whole_and_has_no_timestamp():
    facts = Facts(users={"postfix": UserState("postfix", ("postfix", "mail"))})
    changes = Sasl().check(context(facts, EL8))
    writes = [a for c in changes for a in c.actions if isinstance(a, WriteFile)]
    assert [w.path for w in writes] == ["/etc/sasl2/smtpd.conf", "/etc/sysconfig/saslauthd"]
    assert writes[0].content == SMTPD_CONF == "pwcheck_method: saslauthd\nmech_list: PLAIN LOGIN\n"


def test_postfix_group_seen_from_either_side():
    for facts in (
        Facts(users={"postfix": UserState("postfix", ("postfix",))}, groups={"sasl": ("postfix",)}),
        Facts(users={"postfix": UserState("postfix", ("postfix", "sasl"))}, groups={"sasl": ()}),
    ):
        summaries = [c.summary for c in Sasl().check(context(facts, DEBIAN12))]
        assert "add postfix to group sasl" not in summaries


def test_no_sasl_group_on_el():
    facts = Facts(users={"postfix": UserState("postfix", ("postfix", "mail"))})
    assert not any("group" in c.summary for c in Sasl().check(context(facts, EL7)))

