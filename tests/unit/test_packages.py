"""The packages step: what an install is predicted to bring, and how a real install's facts are reconciled.

A dry run plans later steps from predict_install (files of the packages to be
installed: exists, content unknown, from_package); the real run re-reads the
host and reconcile marks the same files from_package, content kept. Both
must lead later steps to the same summaries.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from provisioner.desired import MAIN_CF
from provisioner.model import Facts, FileState, Journaled, OsRelease, ServiceState, UserState, apply_effects
from provisioner.platforms import ALL, DEBIAN12, EL6, EL7, EL8
from provisioner.steps.main_cf import MainCf
from provisioner.steps.packages import Packages, predict_install, predict_remove

from .conftest import context, mail_vars
from .journal_harness import Run

DEBIAN_OS = OsRelease(id="debian", version_id="12")
EL7_OS = OsRelease(id="centos", version_id="7", id_like=("rhel", "fedora"))
EL7_PACKAGES = {
    "postfix": "2.10.1-9.el7",
    "cyrus-sasl": "2.1.26-24.el7_9",
    "cyrus-sasl-lib": "2.1.26-24.el7_9",
    "cyrus-sasl-plain": "2.1.26-24.el7_9",
}


EL_STOCK_MAIN_CF = """# Global Postfix configuration file.
#myhostname = host.domain.tld
inet_interfaces = localhost
inet_protocols = all
mydestination = $myhostname, localhost.$mydomain, localhost
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
"""


def absent(*paths: str) -> dict[str, FileState]:
    return {path: FileState(path=path) for path in paths}


def fresh_debian() -> Facts:
    # A bare Debian 12: group sasl comes from base-passwd, nothing of the mail packages.
    return Facts(
        os=DEBIAN_OS,
        files=absent("/etc/postfix/master.cf", "/etc/aliases", "/etc/default/saslauthd", MAIN_CF),
        groups={"sasl": ()},
        services={
            "postfix": ServiceState("postfix", exists=False),
            "postfix@-": ServiceState("postfix@-", exists=False),
            "saslauthd": ServiceState("saslauthd", exists=False),
        },
    )


def fresh_el7() -> Facts:
    return Facts(
        os=EL7_OS,
        packages={"cyrus-sasl-lib": "2.1.26-24.el7_9"},
        files=absent(MAIN_CF, "/etc/postfix/master.cf", "/etc/pam.d/smtp", "/etc/sasl2/smtpd.conf", "/etc/sysconfig/saslauthd"),
        services={"postfix": ServiceState("postfix", exists=False), "saslauthd": ServiceState("saslauthd", exists=False)},
    )


def check(step, platform, facts, **vars):
    return step.check(context(facts, platform, **vars))


# ---------------------------------------------------------------- predict_install


def test_debian_install_predicts_package_files_with_unknown_content():
    after = predict_install(fresh_debian(), DEBIAN12, DEBIAN12.mail_packages)
    assert after.file("/etc/postfix/master.cf") == FileState("/etc/postfix/master.cf", exists=True, from_package="postfix")
    assert after.file("/etc/aliases").from_package == "postfix"
    assert after.file("/etc/default/saslauthd") == FileState("/etc/default/saslauthd", exists=True, from_package="sasl2-bin")
    # "No configuration": Debian's postfix drops no main.cf
    assert not after.file(MAIN_CF).exists
    assert all(after.packages[name] == "(to be installed)" for name in DEBIAN12.mail_packages)


def test_debian_install_predicts_accounts_services_and_commands():
    after = predict_install(fresh_debian(), DEBIAN12, DEBIAN12.mail_packages)
    assert after.users["postfix"] == UserState("postfix", ("postfix",))  # not in sasl yet
    assert "postdrop" in after.groups and after.groups["sasl"] == ()
    # policy-rc.d keeps everything stopped: enabled postfix, disabled saslauthd, nothing active
    assert after.services["postfix"] == ServiceState("postfix", enabled=True, active=False)
    assert after.services["postfix@-"] == ServiceState("postfix@-", enabled=True, active=False)
    assert after.services["saslauthd"] == ServiceState("saslauthd", enabled=False, active=False)
    assert {"postconf", "postmap", "postalias", "newaliases", "postfix", "saslauthd", "testsaslauthd"} <= after.commands


def test_install_keeps_a_file_that_already_exists():
    # A purge leaves /etc/aliases behind (docs/notes/debian12-by-hand.md pitfall 12): not the package's file.
    left = FileState("/etc/aliases", exists=True, content="postmaster:    root\n", mode="644", owner="root", group="root")
    after = predict_install(fresh_debian().with_file(left), DEBIAN12, ("postfix",))
    assert after.file("/etc/aliases") == left


def test_install_keeps_existing_service_state():
    facts = fresh_debian().replace(services={"saslauthd": ServiceState("saslauthd", enabled=True, active=True)})
    after = predict_install(facts, DEBIAN12, ("sasl2-bin",))
    assert after.services["saslauthd"] == ServiceState("saslauthd", enabled=True, active=True)


@pytest.mark.parametrize("platform", [EL6, EL7, EL8], ids=lambda p: p.name)
def test_el_install_predicts_main_cf_from_postfix_and_no_postfix_instance(platform):
    after = predict_install(fresh_el7(), platform, ("postfix", "cyrus-sasl", "cyrus-sasl-plain"))
    for path in ("/etc/postfix/main.cf", "/etc/postfix/master.cf", "/etc/pam.d/smtp", "/etc/sasl2/smtpd.conf"):
        assert after.file(path) == FileState(path, exists=True, from_package="postfix"), path
    assert after.file("/etc/sysconfig/saslauthd").from_package == "cyrus-sasl"
    assert "postfix@-" not in after.services
    assert after.services["saslauthd"] == ServiceState("saslauthd", enabled=False, active=False)
    # the package that was installed before keeps its version
    assert after.packages["cyrus-sasl-lib"] == "2.1.26-24.el7_9" and after.packages["postfix"] == "(to be installed)"


def test_predict_remove_drops_only_the_named_packages():
    facts = Facts(packages={"sendmail": "8.14.7-6.el7", "sendmail-cf": "8.14.7-6.el7", "cyrus-sasl-lib": "2.1.26-24.el7_9"})
    after = predict_remove(facts, ("sendmail", "sendmail-cf"))
    assert after.packages == {"cyrus-sasl-lib": "2.1.26-24.el7_9"}


def test_effects_of_a_fresh_plan_leave_the_step_converged():
    for platform, facts in ((DEBIAN12, fresh_debian()), (EL7, fresh_el7())):
        facts = facts.replace(packages={**facts.packages, **{n: "1" for n in platform.sendmail_packages}})
        changes = check(Packages(), platform, facts)
        # Postfix goes in first and takes over as the MTA; sendmail is purged after.
        assert [c.summary.split()[0] for c in changes] == ["install", "remove"]
        assert check(Packages(), platform, apply_effects(facts, changes)) == []


# ---------------------------------------------------------------- reconcile


def test_reconcile_marks_the_files_of_newly_installed_packages_and_keeps_their_content():
    before = fresh_el7()
    shipped = FileState(MAIN_CF, exists=True, content=EL_STOCK_MAIN_CF, sha256="ab", mode="644", owner="root", group="root")
    sysconfig = FileState("/etc/sysconfig/saslauthd", exists=True, content="SOCKETDIR=/run/saslauthd\nMECH=pam\nFLAGS=\n")
    after = before.replace(packages=dict(EL7_PACKAGES)).with_file(shipped).with_file(sysconfig)
    changes = check(Packages(), EL7, before)
    reconciled = Packages().reconcile(before, after, changes, EL7)
    assert reconciled.file(MAIN_CF) == FileState(**{**shipped.__dict__, "from_package": "postfix"})
    assert reconciled.file(MAIN_CF).content == EL_STOCK_MAIN_CF
    assert reconciled.file("/etc/sysconfig/saslauthd").from_package == "cyrus-sasl"
    assert reconciled.packages == after.packages


def test_reconcile_leaves_files_that_existed_before_and_files_of_packages_installed_before():
    existing = FileState(MAIN_CF, exists=True, content="inet_interfaces = localhost\n")
    before = fresh_el7().replace(packages={"postfix": "2.10.1-9.el7", "cyrus-sasl-lib": "2.1.26-24.el7_9"}).with_file(existing)
    sysconfig = FileState("/etc/sysconfig/saslauthd", exists=True, content="MECH=pam\n")
    master = FileState("/etc/postfix/master.cf", exists=True, content="smtp inet n - n - - smtpd\n")
    after = before.replace(packages=dict(EL7_PACKAGES)).with_file(sysconfig).with_file(master)
    reconciled = Packages().reconcile(before, after, check(Packages(), EL7, before), EL7)
    assert reconciled.file(MAIN_CF).from_package is None
    # postfix was installed before this run: its files are the host's, not the package's
    assert reconciled.file("/etc/postfix/master.cf").from_package is None
    assert reconciled.file("/etc/sysconfig/saslauthd").from_package == "cyrus-sasl"


def test_dry_run_and_real_run_give_main_cf_the_same_summary():
    before = fresh_el7()
    changes = check(Packages(), EL7, before)
    planned = apply_effects(before, changes)
    assert planned.file(MAIN_CF).content is None
    dry = check(MainCf(), EL7, planned)

    shipped = FileState(MAIN_CF, exists=True, content=EL_STOCK_MAIN_CF, mode="644", owner="root", group="root")
    real_facts = Packages().reconcile(before, before.replace(packages=dict(EL7_PACKAGES)).with_file(shipped), changes, EL7)
    real = check(MainCf(), EL7, real_facts)
    assert [c.summary for c in dry] == [c.summary for c in real]
    assert dry[0].actions == () and real[0].actions  # the real run writes the edited file
    assert dry[0].notify == real[0].notify == frozenset({"postfix:restart"})


def test_keeping_sendmail_the_dry_run_and_the_real_run_edit_postfix_s_pam_file_alike():
    """alternatives --set makes /etc/pam.d/smtp postfix's: the pam step must plan the same in both runs."""
    from provisioner.steps.pam import Pam

    sendmail_pam = FileState("/etc/pam.d/smtp", exists=True, content="#%PAM-1.0\nauth include password-auth\n",
                             link_target="/etc/pam.d/smtp.sendmail")
    before = fresh_el7().replace(
        packages={"cyrus-sasl-lib": "2.1.26-24.el7_9", "sendmail": "8.14.7-6.el7"},
        users={"mailuser": UserState("mailuser", ("mailuser",))},
        extra={"mta_alternative": "/usr/sbin/sendmail.sendmail"},
    ).with_file(sendmail_pam).with_file(FileState("/etc/pam.d/smtp.postfix"))
    changes = check(Packages(), EL7, before, remove_sendmail=False, mail_users=["mailuser"])
    assert [c.summary.split(" (")[0] for c in changes] == [
        "install postfix, cyrus-sasl, cyrus-sasl-plain", "make postfix the mta alternative"]
    dry = check(Pam(), EL7, apply_effects(before, changes), mail_users=["mailuser"])

    postfix_pam = "#%PAM-1.0\nauth       include      password-auth\naccount    include      password-auth\n"
    after = before.replace(packages={**EL7_PACKAGES, "sendmail": "8.14.7-6.el7"},
                           extra={"mta_alternative": "/usr/sbin/sendmail.postfix"})
    after = after.with_file(FileState("/etc/pam.d/smtp", exists=True, content=postfix_pam,
                                      link_target="/etc/pam.d/smtp.postfix")).with_file(
        FileState("/etc/pam.d/smtp.postfix", exists=True, content=postfix_pam, mode="644"))
    real = check(Pam(), EL7, Packages().reconcile(before, after, changes, EL7), mail_users=["mailuser"])
    assert [c.summary for c in dry] == [c.summary for c in real]
    assert real[-1].summary.endswith("/etc/pam.d/smtp (file as shipped by postfix)")
    assert [a.path for a in real[-1].actions] == ["/etc/pam.d/smtp.postfix"]  # through the link, postfix's file
    # After the run the alternative is postfix's: nothing more to do.
    assert check(Packages(), EL7, after, remove_sendmail=False) == []


