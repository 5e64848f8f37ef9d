"""The pam step: the /etc/pam.d/smtp editor, links, membership, and its data cases."""

from __future__ import annotations

import pytest

from provisioner.desired import PAM_ALLOW_FILE, PAM_LISTFILE_LINE, PAM_SMTP, allow_file_content
from provisioner.probes import FactSpec
from provisioner.probes.recorded import facts_from_dict
from provisioner.model import Facts, FileState, UserState, WriteFile, apply_effects
from provisioner.platforms import DEBIAN12, EL7, EL8
from provisioner.steps.pam import (
    Pam,
    PamError,
    first_directive,
    new_pam_smtp,
    put_first,
    restriction_first,
)

from .conftest import case_context, context, load_case, mail_vars, planned_summaries, step_cases

EL_SHIPPED = "#%PAM-1.0\nauth       include\tpassword-auth\naccount    include\tpassword-auth\n"



# ------------------------------------------------------------ the editor


def test_first_directive_skips_comments_and_blanks():
    assert first_directive("#%PAM-1.0\n\n  # x\nauth include a\n") == "auth include a"
    assert first_directive("# only comments\n") is None


def test_put_first_keeps_leading_comments_on_top():
    new = put_first(EL_SHIPPED)
    assert new.splitlines() == [
        "#%PAM-1.0",
        PAM_LISTFILE_LINE,
        "auth       include\tpassword-auth",
        "account    include\tpassword-auth",
    ]
    assert restriction_first(new)


def test_put_first_moves_the_line_rather_than_copying_it():
    text = "@include common-auth\n" + PAM_LISTFILE_LINE + "\n@include common-account\n"
    new = put_first(text)
    assert new == PAM_LISTFILE_LINE + "\n@include common-auth\n@include common-account\n"
    assert new.count("pam_listfile") == 1


def test_put_first_is_idempotent_and_whitespace_tolerant():
    once = put_first(EL_SHIPPED)
    assert put_first(once) == once
    spaced = "auth   required   pam_listfile.so onerr=fail item=group sense=allow file=/etc/pam.d/mail_auth_group.allow\n"
    assert restriction_first(spaced) and put_first(spaced) == spaced


def test_put_first_on_empty_or_comment_only_file():
    assert put_first("") == PAM_LISTFILE_LINE + "\n"
    assert put_first("# c") == "# c\n" + PAM_LISTFILE_LINE + "\n"


@pytest.mark.parametrize("edit", [("onerr=fail", "onerr=succeed"), ("sense=allow", "sense=deny"),
                                  ("auth required", "auth optional"), ("item=group", "item=user")])
def test_an_edited_copy_of_the_restriction_is_replaced_not_kept(edit):
    """Any pam_listfile line reading the allow file is the managed line: one stays, ours (D8)."""
    edited = PAM_LISTFILE_LINE.replace(*edit)
    text = "#%PAM-1.0\n" + edited + "\n@include common-auth\n@include common-account\n"
    assert not restriction_first(text)
    assert put_first(text) == "#%PAM-1.0\n" + PAM_LISTFILE_LINE + "\n@include common-auth\n@include common-account\n"


def test_a_second_copy_of_the_restriction_further_down_is_drift():
    text = PAM_LISTFILE_LINE + "\n@include common-auth\n" + PAM_LISTFILE_LINE.replace("allow file", "deny file") + "\n"
    assert not restriction_first(text)
    assert put_first(text) == PAM_LISTFILE_LINE + "\n@include common-auth\n"


def test_a_listfile_line_for_another_file_is_not_ours():
    other = "auth required pam_listfile.so onerr=fail item=user sense=deny file=/etc/ftpusers"
    text = PAM_LISTFILE_LINE + "\n" + other + "\n"
    assert restriction_first(text) and put_first(text) == text
    assert put_first(other + "\n") == PAM_LISTFILE_LINE + "\n" + other + "\n"
    assert put_first("# " + PAM_LISTFILE_LINE.replace("fail", "succeed") + "\n") == (
        "# " + PAM_LISTFILE_LINE.replace("fail", "succeed") + "\n" + PAM_LISTFILE_LINE + "\n")  # comments stay


def test_new_file_per_family():
    assert new_pam_smtp(DEBIAN12.pam_smtp_tail) == (
        PAM_LISTFILE_LINE + "\n@include common-auth\n@include common-account\n"
    )
    assert new_pam_smtp(EL7.pam_smtp_tail).splitlines()[0] == PAM_LISTFILE_LINE


def test_allow_file_lists_one_group_per_line_and_nothing_else():
    # as verified by hand on Debian 12 (11 bytes); pam_listfile has no comments
    assert allow_file_content(["mail_login"]) == "mail_login\n"
    assert allow_file_content(["a", "b"]) == "a\nb\n"


def test_fact_spec_asks_for_users_group_and_files():
    spec = Pam().needs(mail_vars(mail_users=["alice", "bob"], mail_group="smtp_users"))
    assert isinstance(spec, FactSpec)
    assert spec.users == ("alice", "bob") and spec.groups == ("smtp_users",)
    assert PAM_SMTP in spec.files and PAM_ALLOW_FILE in spec.files
    assert spec.extra == ()  # links are reported by the core file probe


def test_missing_user_fails_naming_user_and_host():
    facts = Facts(users={"alice": UserState("alice", ("alice",))})
    with pytest.raises(PamError) as err:
        Pam().check(context(facts, host="mx1", mail_users=["alice", "ghost"]))
    assert "ghost" in str(err.value) and "mx1" in str(err.value) and "alice" not in str(err.value)


