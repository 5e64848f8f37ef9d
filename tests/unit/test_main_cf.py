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


# ------------------------------------------------------------------ logical lines, as Postfix's readlline reads them

COMMENTED_HEAD = """smtpd_sasl_authenticated_header = no
#smtpd_recipient_restrictions = permit_sasl_authenticated,
    permit_mynetworks,
    reject_unauth_destination
smtpd_tls_loglevel = 0
"""
RECIPIENTS = "permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination"


def test_an_indented_line_after_a_comment_continues_the_entry_above_it():
    # postconf says so: smtpd_sasl_authenticated_header = no permit_mynetworks, reject_unauth_destination
    assert normalize(current_values(COMMENTED_HEAD)["smtpd_sasl_authenticated_header"]) == \
        "no permit_mynetworks, reject_unauth_destination"
    assert "smtpd_recipient_restrictions" not in current_values(COMMENTED_HEAD)
    text = "a = 1,\n\n# about b\n    2\nb = 3\n"  # blank and comment lines inside a logical line are skipped
    assert current_values(text) == {"a": "1, 2", "b": "3"}


def test_a_commented_head_is_replaced_with_its_orphans_and_the_entry_above_is_set_back():
    settings = {"smtpd_sasl_authenticated_header": "no", "smtpd_recipient_restrictions": RECIPIENTS}
    new, set_keys, removed = edit_main_cf(COMMENTED_HEAD, settings)
    assert set_keys == ["smtpd_sasl_authenticated_header", "smtpd_recipient_restrictions"] and removed == []
    assert new == (f"smtpd_sasl_authenticated_header = no\nsmtpd_recipient_restrictions = {RECIPIENTS}\n"
                   "smtpd_tls_loglevel = 0\n")
    assert edit_main_cf(new, settings)[0] == new  # one run converges


def test_orphans_go_with_the_commented_head_even_below_an_unmanaged_key():
    text = "unmanaged = x\n#smtpd_recipient_restrictions = a,\n    b\n# prose\nnext = 1\n"
    new, set_keys, _ = edit_main_cf(text, {"smtpd_recipient_restrictions": "c"})
    assert new == "unmanaged = x\nsmtpd_recipient_restrictions = c\n# prose\nnext = 1\n"
    assert current_values(new)["unmanaged"] == "x"


def test_comments_inside_a_replaced_entry_stay():
    text = "mydestination = a,\n# the lab's name\n    b\nrelayhost =\n"
    new, _, _ = edit_main_cf(text, {"mydestination": "c"})
    assert new == "mydestination = c\n# the lab's name\nrelayhost =\n"
