"""The peers' desired state, as data, from provisioner's own (``provisioner.desired.desired_state``).

The peers (tooling/bench/ansible, tooling/bench/pyinfra) read only the JSON
written from ``peer_desired``, so their desired state cannot drift from
provisioner's: every line is the one provisioner writes.
"""

from __future__ import annotations

from typing import Any

from provisioner.desired import KeyedLines, desired_state
from provisioner.platforms import DEBIAN12, Platform
from provisioner.vars import MailVars


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
        "pam_smtp": {"path": state.pam_smtp.path, "line": state.pam_smtp.lines[0][1]},
        "pam_allow_file": {"path": state.pam_allow_file.path, "content": state.pam_allow_file.content},
        "mail_group": state.mail_group,
        "mail_users": list(state.mail_users),
        "virtual_map": {"path": state.virtual_map.path, "content": state.virtual_map.content},
        "aliases": {"path": state.aliases.path, "root_line": root_lines.get("root")},
        "services": list(state.services),
    }