def test_an_old_el6_postfix_is_updated_in_the_plan_and_refused_if_it_stays():
    from provisioner.engine.walk import planned_changes
    from provisioner.steps.base import StepError

    old = {"postfix": "2.6.6-7.el6", "cyrus-sasl": "2.1.23-15.el6_6.2", "cyrus-sasl-lib": "2.1.23-15.el6_6.2",
           "cyrus-sasl-plain": "2.1.23-15.el6_6.2"}
    facts = Facts(os=OsRelease("centos", "6.10", ("rhel",)), packages=old, ssh_client_address="192.0.2.1",
                  users={"mailuser": UserState("mailuser", ("mailuser",))},
                  files={MAIN_CF: FileState(MAIN_CF, exists=True, content=EL_STOCK_MAIN_CF),
                         "/etc/postfix/master.cf": FileState("/etc/postfix/master.cf", exists=True,
                                                             content="smtp inet n - n - - smtpd\n")})
    vars = mail_vars(mail_users=["mailuser"], firewall_when_missing="skip")
    summaries = [c.summary for c in planned_changes("h", vars, facts)]
    assert "update postfix 2.6.6-7.el6 (TLSv1.1 and TLSv1.2 need 2.6.6-8.el6 or later)" in summaries
    assert any(s.startswith("update /etc/postfix/main.cf") for s in summaries)  # the dry run goes on
    with pytest.raises(StepError, match="postfix 2.6.6-7.el6 lacks TLSv1.1 and TLSv1.2"):
        check(MainCf(), EL6, facts)  # the real run, after an update that brought nothing newer
    assert check(MainCf(), EL6, facts.replace(packages={**old, "postfix": "2.6.6-8.el6_9.1"}))


