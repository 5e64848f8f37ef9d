"""Inventory validation: every bad input names the file, the host or the key."""

import textwrap

import pytest

from provisioner.inventory import InventoryError, load

BASE = """
defaults:
  user: root
  key: keys/id
  known_hosts: known_hosts
  ssh_config: /dev/null
  vars:
    mydomain: example.com
    main_cf: {smtpd_tls_loglevel: "1", mynetworks: 127.0.0.0/8}
groups:
  mail:
    hosts: [mail1, mail2]
    vars:
      mail_users: [alice]
      main_cf: {smtpd_tls_loglevel: "2"}
hosts:
  mail1:
    address: 192.0.2.10
    vars: {myhostname: mail1.example.com, main_cf: {mynetworks: null}}
  mail2:
    address: 192.0.2.11
    port: 2222
    sudo: true
    user: deploy
    vars: {myhostname: mail2.example.com}
"""


def write(tmp_path, text, name="hosts.yaml"):
    """The inventory, with the key and known_hosts files it names."""
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "id").write_text("not a real key\n")
    (tmp_path / "keys" / "id").chmod(0o600)
    (tmp_path / "known_hosts").write_text("")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_precedence_host_over_group_over_defaults(tmp_path):
    inv = load(write(tmp_path, BASE))
    mail1, mail2 = inv.hosts["mail1"], inv.hosts["mail2"]
    assert mail1.vars.main_cf == {"smtpd_tls_loglevel": "2", "mynetworks": None}
    assert mail2.vars.main_cf == {"smtpd_tls_loglevel": "2", "mynetworks": "127.0.0.0/8"}
    assert mail1.vars.mail_users == ["alice"] and mail1.vars.mydomain == "example.com"
    assert (mail2.port, mail2.user, mail2.sudo) == (2222, "deploy", True)
    assert mail1.key == str((tmp_path / "keys" / "id").resolve())
    assert inv.groups == {"mail": ("mail1", "mail2")}


def test_selection(tmp_path):
    inv = load(write(tmp_path, BASE))
    assert [h.name for h in inv.select(group="mail")] == ["mail1", "mail2"]
    assert [h.name for h in inv.select(["mail2"])] == ["mail2"]
    with pytest.raises(InventoryError, match=r"hosts.yaml: no host named 'mail9' \(hosts: mail1, mail2\)"):
        inv.select(["mail9"])
    with pytest.raises(InventoryError, match="no group named 'web'"):
        inv.select(group="web")
    with pytest.raises(InventoryError, match="choose hosts"):
        inv.select()


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda t: t.replace("port: 2222", "prot: 2222"), r"hosts.yaml: hosts.mail2.prot: unknown key"),
        (lambda t: t.replace("port: 2222", "port: '2222'"), r"hosts.yaml: hosts.mail2.port: Input should be a valid integer"),
        (lambda t: t.replace("sudo: true", "sudo: maybe"), r"hosts.mail2.sudo: Input should be a valid boolean"),
        (lambda t: t.replace("    address: 192.0.2.11\n", ""), r"hosts.mail2.address: required key is missing"),
        (lambda t: t.replace("{myhostname: mail2.example.com}", "{myhostname: mail2.example.com, mian_cf: {}}"),
         r"hosts.mail2.vars.mian_cf: unknown key"),
        (lambda t: t.replace("{myhostname: mail2.example.com}", "{}"), r"hosts.mail2.vars.myhostname: required key is missing"),
        (lambda t: t.replace("mail_users: [alice]", "mail_users: alice"), r"groups.mail.vars.mail_users: Input should be a valid list"),
        (lambda t: t.replace('smtpd_tls_loglevel: "2"', "smtpd_tls_loglevel: 2"),
         r"groups.mail.vars.main_cf.smtpd_tls_loglevel: Input should be a valid string"),
        (lambda t: t.replace("mydomain: example.com", "mydomain: 'bad domain'"),
         r"defaults.vars.mydomain: 'bad domain' is not a valid DNS name"),
        (lambda t: t.replace("hosts: [mail1, mail2]", "hosts: [mail1, mail3]"), r"groups.mail.hosts: no host named 'mail3'"),
        (lambda t: t.replace("{myhostname: mail2.example.com}", "{myhostname: mail2.example.com, tls_cert: /nonexistent.pem, tls_key: /nonexistent.key}"),
         r"hosts.mail2.vars.tls_cert: file /nonexistent.pem does not exist on this machine"),
    ],
)
def test_bad_input_names_file_and_key(tmp_path, mutate, message):
    with pytest.raises(InventoryError, match=message):
        load(write(tmp_path, mutate(BASE)))


