"""The peers' desired state, as data, from provisioner's own (``provisioner.desired.desired_state``).

The peers (tooling/bench/ansible, tooling/bench/pyinfra) read only the JSON
written from ``peer_desired``, so their desired state cannot drift from
provisioner's: every line is the one provisioner writes.
"""

from __future__ import annotations

from typing import Any

from provisioner.certs import FFDHE2048_PEM
from provisioner.desired import DH_PARAMS, TLS_CERT, TLS_DIR, TLS_KEY, KeyedLines, desired_state
from provisioner.steps.firewall.lockdown import open_ports
from provisioner.steps.pam import new_pam_smtp
from provisioner.platforms import DEBIAN12, Platform
from provisioner.vars import MailVars


#: The peers' record that their job completed once (provisioner's is its verified marker): while it is
#: absent, the peers lock port 25 down before configuring and lift it at the end.
PEER_MARKER = "/var/lib/bench-peers-converged"
PEER_NFT_TABLE = "bench_lockdown"


def nft_lockdown(control_address: str, ports: list[int]) -> str:
    """The nft script of the peers' lockdown: like provisioner's, the mail ports closed but to the control node."""
    words = ", ".join(map(str, ports))
    return (f"table inet {PEER_NFT_TABLE}\ndelete table inet {PEER_NFT_TABLE}\n"
            f"table inet {PEER_NFT_TABLE} {{\n"
            "\tchain input {\n"
            "\t\ttype filter hook input priority -10; policy accept;\n"
            f"\t\tip saddr {control_address} tcp dport {{ {words} }} accept\n"
            f"\t\ttcp dport {{ {words} }} reject with tcp reset\n"
            "\t}\n}\n")


def _lines(keyed: KeyedLines) -> list[dict[str, str]]:
    return [{"key": key, "line": line} for key, line in keyed.lines]


def peer_desired(vars: MailVars, platform: Platform = DEBIAN12) -> dict[str, Any]:
    """The desired state the peers check, in the shape the playbook and the deploy read."""
    state = desired_state(vars, platform)
    root_lines = dict(state.aliases.lines)
    return {
        "main_cf_path": state.main_cf.path,
        "main_cf_set": _lines(state.main_cf),
        "main_cf_absent": list(state.main_cf.absent),
        "mail_packages": list(state.packages),
        "sendmail_packages": list(state.removed_packages),
        "smtpd_sasl_conf": {"path": state.smtpd_sasl_conf.path, "content": state.smtpd_sasl_conf.content},
        "saslauthd_defaults": {"path": state.saslauthd_defaults.path, "lines": _lines(state.saslauthd_defaults)},
        "pam_smtp": {"path": state.pam_smtp.path, "line": state.pam_smtp.lines[0][1],
                     # what provisioner writes where the file is missing
                     "new_content": new_pam_smtp(platform.pam_smtp_tail, state.pam_smtp.lines[0][1])},
        "pam_allow_file": {"path": state.pam_allow_file.path, "content": state.pam_allow_file.content},
        "mail_group": state.mail_group,
        "mail_users": list(state.mail_users),
        "virtual_map": {"path": state.virtual_map.path, "content": state.virtual_map.content},
        "aliases": {"path": state.aliases.path, "root_line": root_lines.get("root")},
        "services": list(state.services),
        "firewall": {
            "packages": list(platform.firewall_install),
            "marker": PEER_MARKER,
            "nft_lockdown": nft_lockdown(vars.control_address or "", sorted(open_ports(vars))),
            "nft_lift": f"delete table inet {PEER_NFT_TABLE}\n",
        },
        "tls": {
            "dir": TLS_DIR,
            "cert": TLS_CERT,
            "key": TLS_KEY,
            "subject": f"/CN={vars.myhostname}",
            "days": vars.self_signed_days,
            "dh_params": {"path": DH_PARAMS, "content": FFDHE2048_PEM},
        },
    }