# ---------------------------------------------------------------- the fact spec and the commands


def test_fact_spec_covers_every_family():
    spec = Packages().needs(mail_vars())
    for platform in ALL:
        assert set(platform.mail_packages + platform.sendmail_packages) <= set(spec.packages)
        for paths in platform.package_files.values():
            assert set(paths) <= set(spec.files)
        for service, _, _ in platform.package_services.values():
            assert service in spec.services
    assert "postfix@-" in spec.services


def test_debian_install_keeps_services_stopped_with_a_policy_rc_d_of_its_own():
    preseed, policy, configure, update, install, revert = DEBIAN12.install(("postfix", "sasl2-bin"))
    assert "postfix/main_mailer_type select No configuration" in preseed.render()
    assert policy.describe() == "write /usr/sbin/policy-rc.d (mode 755, root:root)" and "exit 101" in policy.content
    assert "provisioner" in policy.content  # marked: a leftover is never taken for the admin's
    assert "dpkg --configure -a" in configure.render()
    assert install.describe().endswith("--force-confold postfix sasl2-bin")
    assert revert.describe() == "put back /usr/sbin/policy-rc.d as it was before this run"


def _install(tmp_path: Path, apt_status: int, admin_policy: str | None = None):
    """The Debian install actions as a step script, with a fake apt-get that reports what policy-rc.d said."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    policy = tmp_path / "policy-rc.d"
    seen = tmp_path / "seen"
    for name in ("debconf-set-selections", "dpkg"):
        (bin_dir / name).write_text("#!/bin/sh\ncat >/dev/null 2>&1 || true\nexit 0\n")
    (bin_dir / "apt-get").write_text(
        f"#!/bin/sh\nif [ \"$1\" = install ]; then {policy} >/dev/null 2>&1; echo $? > {seen}; exit {apt_status}; fi\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    if admin_policy is not None:
        policy.write_text(admin_policy)
        policy.chmod(0o755)
    run = Run(tmp_path / "host")
    # Without the service records (Journaled.before): they would ask this machine's own service manager.
    actions = [a.action if isinstance(a, Journaled) else a for a in DEBIAN12.install(("postfix",))]
    body = "\n".join(a.render() for a in actions).replace("/usr/sbin/policy-rc.d", str(policy))
    result = run.step(f"PATH={bin_dir}:$PATH\n" + body)
    return run, result, policy, seen


def test_debian_install_refuses_service_starts_during_the_install_and_removes_its_policy_after(tmp_path):
    run, result, policy, seen = _install(tmp_path, 0)
    assert result.returncode == 0, result.stderr
    assert seen.read_text().strip() == "101"  # every start refused while the packages went in
    assert not policy.exists()
    run.close()


def test_a_failed_install_is_rolled_back_to_no_policy_rc_d(tmp_path):
    run, result, policy, _ = _install(tmp_path, 100)
    assert result.returncode != 0
    assert run.rollback()[-1] == "done\trolled-back"
    assert not policy.exists()
    run.close()


def test_the_admins_policy_rc_d_comes_back_after_the_install_and_after_a_rollback(tmp_path):
    admin = "#!/bin/sh\n# the admin's own\nexit 0\n"
    run, result, policy, seen = _install(tmp_path / "good", 0, admin) if (tmp_path / "good").mkdir() is None else None
    assert result.returncode == 0 and seen.read_text().strip() == "101"
    assert policy.read_text() == admin
    run.close()
    run, result, policy, _ = _install(tmp_path / "bad", 100, admin) if (tmp_path / "bad").mkdir() is None else None
    assert result.returncode != 0
    assert run.rollback()[-1] == "done\trolled-back"
    assert policy.read_text() == admin and oct(policy.stat().st_mode & 0o777) == "0o755"
    run.close()


def test_files_a_purge_takes_along_are_kept_across_it(tmp_path, monkeypatch):
    """The rendered commands, run for real: the purge (here an rm) deletes the file, it comes back as it was."""
    import os
    import subprocess

    from provisioner.model import Shell
    from provisioner.steps import packages

    monkeypatch.setattr(packages, "KEEP_DIR", str(tmp_path / "keep"))
    smtp, other = tmp_path / "smtp", tmp_path / "other"
    smtp.write_text("auth required pam_listfile.so\n# the admin's own line\n")
    other.write_text("stays\n")
    os.chmod(smtp, 0o640)
    for purge_deletes, name in ((True, "deleted"), (False, "left")):
        actions = packages.keeping((str(smtp), str(other)),
                                   (Shell("rm -f {0}", (str(smtp),)) if purge_deletes else Shell("true"),))
        subprocess.run(["sh", "-ec", "\n".join(a.render() for a in actions)], check=True)
        assert smtp.read_text() == "auth required pam_listfile.so\n# the admin's own line\n", name
        assert oct(smtp.stat().st_mode & 0o777) == "0o640" and other.read_text() == "stays\n"
        assert list((tmp_path / "keep").iterdir()) == []  # nothing left aside
    assert packages.keeping((), ("x",)) == ("x",)


def test_only_a_package_that_takes_the_file_keeps_it():
    from provisioner.platforms import DEBIAN12, EL7
    assert DEBIAN12.purge_takes == {"sendmail-base": ("/etc/pam.d/smtp",)}
    assert EL7.purge_takes == {}  # EL's /etc/pam.d/smtp is the mta alternatives link (steps/pam.py)