def test_malformed_yaml_names_line_and_column(tmp_path):
    with pytest.raises(InventoryError, match=r"hosts.yaml:\d+:\d+: malformed YAML: expected"):
        load(write(tmp_path, "hosts:\n  mail1:\n    address: [unclosed\n"))


def test_missing_file(tmp_path):
    with pytest.raises(InventoryError, match="nope.yaml: inventory file not found"):
        load(tmp_path / "nope.yaml")


def test_example_inventory_is_valid(tmp_path, monkeypatch):
    from pathlib import Path

    # The files it names in ~/.ssh must exist: give it a home of its own.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("")
    (tmp_path / ".ssh" / "id_ed25519").chmod(0o600)
    (tmp_path / ".ssh" / "known_hosts").write_text("")
    inv = load(Path(__file__).resolve().parents[2] / "inventories" / "example.yaml")
    assert inv.hosts


def test_an_address_with_user_and_port_is_split(tmp_path):
    text = BASE.replace("    address: 192.0.2.10\n", "    address: deploy@192.0.2.10:2200\n")
    mail1 = load(write(tmp_path, text)).hosts["mail1"]
    assert (mail1.address, mail1.user, mail1.port) == ("192.0.2.10", "deploy", 2200)


def test_a_secret_main_cf_key_stays_secret_in_higher_layers(tmp_path):
    text = BASE.replace('main_cf: {smtpd_tls_loglevel: "1", mynetworks: 127.0.0.0/8}',
                        'main_cf: {relayhost: {secret: "[relay.example.com]"}}')
    text = text.replace("{myhostname: mail2.example.com}", "{myhostname: mail2.example.com, main_cf: {relayhost: '[other]'}}")
    inv = load(write(tmp_path, text))
    assert inv.hosts["mail1"].vars.main_cf["relayhost"] == "[relay.example.com]"
    assert inv.hosts["mail2"].vars.main_cf["relayhost"] == "[other]"
    assert inv.hosts["mail2"].vars.secret_main_cf == {"relayhost"}


def test_a_route_from_ssh_config_or_the_inventory(tmp_path):
    (tmp_path / "ssh_config").write_text("Host 192.0.2.*\n  ProxyJump bastion\nHost bastion\n  HostName 198.51.100.7\n")
    text = BASE.replace("ssh_config: /dev/null", "ssh_config: ssh_config")
    text = text.replace("    port: 2222\n", "    port: 2222\n    proxy_jump: none\n")
    inv = load(write(tmp_path, text))
    assert [j.address for j in inv.hosts["mail1"].jumps] == ["198.51.100.7"]
    assert inv.hosts["mail2"].jumps == ()
    text = text.replace("proxy_jump: none", "proxy_jump: jumper@bastion:2022")
    jump = load(write(tmp_path, text)).hosts["mail2"].jumps[0]
    assert (jump.address, jump.port, jump.user) == ("198.51.100.7", 2022, "jumper")


def test_an_admin_group_may_be_the_mail_group_when_nothing_changes_its_members(tmp_path):
    text = BASE.replace("mail_users: [alice]", "mail_users: []").replace("mydomain: example.com", "mydomain: example.com\n    mail_group: wheel")
    assert load(write(tmp_path, text)).hosts["mail1"].vars.mail_group == "wheel"


def test_local_delivery_reads_the_mailbox_the_alias_leads_to(tmp_path):
    text = BASE.replace("{myhostname: mail2.example.com}", "{myhostname: mail2.example.com, verify_local_delivery: "
                        "info@example.com, virtual_aliases: {info@example.com: Alice@example.com}}")
    assert load(write(tmp_path, text)).hosts["mail2"].vars.local_mailbox == "alice"
