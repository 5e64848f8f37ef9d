"""Secrets stay out of summaries, diffs, errors and the JSON report alike."""

import json

from provisioner import report
from provisioner.redaction import REDACTED, Redactor, is_file_reference, secret_settings
from provisioner.engine.runner import ChangeRecord, HostReport, RunReport
from provisioner.vars import MailVars

INLINE = "inline:{relay.example.com=relayuser:Sup3rSecret}"
VARS = MailVars(
    myhostname="mail1.example.com",
    mydomain="example.com",
    main_cf={
        "smtp_sasl_password_maps": INLINE,
        "lmtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
        "relayhost": {"secret": "[relay.internal.example.com]:587"},
        "ldapsource_bind_pw": "ldap-pw-1",
        "smtpd_tls_loglevel": "1",
    },
)


def test_which_settings_are_secret():
    assert VARS.secret_main_cf == {"relayhost"}
    assert secret_settings(VARS) == {
        "smtp_sasl_password_maps": INLINE,
        "relayhost": "[relay.internal.example.com]:587",
        "ldapsource_bind_pw": "ldap-pw-1",
    }
    assert is_file_reference("hash:/etc/postfix/sasl_passwd, proxy:mysql:/etc/postfix/m.cf")
    assert not is_file_reference("static:user:pass") and not is_file_reference(INLINE)


def _report():
    summary = ("update /etc/postfix/main.cf: set smtp_sasl_password_maps = " + INLINE
               + ", relayhost = [relay.internal.example.com]:587, smtpd_tls_loglevel = 1")
    diff = (
        "--- /etc/postfix/main.cf\n+++ /etc/postfix/main.cf\n"
        "-smtp_sasl_password_maps = inline:{relay.example.com=relayuser:0ldSecret,\n"
        "-    backup.example.com=relayuser:0ldSecret2}\n"
        f"+smtp_sasl_password_maps = {INLINE}\n"
        " lmtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd\n"
        "-relayhost = [old-relay.example.com]\n"
        "+relayhost = [relay.internal.example.com]:587\n"
        "+ldapsource_bind_pw = ldap-pw-1\n"
        " smtpd_tls_loglevel = 1\n"
    )
    error = ("step services: postfix check failed with exit status 1: postconf: warning: "
             "smtp_sasl_password_maps=inline:{x=y:Other} | fatal: bad relayhost [relay.internal.example.com]:587")
    host = HostReport(name="mail1", status="failed", changes=[ChangeRecord("main_cf", summary, diff)], error=error)
    return RunReport(dry_run=False, hosts={"mail1": host})


SECRETS = ("Sup3rSecret", "0ldSecret", "relay.internal.example.com", "old-relay", "ldap-pw-1", "Other")


def test_json_report_has_no_secret():
    redactor = Redactor.for_vars([VARS])
    text = json.dumps(report.to_json(_report(), redactor))
    assert not [s for s in SECRETS if s in text], text
    entry = json.loads(text)["hosts"]["mail1"]
    assert entry["changes"][0]["summary"] == (
        f"update /etc/postfix/main.cf: set smtp_sasl_password_maps = {REDACTED}, relayhost = {REDACTED}, "
        "smtpd_tls_loglevel = 1"
    )
    assert "-    [redacted]" in entry["changes"][0]["diff"]  # the continuation line of the old value
    assert " lmtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd" in entry["changes"][0]["diff"]
    assert entry["error"].startswith("step services: postfix check failed")


def test_terminal_report_has_no_secret(capsys):
    console = report.make_console()
    report.print_report(console, _report(), show_diff=True, redactor=Redactor.for_vars([VARS]))
    out = capsys.readouterr().out
    assert "smtp_sasl_password_maps" in out and "smtpd_tls_loglevel = 1" in out
    assert not [s for s in SECRETS if s in out], out


def test_credential_named_keys_are_redacted_even_without_the_inventory():
    text = Redactor().text("+smtp_sasl_password_maps = static:relayuser:pw\n+relayhost = [r.example.com]\n")
    assert text == f"+smtp_sasl_password_maps = {REDACTED}\n+relayhost = [r.example.com]\n"


def test_urls_pem_and_passwords():
    redactor = Redactor(values=["verify-pw-123"])
    assert redactor.text("server_host = ldap://cn:ldap-secret@ldap.example.com/") == \
        f"server_host = ldap://cn:{REDACTED}@ldap.example.com/"
    assert "MIIE" not in redactor.text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    assert redactor.text("AUTH as alice with verify-pw-123") == f"AUTH as alice with {REDACTED}"


def test_places_in_an_input_file_are_not_taken_for_settings():
    assert Redactor().text("creds.yaml: mail1.password: control character U+000D in a value") == \
        "creds.yaml: mail1.password: control character U+000D in a value"


def test_one_error_line_whatever_the_message_holds(capsys):
    report.print_error(report.make_console(), "hosts.yaml: no host named 'a\nb\x1b[31m' :smile:")
    assert capsys.readouterr().out == "error: hosts.yaml: no host named 'a\\nb\\x1b[31m' :smile:\n"
