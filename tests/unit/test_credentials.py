"""Verify credentials: file or environment, never readable by others, both accounts required."""

import pytest

from provisioner import app
from provisioner.credentials import CredentialsError, load
from provisioner.inventory import Host
from provisioner.vars import MailVars


def write(tmp_path, text, mode=0o600):
    path = tmp_path / "creds.yaml"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_per_host_entry_and_environment_override(tmp_path):
    path = write(tmp_path, "mail1: {user: alice, password: s3cret, outsider_user: bob, outsider_password: pw}\n")
    creds = load("mail1", path, environ={"PROVISIONER_VERIFY_PASSWORD": "from-env"})
    assert (creds.user, creds.password, creds.outsider_user) == ("alice", "from-env", "bob")
    assert "from-env" not in repr(creds) and "pw" not in repr(creds)


def test_file_readable_by_others_is_refused(tmp_path):
    path = write(tmp_path, "user: alice\n", mode=0o644)
    with pytest.raises(CredentialsError, match="readable by others.*chmod 600"):
        load("mail1", path, environ={})


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, "mail1: {user: alice, pasword: x}\n")
    with pytest.raises(CredentialsError, match="mail1: unknown key 'pasword'"):
        load("mail1", path, environ={})


def test_verify_refuses_to_start_without_the_outsider_account(tmp_path):
    path = write(tmp_path, "user: alice\npassword: s3cret\n")
    host = Host(name="mail1", address="192.0.2.1",
                vars=MailVars(myhostname="mail1.example.com", mydomain="example.com", verify_credentials_file=path))
    with pytest.raises(CredentialsError, match="mail1: verify needs a mail user in mail_login and a real account outside it"):
        app.verify_target(host, None)
