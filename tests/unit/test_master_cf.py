"""The master.cf editor: submission/smtps entries edited in place, the rest kept byte for byte."""

from __future__ import annotations

import pytest

from provisioner.desired import MASTER_CF
from provisioner.model import Facts, FileState, WriteFile
from provisioner.platforms import DEBIAN12, EL6, EL7, EL8
from provisioner.steps.base import StepError
from provisioner.steps.master_cf import (
    MasterCf,
    commented_entries,
    desired_tokens,
    edit,
    parse,
    port_of,
    render,
)

from .conftest import context
from .recorded_cases import fixture_text


def stock(platform: str) -> str:
    """master.cf as the platform's postfix package ships it (tests/data/fixtures)."""
    return fixture_text(f"{platform}/stock/master.cf")


def active(text: str) -> list[tuple[str, ...]]:
    return [s.tokens for s in parse(text)[1]]


def test_parse_entries_continuations_and_comments_between_them():
    text = (
        "# header\n"
        "smtp      inet  n       -       y       -       -       smtpd\n"
        "relay     unix  -       -       y       -       -       smtp\n"
        "        -o syslog_name=postfix/$service_name\n"
        "#       -o smtp_helo_timeout=5\n"
        "\n"
        "\t-o smtp_fallback_relay=\n"
        "# trailing comment\n"
        "showq     unix  n       -       y       -       -       showq\n"
    )
    lines, services = parse(text)
    assert [s.name for s in services] == ["smtp", "relay", "showq"]
    relay = services[1]
    assert relay.tokens[8:] == ("-o", "syslog_name=postfix/$service_name", "-o", "smtp_fallback_relay=")
    # the block ends at its last continuation line: the trailing comment is not ours
    assert (relay.start, relay.end) == (2, 7)


def test_port_names():
    assert port_of("submission") == port_of("127.0.0.1:submission") == port_of("587") == "587"
    assert port_of("smtps") == port_of("submissions") == port_of("[::1]:465") == "465"
    assert port_of("smtp") is None


@pytest.mark.parametrize("platform", [DEBIAN12, EL6, EL7, EL8], ids=lambda p: p.name)
def test_enable_replaces_the_stock_example_in_place(platform):
    old = stock(platform.name)
    new, notes = edit(old, {"587": True, "465": False}, platform)
    assert notes == [("enable submission (port 587)", "")]
    entries = [t for t in active(new) if port_of(t[0]) == "587"]
    assert entries == [desired_tokens("587", platform)]
    assert entries[0][4] == ("y" if platform.postfix_chroot else "n")
    # where the commented example stood: right after the comment lines before it
    old_lines, new_lines = old.splitlines(), new.splitlines()
    at = old_lines.index(next(line for line in old_lines if line.startswith("#submission ")))
    assert new_lines[at].startswith("submission ")
    # everything else kept byte for byte: only the example block changed
    template = next(c for c in commented_entries(old.splitlines(keepends=True)) if c.name == "submission")
    kept_before = old.splitlines(keepends=True)[: template.start]
    kept_after = old.splitlines(keepends=True)[template.end :]
    assert new == "".join(kept_before + render(desired_tokens("587", platform)) + kept_after)
    # and a second edit changes nothing
    assert edit(new, {"587": True, "465": False}, platform) == (new, [])


def test_el6_has_no_relay_restrictions_but_a_recipient_restriction():
    tokens = desired_tokens("587", EL6)
    assert not any(t.startswith("smtpd_relay_restrictions") for t in tokens)
    assert "smtpd_recipient_restrictions=permit_sasl_authenticated,reject" in tokens
    for platform in (DEBIAN12, EL7, EL8):
        assert "smtpd_relay_restrictions=permit_sasl_authenticated,reject" in desired_tokens("587", platform)


def test_smtps_uses_each_familys_name_and_wrapper_mode():
    assert desired_tokens("465", DEBIAN12)[0] == "submissions"
    assert desired_tokens("465", EL7)[0] == "smtps"
    assert "smtpd_tls_wrappermode=yes" in desired_tokens("465", EL7)
    assert "smtpd_tls_security_level=encrypt" in desired_tokens("465", EL7)


