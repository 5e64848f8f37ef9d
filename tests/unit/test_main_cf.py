"""The main.cf editor: in place, comments and unmanaged keys kept, idempotent."""

from provisioner.keyedit import current_values, edit_main_cf, normalize

STOCK = """# See /usr/share/postfix/main.cf.dist for a commented, more complete version

smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no

# TLS parameters
smtpd_use_tls=yes
#myhostname = host.domain.tld
mydestination = $myhostname, lab1.example.test,
    localhost
relayhost =
"""


def test_replaces_where_it_stands_and_keeps_the_rest():
    new, set_keys, removed = edit_main_cf(STOCK, {"myhostname": "mail.example.com", "mydestination": "localhost", "smtpd_use_tls": None, "biff": "no"})
    assert set_keys == ["myhostname", "mydestination"] and removed == ["smtpd_use_tls"]
    lines = new.splitlines()
    assert lines[0].startswith("# See /usr/share")
    assert "smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)" in lines
    # the commented-out key is replaced on its own line, in place
    assert lines.index("myhostname = mail.example.com") == lines.index("# TLS parameters") + 1
    # the continuation line of the old value is gone with it
    assert "    localhost" not in lines and "mydestination = localhost" in lines
    assert not any(line.startswith("smtpd_use_tls") for line in lines)
    assert lines[-1] == "relayhost ="


def test_second_edit_is_a_no_op():
    settings = {"myhostname": "mail.example.com", "smtpd_recipient_restrictions": "a, b", "new_key": "x", "gone": None}
    once, _, _ = edit_main_cf(STOCK, settings)
    twice, set_keys, removed = edit_main_cf(once, settings)
    assert twice == once and set_keys == [] and removed == []


def test_values_compare_as_postfix_reads_them():
    assert normalize("permit_sasl_authenticated,permit_mynetworks") == normalize("permit_sasl_authenticated,  permit_mynetworks")
    text = "smtpd_recipient_restrictions = permit_sasl_authenticated,\n    permit_mynetworks, reject_unauth_destination\n"
    assert current_values(text)["smtpd_recipient_restrictions"] == "permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination"
    new, set_keys, _ = edit_main_cf(text, {"smtpd_recipient_restrictions": "permit_sasl_authenticated,permit_mynetworks,reject_unauth_destination"})
    assert set_keys == [] and new == text


def test_duplicate_definitions_collapse_to_one():
    new, set_keys, _ = edit_main_cf("a = 1\nb = 2\na = 3\n", {"a": "4"})
    assert new == "a = 4\nb = 2\n" and set_keys == ["a"]


def test_empty_value_and_new_file():
    new, set_keys, _ = edit_main_cf("", {"relay_domains": "", "myhostname": "m.example.com"})
    assert new.endswith("relay_domains =\nmyhostname = m.example.com\n")
    assert new.startswith("# Postfix main.cf, managed by provisioner")
