"""The policy every managed file shares (steps/files.py): attributes, symlinks, CR line endings, bytes that are not UTF-8."""

from __future__ import annotations

import base64
import dataclasses
import re
import subprocess

import pytest

from provisioner.desired import MAIN_CF, PAM_LISTFILE_LINE, PAM_SMTP
from provisioner.engine.walk import planned_changes
from provisioner.model import FileState, SetAttributes, WriteFile, apply_effects
from provisioner.platforms import DEBIAN12, EL8
from provisioner.probes import FactSpec, core_probes, parse_files
from provisioner.steps.base import Context, StepError
from provisioner.steps.files import (
    attributes_change, has_cr, refuse_outside_links, shown, unified_diff, with_lf, write_change,
)
from provisioner.steps.main_cf import MainCf
from provisioner.steps.pam import Pam
from provisioner.steps.sasl import Sasl

from .conftest import context, lab_vars, recorded_host

def lab_context(facts):
    """The recorded lab host's own vars (context() would bring other keys into main.cf)."""
    return Context("lab1", lab_vars(), DEBIAN12, facts)


LATIN1 = b"# r\xe9glage du site\n".decode("utf-8", errors="surrogateescape")  # as the file probe decodes it


# ------------------------------------------------------------ the file probe


def _probe(tmp_path, *paths: str, secret: tuple[str, ...] = ()) -> dict[str, FileState]:
    spec = FactSpec(files=tuple(p for p in paths if p not in secret), secret_files=secret)
    script = next(p for p in core_probes(spec) if p.name == "files").script
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    return parse_files(out, secret)


def test_the_file_probe_describes_a_link_s_target_and_says_where_it_ends(tmp_path):
    target = tmp_path / "main.cf.site"
    target.write_text("a = b\n")
    target.chmod(0o640)
    hop = tmp_path / "alternatives"
    hop.symlink_to(target)
    link = tmp_path / "main.cf"
    link.symlink_to(hop)
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nowhere")
    files = _probe(tmp_path, str(link), str(target), str(dangling), secret=(str(link),))
    assert files[str(link)].mode == "640"  # stat -L: the target's, not the link's 777
    assert files[str(link)].link_target == str(target)  # readlink -f: through every hop
    assert files[str(link)].content is None and files[str(link)].sha256  # a secret link: digest only
    assert files[str(target)].link_target is None and files[str(target)].content == "a = b\n"
    assert not files[str(dangling)].exists  # a dangling link is written over as a new file


def test_the_file_probe_keeps_a_byte_that_is_not_utf8(tmp_path):
    path = tmp_path / "main.cf"
    path.write_bytes(b"# r\xe9glage du site\n")
    assert _probe(tmp_path, str(path))[str(path)].content == LATIN1


# ------------------------------------------------------------ symlinks


def test_a_link_that_leaves_etc_refuses_the_host_naming_link_and_target():
    facts = recorded_host("debian12-converged.json", lab_vars())
    facts = facts.with_file(dataclasses.replace(facts.file(MAIN_CF), link_target="/srv/drift/main.cf"))
    with pytest.raises(StepError) as refused:
        planned_changes("lab6", lab_vars(), facts)  # the dry run's path; a real run checks before its first step
    assert str(refused.value) == ("lab6: /etc/postfix/main.cf is a symlink to /srv/drift/main.cf, outside /etc: "
                                  "not touched")


def test_every_link_that_leaves_etc_is_named():
    files = {p: FileState(p, exists=True, link_target=t) for p, t in (
        ("/etc/pam.d/smtp", "/srv/smtp"), ("/etc/postfix/tls/key.pem", "/home/admin/key.pem"),
        ("/etc/postfix/main.cf", "/etc/postfix/main.cf.site"),  # inside: followed
        ("/var/lib/provisioner/verified", "/srv/verified"),  # not a file under /etc
    )}
    from provisioner.model import Facts
    with pytest.raises(StepError, match=r"^h: /etc/pam\.d/smtp is a symlink to /srv/smtp, outside /etc: not touched; "
                                        r"/etc/postfix/tls/key\.pem is a symlink to /home/admin/key\.pem"):
        refuse_outside_links("h", Facts(files=files))
    refuse_outside_links("h", Facts(files={p: s for p, s in files.items() if "smtp" not in p and "key" not in p}))


def test_a_link_into_etc_ending_elsewhere_is_judged_by_where_it_ends():
    from provisioner.model import Facts
    state = FileState("/etc/postfix/main.cf", exists=True, link_target="/etcetera/main.cf")
    with pytest.raises(StepError, match="outside /etc"):
        refuse_outside_links("h", Facts(files={state.path: state}))