def test_disable_comments_out_and_enable_again_round_trips():
    enabled, _ = edit(stock("debian12"), {"587": True, "465": True}, DEBIAN12)
    disabled, notes = edit(enabled, {"587": False, "465": False}, DEBIAN12)
    assert notes == [
        ("disable submission (port 587, commented out)", ""),
        ("disable submissions (port 465, commented out)", ""),
    ]
    assert not [t for t in active(disabled) if port_of(t[0])]
    assert edit(disabled, {"587": False, "465": False}, DEBIAN12) == (disabled, [])
    again, _ = edit(disabled, {"587": True, "465": True}, DEBIAN12)
    assert again == enabled


def test_drifted_entry_is_replaced_with_details():
    text = (
        "smtp      inet  n       -       n       -       -       smtpd\n"
        "127.0.0.1:submission inet n - y - - smtpd\n"
        "  -o smtpd_tls_security_level=encrypt\n"
        "  -o milter_macro_daemon_name=ORIGINATING\n"
        "587 inet n - n - - smtpd\n"
        "pickup    unix  n       -       n       60      1       pickup\n"
    )
    new, [(head, detail)] = edit(text, {"587": True, "465": False}, EL7)
    assert head == "update submission (port 587)"
    assert detail.startswith("rename 127.0.0.1:submission to submission, set chroot n (was y), add -o syslog_name=")
    assert "remove -o milter_macro_daemon_name=ORIGINATING" in detail and detail.endswith("remove 1 more entry for port 587")
    assert [t[0] for t in active(new)] == ["smtp", "submission", "pickup"]


def test_whitespace_only_differences_are_not_drift():
    tokens = desired_tokens("587", EL8)
    spaced = "submission   inet n - n - - smtpd\n" + "".join(f"\t-o {o}\n" for o in tokens[9::2])
    text = "smtp inet n - n - - smtpd\n" + spaced
    assert edit(text, {"587": True, "465": False}, EL8) == (text, [])


def test_no_example_and_no_entry_inserts_after_smtp():
    text = "smtp      inet  n       -       n       -       -       smtpd\npickup    unix  n       -       n       60      1       pickup"
    new, _ = edit(text, {"587": True, "465": True}, EL8)
    names = [t[0] for t in active(new)]
    assert names == ["smtp", "submission", "smtps", "pickup"]
    assert new.endswith("pickup\n")


def test_dry_run_and_real_run_say_the_same_on_a_fresh_host():
    dry = MasterCf().check(context(Facts(files={MASTER_CF: FileState(MASTER_CF, exists=True, from_package="postfix")})))
    real_state = FileState(MASTER_CF, exists=True, content=stock("debian12"), mode="644", owner="root", group="root",
                           from_package="postfix")
    real = MasterCf().check(context(Facts(files={MASTER_CF: real_state})))
    assert [c.summary for c in dry] == [c.summary for c in real] == [
        f"enable submission (port 587) in {MASTER_CF} (file as shipped by postfix)"
    ]
    assert dry[0].actions == () and isinstance(real[0].actions[0], WriteFile)
    assert real[0].notify == frozenset({"postfix:reload"})
    # with both off, neither run has anything to do
    for facts in (Facts(files={MASTER_CF: FileState(MASTER_CF, exists=True, from_package="postfix")}), Facts(files={MASTER_CF: real_state})):
        assert MasterCf().check(context(facts, submission=False)) == []


def _with_stock(platform, master: FileState) -> Facts:
    stock_path = platform.master_cf_stock
    name = platform.name
    return Facts(files={MASTER_CF: master,
                        stock_path: FileState(stock_path, exists=True, content=stock(name), mode="644")})


@pytest.mark.parametrize("platform, stock_path", [
    (DEBIAN12, "/usr/share/postfix/master.cf.dist"),
    (EL6, "/usr/libexec/postfix/master.cf"),
    (EL7, "/usr/libexec/postfix/master.cf"),
    (EL8, "/etc/postfix/master.cf.proto"),
])
@pytest.mark.parametrize("content, what", [(None, "missing"), ("", "without Postfix's services"),
                                           ("# nothing here\n", "without Postfix's services")])
