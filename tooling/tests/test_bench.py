"""The bench's pure parts: the peers' desired state comes from provisioner's, and their outputs parse.

Nothing here times anything: speed is measured by `make bench`, never in tests.
"""

import json

from tooling.bench.peer_state import peer_desired
from tooling.bench.peers import ansible_changes, ansible_inventory, pyinfra_changes, pyinfra_inventory
from provisioner.desired import SMTPD_CONF, main_cf_settings, render_virtual
from provisioner.inventory import Host
from provisioner.vars import MailVars
from tooling.lab.inventory import LAB_GROUP_VARS
from provisioner.platforms import DEBIAN12
from provisioner.keyedit import edit_main_cf, edit_shell_vars
from provisioner.steps import aliases

LAB_VARS = MailVars(
    myhostname="lab1.example.test",
    control_address="10.200.1.1",
    **{k: v for k, v in LAB_GROUP_VARS.items() if k not in ("verify_credentials_file",)},
)

# What Debian 12's sasl2-bin ships (the managed variables and their neighbours).
DEBIAN_SASLAUTHD = """# Settings for saslauthd daemon
DESC="SASL Authentication Daemon"
NAME="saslauthd"
MECHANISMS="pam"
MECH_OPTIONS=""
THREADS=5
OPTIONS="-c -m /var/run/saslauthd"
"""


def test_main_cf_keys_and_values_come_from_main_cf_settings():
    settings = main_cf_settings(LAB_VARS, DEBIAN12)
    desired = peer_desired(LAB_VARS, DEBIAN12)
    assert [item["key"] for item in desired["main_cf_set"]] == [k for k, v in settings.items() if v is not None]
    assert desired["main_cf_absent"] == [k for k, v in settings.items() if v is None]
    # the lab's override and the deprecated key must be absent
    assert "smtpd_sender_restrictions" in desired["main_cf_absent"]
    assert "smtpd_use_tls" in desired["main_cf_absent"]
    lines = {item["key"]: item["line"] for item in desired["main_cf_set"]}
    assert lines["myhostname"] == "myhostname = lab1.example.test"
    assert lines["relay_domains"] == "relay_domains ="


def test_a_main_cf_provisioner_wrote_has_every_peer_line_and_no_absent_key():
    desired = peer_desired(LAB_VARS, DEBIAN12)
    written, _, _ = edit_main_cf("smtpd_use_tls=yes\nsmtpd_sender_restrictions = x\n", main_cf_settings(LAB_VARS, DEBIAN12))
    lines = written.splitlines()
    for item in desired["main_cf_set"]:
        assert lines.count(item["line"]) == 1
    for key in desired["main_cf_absent"]:
        assert not any(line.startswith(key) for line in lines)


def test_saslauthd_lines_match_what_provisioner_leaves_on_debian():
    desired = peer_desired(LAB_VARS, DEBIAN12)["saslauthd_defaults"]
    edited, _ = edit_shell_vars(DEBIAN_SASLAUTHD, DEBIAN12.saslauthd_settings)
    lines = edited.splitlines()
    assert desired["path"] == "/etc/default/saslauthd"
    for item in desired["lines"]:
        assert item["line"] in lines
    assert {item["key"] for item in desired["lines"]} == {"START", "MECHANISMS", "OPTIONS"}


def test_whole_files_and_lines_are_provisioner_s():
    desired = peer_desired(LAB_VARS, DEBIAN12)
    assert desired["smtpd_sasl_conf"] == {"path": "/etc/postfix/sasl/smtpd.conf", "content": SMTPD_CONF}
    assert desired["pam_allow_file"]["content"] == "mail_login\n"
    assert desired["virtual_map"]["content"] == render_virtual(LAB_VARS.virtual_aliases)
    assert desired["pam_smtp"]["line"].startswith("auth required pam_listfile.so")
    edited, _ = aliases.edit_aliases("postmaster:    root\n", "mailuser")
    assert desired["aliases"]["root_line"] in edited.splitlines()
    assert desired["mail_packages"] == ["postfix", "sasl2-bin", "libsasl2-modules"]
    assert "sendmail-bin" in desired["sendmail_packages"]
    assert desired["mail_group"] == "mail_login" and desired["mail_users"] == ["mailuser"]
    json.dumps(desired)  # the playbook and the deploy read it as JSON