def test_fresh_host_dry_run_predicts_group_and_members():
    facts = Facts(users={"alice": UserState("alice", ("alice",)), "bob": UserState("bob", ("bob", "users"))})
    changes = Pam().check(context(facts, mail_users=["alice", "bob", "alice"]))
    assert [c.summary for c in changes] == [
        f"write {PAM_ALLOW_FILE}",
        "create group mail_login",
        "add alice to group mail_login",
        "add bob to group mail_login",
        f"create {PAM_SMTP}",
    ]
    # only what can take access away restarts saslauthd (its -c cache keeps old logins)
    assert [sorted(c.notify) for c in changes] == [["saslauthd:restart"], [], [], [], ["saslauthd:restart"]]
    after = apply_effects(facts, changes)
    assert after.groups["mail_login"] == ("alice", "bob")
    assert "mail_login" in after.users["alice"].groups
    assert Pam().check(context(after, mail_users=["alice", "bob"])) == []


def test_primary_group_counts_as_membership():
    facts = Facts(
        users={"alice": UserState("alice", ("mail_login",))},
        groups={"mail_login": ()},
        files={
            PAM_SMTP: FileState(PAM_SMTP, exists=True, content=new_pam_smtp(DEBIAN12.pam_smtp_tail)),
            PAM_ALLOW_FILE: FileState(PAM_ALLOW_FILE, exists=True, content=allow_file_content(["mail_login"]),
                                      mode="644", owner="root", group="root"),
        },
    )
    assert Pam().check(context(facts, mail_users=["alice"], exclusive_membership=True)) == []


def test_exclusive_membership_removes_only_strangers():
    facts = Facts(
        users={"alice": UserState("alice", ("alice", "mail_login"))},
        groups={"mail_login": ("alice", "bob", "carol")},
    )
    changes = Pam().check(context(facts, mail_users=["alice"], exclusive_membership=True))
    removals = [c for c in changes if c.summary.startswith("remove")]
    assert [c.summary for c in removals] == [
        "remove bob from group mail_login (exclusive membership)",
        "remove carol from group mail_login (exclusive membership)",
    ]
    assert [a.describe() for c in removals for a in c.actions] == [
        "gpasswd -d bob mail_login",
        "gpasswd -d carol mail_login",
    ]
    assert apply_effects(facts, removals).groups["mail_login"] == ("alice",)
    # without the option, strangers stay
    kept = Pam().check(context(facts, mail_users=["alice"]))
    assert not any(c.summary.startswith("remove") for c in kept)


def test_symlink_is_written_through_and_rollback_knows_the_target():
    facts = Facts(
        users={},
        groups={"mail_login": ()},
        files={
            PAM_SMTP: FileState(PAM_SMTP, exists=True, content=EL_SHIPPED, mode="644", owner="root", group="root",
                                link_target="/etc/pam.d/smtp.postfix"),
            "/etc/pam.d/smtp.postfix": FileState("/etc/pam.d/smtp.postfix", exists=True, content=EL_SHIPPED,
                                                 mode="644", owner="root", group="root"),
            PAM_ALLOW_FILE: FileState(PAM_ALLOW_FILE, exists=True, content=allow_file_content(["mail_login"]),
                                      mode="644", owner="root", group="root"),
        },
    )
    (change,) = Pam().check(context(facts, EL7))
    (write,) = change.actions
    assert isinstance(write, WriteFile) and write.path == "/etc/pam.d/smtp.postfix" and write.mode == "644"
    assert change.writes == ("/etc/pam.d/smtp.postfix",)
    after = apply_effects(facts, [change])
    assert Pam().check(context(after, EL7)) == []


def test_link_to_an_ungathered_target_is_written_through():
    facts = Facts(
        groups={"mail_login": ()},
        files={PAM_SMTP: FileState(PAM_SMTP, exists=True, content=EL_SHIPPED, mode="644",
                                   link_target="/etc/pam.d/smtp.other")},
    )
    change = Pam().check(context(facts, EL8))[-1]
    assert change.actions[0].path == "/etc/pam.d/smtp.other"
    # The host's journal records the target as it finds it (a file, or absent) before the write.
    assert change.writes == ("/etc/pam.d/smtp.other",)


def test_dangling_link_is_replaced_by_a_file():
    facts = Facts(groups={"mail_login": ()})  # the file probe reports a dangling link as absent
    change = Pam().check(context(facts, EL7))[-1]
    assert change.summary == f"create {PAM_SMTP}" and change.actions[0].path == PAM_SMTP


@pytest.mark.parametrize("fresh", step_cases("pam", "el*-fresh.json"), ids=lambda p: p.stem)
def test_dry_run_and_real_run_plan_the_same(fresh):
    installed = fresh.with_name(fresh.stem + "-installed.json")
    assert planned_summaries(fresh) == planned_summaries(installed)


@pytest.mark.parametrize("path", step_cases("pam"), ids=lambda p: p.stem)
def test_effects_converge(path):
    case = load_case(path)
    facts = facts_from_dict({**case["facts"], "extra": {}})
    after = apply_effects(facts, Pam().check(case_context(case, facts)))
    left = Pam().check(case_context(case, after))
    # only a shipped file whose text is still unknown (dry run) may remain, without actions
    assert all(c.actions == () for c in left)