def test_a_write_through_a_link_inside_etc_writes_the_target_and_keeps_the_link():
    before = FileState(MAIN_CF, exists=True, content="a = 1\n", mode="644", owner="root", group="root",
                       link_target="/etc/postfix/main.cf.site")
    change = write_change("main_cf", "update", before, "a = 2\n")
    (write,) = change.actions
    assert isinstance(write, WriteFile) and write.path == "/etc/postfix/main.cf.site"
    assert change.writes == ("/etc/postfix/main.cf.site",)
    assert change.diff.startswith(f"--- {MAIN_CF}\n+++ {MAIN_CF}\n")  # what the admin knows the file as
    from provisioner.model import Facts
    after = apply_effects(Facts(files={MAIN_CF: before}), [change])
    assert after.file(MAIN_CF).link_target == "/etc/postfix/main.cf.site" and after.file(MAIN_CF).content == "a = 2\n"
    assert after.file("/etc/postfix/main.cf.site").content == "a = 2\n"


def test_main_cf_behind_a_link_inside_etc_converges_through_it():
    facts = recorded_host("debian12-converged.json", lab_vars())
    main = facts.file(MAIN_CF)
    drifted = dataclasses.replace(main, content=main.content.replace("smtpd_tls_loglevel = 0", "smtpd_tls_loglevel = 2"),
                                  link_target="/etc/postfix/main.cf.site")
    facts = facts.with_file(drifted)
    (change,) = MainCf().check(lab_context(facts))
    assert change.summary == f"update {MAIN_CF}: set smtpd_tls_loglevel = 0"
    assert change.actions[0].path == "/etc/postfix/main.cf.site"
    assert change.actions[0].settled  # Postfix reads it at once (see WriteFile.settled)
    assert MainCf().check(lab_context(apply_effects(facts, [change]))) == []


def test_attributes_of_a_link_are_set_on_its_target():
    state = FileState("/etc/postfix/tls/key.pem", exists=True, mode="644", owner="root", group="root",
                      link_target="/etc/postfix/key.site.pem")
    change = attributes_change("tls", state, "600")
    assert change.summary == "set mode 600 on /etc/postfix/tls/key.pem"
    assert change.actions == (SetAttributes("/etc/postfix/key.site.pem", mode="600"),)
    assert attributes_change("tls", dataclasses.replace(state, mode="600"), "600") is None


# ------------------------------------------------------------ owner and mode


def test_one_wording_for_attributes():
    state = FileState("/etc/x", exists=True, mode="666", owner="mailuser", group="mailuser")
    assert attributes_change("s", state, "644").summary == "set owner root:root and mode 644 on /etc/x"
    assert attributes_change("s", dataclasses.replace(state, mode="644"), "644").summary == "set owner root:root on /etc/x"
    assert attributes_change("s", dataclasses.replace(state, owner="root", group="root"), "644").summary == (
        "set mode 644 on /etc/x")
    assert attributes_change("s", dataclasses.replace(state, mode="0644", owner="root", group="root"), "644") is None


def test_a_rewrite_writes_the_wanted_attributes_never_the_drifted_ones():
    facts = recorded_host("debian12-converged.json", lab_vars())
    saslauthd = facts.file("/etc/default/saslauthd")
    facts = facts.with_file(dataclasses.replace(
        saslauthd, content=saslauthd.content.replace("START=yes", "START=no"), mode="666", owner="mailuser",
        group="mailuser"))
    (change,) = [c for c in Sasl().check(context(facts, DEBIAN12)) if "saslauthd" in c.summary]
    (write,) = [a for a in change.actions if isinstance(a, WriteFile)]
    assert (write.mode, write.owner, write.group) == ("644", "root", "root")
    # The plan names every drift it repairs, the attributes too.
    assert change.summary == ("update /etc/default/saslauthd: set START=yes; "
                              "set owner root:root and mode 644 on /etc/default/saslauthd")


# ------------------------------------------------------------ CR line endings


def test_cr_at_the_end_of_a_line():
    assert has_cr("a\r\nb\n") and has_cr("a\nb\r") and has_cr("a\r\r\n")
    assert not has_cr("a\nb\n") and not has_cr("a\rb\n")  # a CR inside a line is text
    assert with_lf("a\r\nb\r\r\nc\r") == "a\nb\nc"
    assert with_lf("a\rb\n") == "a\rb\n"


def test_pam_smtp_with_crlf_is_rewritten_with_lf_and_converges():
    facts = recorded_host("debian12-converged.json", lab_vars())
    smtp = facts.file(PAM_SMTP)
    facts = facts.with_file(dataclasses.replace(smtp, content=smtp.content.replace("\n", "\r\n")))
    ctx = context(facts, DEBIAN12, mail_users=["mailuser"], mail_group="mail_login")
    (change,) = [c for c in Pam().check(ctx) if PAM_SMTP in c.summary]
    assert change.summary == f"rewrite {PAM_SMTP} with LF line endings"
    assert change.actions[0].content == smtp.content and "saslauthd:restart" in change.notify
    assert "\\r" in change.diff and "\r" not in change.diff  # the CR is shown, not sent raw to the terminal
    after = apply_effects(facts, [change])
    assert [c for c in Pam().check(context(after, DEBIAN12, mail_users=["mailuser"], mail_group="mail_login"))
            if PAM_SMTP in c.summary] == []


