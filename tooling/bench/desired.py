"""The peers' desired state, as data, from provisioner's own definitions.

The peers (tooling/bench/ansible, tooling/bench/pyinfra) read only the JSON
written from ``peer_desired``, so their desired state cannot drift from
provisioner's.
"""

from __future__ import annotations

from typing import Any

from provisioner.desired import (
    ALIASES,
    MAIN_CF,
    PAM_ALLOW_FILE,
    PAM_LISTFILE_LINE,
    PAM_SMTP,
    VIRTUAL_MAP,
    main_cf_settings,
)
from provisioner.platforms import DEBIAN12, Platform
from provisioner.steps.aliases import render_virtual
from provisioner.keyedit import main_cf_line
from provisioner.steps.pam import allow_file_content
from provisioner.keyedit import shell_line
from provisioner.steps.sasl import SMTPD_CONF
from provisioner.vars import MailVars

def peer_desired(vars: MailVars, platform: Platform = DEBIAN12) -> dict[str, Any]:
    """The desired state the peers check, as data, from provisioner's own definitions.

    Lines are rendered exactly as provisioner writes them, so that a host
    provisioner converged is converged for the peers too.
    """
    settings = main_cf_settings(vars, platform)
    sasl = platform.saslauthd_settings
    # provisioner keeps a line's quoting when it replaces it, and appends unquoted.
    quoted = platform.saslauthd_shipped.quoted
    return {
        "main_cf_path": MAIN_CF,
        "main_cf_set": [
            {"key": key, "line": main_cf_line(key, value).rstrip("\n")}
            for key, value in settings.items()
            if value is not None
        ],
        "main_cf_absent": [key for key, value in settings.items() if value is None],
        "mail_packages": list(platform.mail_packages),
        "sendmail_packages": list(platform.sendmail_packages) if vars.remove_sendmail else [],
        "smtpd_sasl_conf": {"path": platform.smtpd_sasl_conf, "content": SMTPD_CONF},
        "saslauthd_defaults": {
            "path": platform.saslauthd_defaults,
            "lines": [
                {"key": key, "line": shell_line(key, value, key in quoted).rstrip("\n")}
                for key, value in sasl.items()
            ],
        },
        "pam_smtp": {"path": PAM_SMTP, "line": PAM_LISTFILE_LINE},
        "pam_allow_file": {"path": PAM_ALLOW_FILE, "content": allow_file_content([vars.mail_group])},
        "mail_group": vars.mail_group,
        "mail_users": list(vars.mail_users),
        "virtual_map": {"path": VIRTUAL_MAP, "content": render_virtual(vars.virtual_aliases)},
        "aliases": {"path": ALIASES, "root_line": f"root:\t\t{vars.root_alias}" if vars.root_alias else None},
        "services": ["saslauthd", "postfix"],
    }
