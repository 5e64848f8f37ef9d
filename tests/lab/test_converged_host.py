"""testinfra checks of a converged host, as the peers' molecule verify stages do."""

from __future__ import annotations

import pytest
import testinfra

from conftest import host as lab_host, invoke


@pytest.fixture(scope="module")
def converged(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("testinfra")
    outcome = invoke("provision", "--inventory", "inventories/lab.yaml", "--host", "lab3", tmp=tmp)
    assert outcome.code == 0, outcome.out
    entry = lab_host(lab, "lab3")
    config = tmp / "ssh_config"
    config.write_text(
        f"Host lab3\n  HostName {entry.address}\n  User root\n  IdentityFile {lab.key_path}\n"
        f"  UserKnownHostsFile {lab.known_hosts_path}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel error\n"
    )
    return testinfra.get_host("ssh://lab3", ssh_config=str(config))


@pytest.mark.parametrize("name", ["postfix", "sasl2-bin", "libsasl2-modules"])
def test_mail_packages_installed(converged, name):
    assert converged.package(name).is_installed


@pytest.mark.parametrize("name", ["sendmail-bin", "sendmail-base", "sendmail-cf", "sendmail"])
def test_sendmail_is_gone(converged, name):
    assert not converged.package(name).is_installed


def test_services_running_and_enabled(converged):
    assert converged.process.filter(comm="master")
    assert converged.process.filter(comm="saslauthd")
    assert converged.service("postfix").is_enabled
    assert converged.run("ls /etc/rc2.d/ | grep -q '^S..saslauthd$'").rc == 0
    assert converged.socket("tcp://0.0.0.0:25").is_listening
    assert converged.socket("tcp://0.0.0.0:587").is_listening


def test_main_cf(converged):
    main_cf = converged.file("/etc/postfix/main.cf")
    assert (main_cf.user, main_cf.group, main_cf.mode) == ("root", "root", 0o644)
    postconf = converged.check_output("postconf -n")
    for line in [
        "myhostname = lab3.example.test",
        "smtpd_sasl_auth_enable = yes",
        "smtpd_tls_auth_only = yes",
        "smtpd_tls_security_level = may",
        "smtpd_tls_protocols = >=TLSv1.2",
        "smtpd_tls_mandatory_ciphers = high",
        "smtpd_tls_dh1024_param_file = /etc/postfix/tls/ffdhe2048.pem",
        "virtual_alias_maps = hash:/etc/postfix/virtual_users",
    ]:
        assert line in postconf.splitlines()
    assert "smtpd_use_tls" not in postconf
    assert converged.run("postfix check").rc == 0


def test_tls_files_owners_and_modes(converged):
    key = converged.file("/etc/postfix/tls/key.pem")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    cert = converged.file("/etc/postfix/tls/cert.pem")
    assert cert.mode == 0o644
    subject = converged.check_output("openssl x509 -in /etc/postfix/tls/cert.pem -noout -subject")
    assert "lab3.example.test" in subject
    dh = converged.check_output("openssl dhparam -in /etc/postfix/tls/ffdhe2048.pem -noout -text | head -1")
    assert "2048 bit" in dh


def test_sasl_and_pam(converged):
    assert converged.file("/etc/postfix/sasl/smtpd.conf").contains("^pwcheck_method: saslauthd$")
    defaults = converged.file("/etc/default/saslauthd")
    assert defaults.contains('^START=yes$') and defaults.contains('^MECHANISMS="pam"$')
    assert "sasl" in converged.user("postfix").groups
    pam = converged.file("/etc/pam.d/smtp").content_string.splitlines()
    first = next(line for line in pam if line.strip() and not line.startswith("#"))
    assert first == ("auth required pam_listfile.so onerr=fail item=group sense=allow "
                     "file=/etc/pam.d/mail_auth_group.allow")
    assert "mail_login" in converged.file("/etc/pam.d/mail_auth_group.allow").content_string.split()
    assert "mail_login" in converged.user("mailuser").groups
    assert "mail_login" not in converged.user("outsider").groups


def test_alias_dbs_no_older_than_their_sources(converged):
    for source in ("/etc/postfix/virtual_users", "/etc/aliases"):
        assert converged.file(source + ".db").mtime >= converged.file(source).mtime, source
    assert converged.file("/etc/aliases").contains("^root:[[:space:]]*mailuser$")
    assert converged.check_output("postmap -q info@example.test hash:/etc/postfix/virtual_users") == "mailuser"