def test_pam_smtp_with_crlf_and_no_restriction_gets_both_in_one_write():
    text = "#%PAM-1.0\r\nauth include password-auth\r\n"
    facts = EL8_FACTS(text)
    (change,) = [c for c in Pam().check(context(facts, EL8, mail_users=[], mail_group="g")) if PAM_SMTP in c.summary]
    assert change.summary.endswith("(and LF line endings)")
    assert change.actions[0].content == f"#%PAM-1.0\n{PAM_LISTFILE_LINE}\nauth include password-auth\n"


def EL8_FACTS(text: str):
    from provisioner.model import Facts
    return Facts(groups={"g": ()}, files={PAM_SMTP: FileState(PAM_SMTP, exists=True, content=text, mode="644",
                                                              owner="root", group="root")})


def test_saslauthd_settings_with_crlf_are_drift():
    facts = recorded_host("debian12-converged.json", lab_vars())
    state = facts.file("/etc/default/saslauthd")
    facts = facts.with_file(dataclasses.replace(state, content=state.content.replace("\n", "\r\n")))
    (change,) = [c for c in Sasl().check(context(facts, DEBIAN12)) if "saslauthd" in c.summary]
    assert change.summary == "update /etc/default/saslauthd: rewrite it with LF line endings"
    assert change.actions[0].content == state.content and change.notify == frozenset({"saslauthd:restart"})


# ------------------------------------------------------------ bytes that are not UTF-8


def test_a_byte_that_is_not_utf8_goes_back_as_it_came():
    write = WriteFile("/etc/postfix/main.cf", "a = 1\n" + LATIN1)
    payload = re.search(r"printf %s '?([A-Za-z0-9+/=]+)'?", write.render()).group(1)
    assert base64.b64decode(payload) == b"a = 1\n# r\xe9glage du site\n"


def test_diffs_show_such_a_byte_escaped():
    diff = unified_diff("/etc/aliases", "root: admin\n" + LATIN1, "root: mailuser\n" + LATIN1)
    assert "\\xe9" in diff and "\udce9" not in diff
    diff.encode("utf-8")  # printable, storable in JSON
    assert shown("caf\u00e9") == "caf\u00e9"  # real UTF-8 text stays as it is


def test_main_cf_with_a_latin1_comment_is_edited_and_keeps_the_byte():
    facts = recorded_host("debian12-converged.json", lab_vars())
    main = facts.file(MAIN_CF)
    content = main.content.replace("smtpd_tls_session_cache_timeout = 10800s",
                                   "smtpd_tls_session_cache_timeout = 3600s") + LATIN1
    (change,) = MainCf().check(lab_context(facts.with_file(dataclasses.replace(main, content=content))))
    assert change.summary == f"update {MAIN_CF}: set smtpd_tls_session_cache_timeout = 10800s"
    assert change.actions[0].content.endswith(LATIN1)
    change.script()  # the step script is built (it used to die on str.encode())


def test_a_renewed_self_signed_pair_is_written_through_links_inside_etc():
    from datetime import datetime, timezone

    from provisioner.model import Facts
    from provisioner.steps.tls import tls_changes

    key = FileState("/etc/postfix/tls/key.pem", exists=True, mode="600", owner="root", group="root",
                    link_target="/etc/postfix/key.site.pem")
    cert = FileState("/etc/postfix/tls/cert.pem", exists=True, content="not a certificate", mode="644",
                     owner="root", group="root", link_target="/etc/postfix/cert.site.pem")
    facts = Facts(files={key.path: key, cert.path: cert},
                  extra={"tls_dir": {"mode": "755", "owner": "root", "group": "root"}})
    vars = lab_vars()
    changes = tls_changes(vars, DEBIAN12, facts, (), datetime(2026, 3, 1, tzinfo=timezone.utc))
    (renew,) = [c for c in changes if c.summary.startswith("renew")]
    (action,) = renew.actions
    assert (action.key, action.cert) == ("/etc/postfix/key.site.pem", "/etc/postfix/cert.site.pem")
    assert apply_effects(facts, [renew]).file(key.path).link_target == "/etc/postfix/key.site.pem"


def test_saslauthd_s_unit_drop_in_has_its_attributes_checked_too():
    from provisioner.model import Facts
    from provisioner.platforms import DEBIAN13

    dropin = DEBIAN13.saslauthd_unit_dropin
    state = FileState(dropin.path, exists=True, content=dropin.content, mode="666", owner="root", group="root")
    changes = Sasl().check(context(Facts(files={dropin.path: state}), DEBIAN13))
    assert f"set mode 644 on {dropin.path}" in [c.summary for c in changes]