def test_master_cf_that_lost_its_services_is_rebuilt_from_the_stock_copy(platform, stock_path, content, what):
    master = FileState(MASTER_CF) if content is None else FileState(MASTER_CF, exists=True, content=content,
                                                                     mode="644", owner="root", group="root")
    [change] = MasterCf().check(context(_with_stock(platform, master), platform))
    assert change.summary == f"rebuild {MASTER_CF} ({what}) from the stock {stock_path} and enable submission (port 587)"
    assert change.notify == frozenset({"postfix:restart"})  # master(8) needs the file to run at all
    [write] = [a for a in change.actions if isinstance(a, WriteFile)]
    wanted, _ = edit(stock(platform.name), {"587": True, "465": False}, platform)
    assert write.content == wanted and write.mode == "644" and write.owner == "root"
    # the stock services are back, and the plan after it is empty
    assert "pickup" in {s.name for s in parse(write.content)[1]}  # a fifo on EL6, unix later
    after = change.effect(_with_stock(platform, master))
    assert MasterCf().check(context(after, platform)) == []


def test_rebuilt_even_with_no_managed_entry():
    [change] = MasterCf().check(context(_with_stock(DEBIAN12, FileState(MASTER_CF)), submission=False))
    assert change.summary == f"rebuild {MASTER_CF} (missing) from the stock /usr/share/postfix/master.cf.dist"


def test_a_master_cf_with_only_the_smtp_listener_or_pickup_is_edited_not_rebuilt():
    for text in ("smtp      inet  n       -       y       -       -       smtpd\n",
                 "pickup    unix  n       -       y       60      1       pickup\n"):
        state = FileState(MASTER_CF, exists=True, content=text, mode="644", owner="root", group="root")
        [change] = MasterCf().check(context(_with_stock(DEBIAN12, state)))
        assert change.summary.startswith("enable submission (port 587)")


def test_missing_master_cf_and_stock_copy_fails_loudly():
    with pytest.raises(StepError, match="h: /etc/postfix/master.cf is missing and the stock copy "
                                        "/usr/share/postfix/master.cf.dist is missing too: reinstall postfix"):
        MasterCf().check(context(Facts(files={MASTER_CF: FileState(MASTER_CF)})))


def test_commented_head_takes_its_orphaned_option_lines_along():
    # master(8) reads the uncommented "-o" lines after "#submission ..." as options of the smtp entry above.
    converged, _ = edit(stock("debian12"), {"587": True, "465": False}, DEBIAN12)
    drifted = converged.replace("\nsubmission ", "\n#submission ")
    smtp = [s for s in parse(drifted)[1] if s.name == "smtp" and s.type == "inet"][0]
    assert "smtpd_tls_security_level=encrypt" in smtp.tokens  # what Postfix does with them
    new, notes = edit(drifted, {"587": True, "465": False}, DEBIAN12)
    assert new == converged
    assert notes == [("enable submission (port 587)", "")]
    assert edit(new, {"587": True, "465": False}, DEBIAN12)[0] == new


def test_orphans_end_at_the_next_entry_or_commented_entry():
    text = ("smtp      inet  n       -       y       -       -       smtpd\n"
            "#submission inet n       -       y       -       -       smtpd\n"
            "#  -o syslog_name=postfix/submission\n"
            "  -o smtpd_tls_security_level=encrypt\n"
            "#smtps     inet  n       -       y       -       -       smtpd\n"
            "  -o smtpd_tls_wrappermode=yes\n"
            "pickup    unix  n       -       y       60      1       pickup\n")
    new, _ = edit(text, {"587": True, "465": False}, DEBIAN12)
    assert "smtpd_tls_security_level=encrypt\n#smtps" not in new
    assert "#smtps     inet  n       -       y       -       -       smtpd\n  -o smtpd_tls_wrappermode=yes\n" in new
    assert new.count("  -o smtpd_tls_security_level=encrypt\n") == 1