def test_no_root_alias_and_kept_sendmail():
    vars = MailVars(myhostname="m.example.com", mydomain="example.com", remove_sendmail=False)
    desired = peer_desired(vars, DEBIAN12)
    assert desired["aliases"]["root_line"] is None and desired["sendmail_packages"] == []


def test_inventories_check_host_keys_strictly():
    host = Host(name="lab1", address="10.200.1.2", key="/k", known_hosts="/kh")
    hostvars = ansible_inventory(host)["all"]["children"]["bench"]["hosts"]["lab1"]
    assert "StrictHostKeyChecking=yes" in hostvars["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=/kh" in hostvars["ansible_ssh_common_args"]
    assert hostvars["ansible_ssh_private_key_file"] == "/k"
    namespace: dict = {}
    exec(pyinfra_inventory(host, "/d.json"), namespace)  # noqa: S102 - our own generated text
    ((address, data),) = namespace["bench"]
    assert address == "10.200.1.2"
    assert data["ssh_strict_host_key_checking"] == "yes" and data["ssh_known_hosts_file"] == "/kh"


def test_ansible_recap():
    out = "PLAY RECAP ***\nlab1 : ok=13   changed=0    unreachable=0    failed=0    skipped=0\n"
    assert ansible_changes(out) == 0
    assert ansible_changes(out.replace("changed=0", "changed=3")) == 3
    assert ansible_changes(out.replace("failed=0", "failed=1")) is None
    assert ansible_changes("no recap") is None


DRY = """--> Detected changes:
    Operation                                     Change   Conditional Change   
    mail packages installed                       -        -                    
    main.cf: smtpd_tls_loglevel                   {change}        -                    
    postfix check                                 -        1 (10.200.1.2)       

    Detected changes may not include every change pyinfra will execute.
"""


def test_pyinfra_dry_counts_only_the_change_column():
    assert pyinfra_changes(DRY.format(change="-"), apply=False) == 0
    assert pyinfra_changes(DRY.format(change="1"), apply=False) == 1
    assert pyinfra_changes("--> Connecting to hosts...\n", apply=False) is None


def test_pyinfra_apply_counts_successes():
    out = (
        "--> Starting operation: a\n    [10.200.1.2] No changes\n"
        "--> Starting operation: b\n    [10.200.1.2] Success\n"
        "--> Results:\n    Operation   Hosts   Success   Error   No Change\n"
    )
    assert pyinfra_changes(out, apply=True) == 1
    assert pyinfra_changes(out.replace("] Success", "] Error"), apply=True) is None


def test_peers_lock_down_the_ports_provisioner_locks_to_the_control_node_only():
    from tooling.bench.peer_state import PEER_NFT_TABLE

    firewall = peer_desired(LAB_VARS, DEBIAN12)["firewall"]
    script = firewall["nft_lockdown"]
    assert firewall["packages"] == list(DEBIAN12.firewall_install)
    assert "ip saddr 10.200.1.1 tcp dport { 25, 587 } accept" in script
    assert "tcp dport { 25, 587 } reject with tcp reset" in script
    assert script.startswith(f"table inet {PEER_NFT_TABLE}\ndelete table inet {PEER_NFT_TABLE}\n")
    assert firewall["nft_lift"] == f"delete table inet {PEER_NFT_TABLE}\n"


def test_peers_make_the_certificate_provisioner_makes():
    from provisioner.certs import FFDHE2048_PEM
    from provisioner.desired import DH_PARAMS, TLS_CERT, TLS_KEY

    tls = peer_desired(LAB_VARS, DEBIAN12)["tls"]
    assert (tls["cert"], tls["key"], tls["subject"]) == (TLS_CERT, TLS_KEY, f"/CN={LAB_VARS.myhostname}")
    assert tls["dh_params"] == {"path": DH_PARAMS, "content": FFDHE2048_PEM}
    main_cf = dict((i["key"], i["line"]) for i in peer_desired(LAB_VARS, DEBIAN12)["main_cf_set"])
    assert main_cf["smtpd_tls_cert_file"].endswith(TLS_CERT)
