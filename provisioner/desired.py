"""The desired state that several steps share: host paths and the main.cf settings.

The seed tutorial's keys are the defaults, in the current form where the seed
is outdated (``smtpd_tls_security_level`` rather than ``smtpd_use_tls``), plus
today's practice: AUTH only over TLS, TLS 1.2 or newer, strong DH parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.keyedit import alias_line, main_cf_line, shell_line
from provisioner.platforms import Platform
from provisioner.vars import MailVars

MAIN_CF = "/etc/postfix/main.cf"
MASTER_CF = "/etc/postfix/master.cf"
TLS_DIR = "/etc/postfix/tls"
TLS_CERT = f"{TLS_DIR}/cert.pem"
TLS_KEY = f"{TLS_DIR}/key.pem"
TLS_CA = f"{TLS_DIR}/ca.pem"
TLS_COMBINED = f"{TLS_DIR}/combined.pem"
DH_PARAMS = f"{TLS_DIR}/ffdhe2048.pem"
PAM_SMTP = "/etc/pam.d/smtp"
PAM_ALLOW_FILE = "/etc/pam.d/mail_auth_group.allow"
VIRTUAL_MAP = "/etc/postfix/virtual_users"
ALIASES = "/etc/aliases"
STATE_DIR = "/var/lib/provisioner"
VERIFIED_MARKER = f"{STATE_DIR}/verified"

PAM_LISTFILE_LINE = f"auth required pam_listfile.so onerr=fail item=group sense=allow file={PAM_ALLOW_FILE}"
# Cyrus SASL for smtpd: passwords checked by saslauthd.
SMTPD_CONF = "pwcheck_method: saslauthd\nmech_list: PLAIN LOGIN\n"
VIRTUAL_HEADER = (
    f"# {VIRTUAL_MAP}: virtual alias map (virtual_alias_maps), managed by provisioner.\n"
    "# Edit virtual_aliases in the inventory: changes made here are overwritten.\n"
)
# Enabled and running, in this order: postfix authenticates through saslauthd.
SERVICES = ("saslauthd", "postfix")


def tls_files(vars: MailVars) -> dict[str, str | None]:
    """Host paths for the main.cf TLS keys, by the variant the inventory chose."""
    if vars.tls_combined:
        return {"cert": TLS_COMBINED, "key": "$smtpd_tls_cert_file", "ca": TLS_CA if vars.tls_ca else None}
    return {"cert": TLS_CERT, "key": TLS_KEY, "ca": TLS_CA if vars.tls_ca else None}


# ------------------------------------------------------------ what the platform's Postfix knows


# Managed main.cf keys that not every Postfix has: the release that introduced
# each, and the one that deprecated it (None: still current). On a platform
# whose Postfix lies outside that range the key must not be set: an unknown key
# has no effect (2.6 does not even warn), a deprecated one warns on every start.
KEY_RELEASES: dict[str, tuple[tuple[int, ...], tuple[int, ...] | None]] = {
    "compatibility_level": ((3, 0), None),
    "cyrus_sasl_config_path": ((2, 5), None),
    "tls_preempt_cipherlist": ((2, 8), None),
    "smtpd_relay_restrictions": ((2, 10), None),
    # 3.9: "support for parameter ... will be removed; instead, do not specify";
    # DHE then uses tls_ffdhe_auto_groups (ffdhe2048 ffdhe3072).
    "smtpd_tls_dh1024_param_file": ((2, 2), (3, 9)),
}


def postfix_has(platform: Platform, key: str) -> bool:
    """Whether every Postfix the platform ships reads ``key`` (and none deprecates it)."""
    first, deprecated = KEY_RELEASES.get(key, ((0,), None))
    return platform.postfix_version >= first and (
        deprecated is None or platform.newest_postfix_version < deprecated
    )


def compatibility_level(platform: Platform) -> str | None:
    """The compatibility_level to set: 3.6 from Postfix 3.6, 2 from 3.0 (which introduced it), else none.

    3.6 stays right on newer Postfix: up to 3.10 no default that depends on the
    level changes after 3.6 (docs/notes/debian13-by-hand.md, section 3).
    """
    if platform.postfix_version >= (3, 6):
        return "3.6"
    if postfix_has(platform, "compatibility_level"):
        return "2"
    return None


def has_relay_restrictions(platform: Platform) -> bool:
    """smtpd_relay_restrictions exists from Postfix 2.10."""
    return postfix_has(platform, "smtpd_relay_restrictions")


def tls_protocols(platform: Platform) -> str:
    if platform.postfix_version >= (3, 6):
        return ">=TLSv1.2"  # the Postfix 3.6 syntax
    return "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"


def dh_params_file(vars: MailVars, platform: Platform) -> bool:
    """Whether main.cf points smtpd at DH_PARAMS, so the tls step must keep that file."""
    return main_cf_settings(vars, platform).get("smtpd_tls_dh1024_param_file") == DH_PARAMS


def main_cf_settings(vars: MailVars, platform: Platform) -> dict[str, str | None]:
    """Every key the main_cf step manages, in file order; None means 'must not be set'."""
    tls = tls_files(vars)
    settings: dict[str, str | None] = {"compatibility_level": compatibility_level(platform)}
    settings.update(
        {
            # The basics
            "myhostname": vars.myhostname,
            "mydomain": vars.mydomain,
            "myorigin": "$mydomain",
            "mailbox_command": "",
            "mynetworks": "127.0.0.0/8 [::1]/128",
            "inet_interfaces": "all",
            "mydestination": "$myhostname, localhost.$mydomain, localhost, $mydomain",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "hash:/etc/aliases",
            "alias_database": "hash:/etc/aliases",
            # Anti-spam (the seed's "long delay" trick)
            "smtpd_client_restrictions": "sleep 5",
            "smtpd_delay_reject": "no",
            "smtpd_sender_restrictions": "reject_unknown_sender_domain",
            "smtpd_error_sleep_time": "30",
            "smtpd_soft_error_limit": "10",
            "smtpd_hard_error_limit": "20",
            # SMTP-AUTH
            "cyrus_sasl_config_path": platform.cyrus_sasl_config_path,
            "smtpd_sasl_local_domain": "",
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "cyrus",
            "smtpd_sasl_security_options": "noanonymous",
            "broken_sasl_auth_clients": "yes",
            "smtpd_sasl_authenticated_header": "no",
            "smtpd_recipient_restrictions": "permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination",
            # Explicit, so that an unauthenticated relay gets 554 rather than the
            # 454 of compatibility level >= 1's defer_unauth_destination.
            "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
            # TLS
            "smtpd_use_tls": None,  # deprecated by smtpd_tls_security_level
            "smtpd_tls_security_level": "may",
            "smtpd_tls_auth_only": "yes",
            "smtpd_tls_cert_file": tls["cert"],
            "smtpd_tls_key_file": tls["key"],
            "smtpd_tls_CAfile": tls["ca"],
            "smtpd_tls_protocols": tls_protocols(platform),
            "smtpd_tls_mandatory_protocols": tls_protocols(platform),
            "smtpd_tls_mandatory_ciphers": "high",
            "tls_preempt_cipherlist": "yes",
            "smtpd_tls_dh1024_param_file": DH_PARAMS,
            "smtpd_tls_loglevel": "0",
            "smtpd_tls_received_header": "yes",
            "smtpd_tls_session_cache_database": "btree:/var/lib/postfix/smtpd_scache",
            "smtpd_tls_session_cache_timeout": "10800s",
            # Aliases
            "virtual_alias_maps": f"hash:{VIRTUAL_MAP}",
        }
    )
    if platform.cyrus_sasl_config_path is None:
        del settings["cyrus_sasl_config_path"]  # left to the platform's Postfix: not managed
    for key in KEY_RELEASES:
        if key in settings and not postfix_has(platform, key):
            settings[key] = None
    for key, value in vars.main_cf.items():
        settings[key] = value
    return settings


# ------------------------------------------------------------ file contents


def allow_file_content(groups: list[str] | tuple[str, ...]) -> str:
    # No comment header: pam_listfile has no comment syntax, it would look up
    # a "# ..." line as a group name on every authentication.
    return "".join(f"{g}\n" for g in groups)


def render_virtual(aliases: dict[str, str]) -> str:
    """The whole virtual map: header, then one aligned ``alias  destination`` line per alias."""
    column = "# alias address"
    width = max([len(column), *(len(alias) for alias in aliases)]) + 4
    lines = [VIRTUAL_HEADER, f"{column:<{width}}destination\n"]
    lines += [f"{alias:<{width}}{target}\n" for alias, target in aliases.items()]
    return "".join(lines)


# ------------------------------------------------------------ the whole, as data


@dataclass(frozen=True)
class WholeFile:
    path: str
    content: str


@dataclass(frozen=True)
class KeyedLines:
    """Keys of a file edited in place: each line as provisioner writes it, and keys that must be absent."""

    path: str
    lines: tuple[tuple[str, str], ...]  # (key, line without its newline)
    absent: tuple[str, ...] = ()


@dataclass(frozen=True)
class DesiredState:
    """What provisioner makes of a host, for tools that check the same state.

    Covers packages, main.cf, Cyrus SASL and saslauthd, PAM, the mail group,
    aliases and services. Not here: master.cf entries, TLS material and the
    firewall lockdown, which the steps work out against the host's facts.
    """

    packages: tuple[str, ...]
    removed_packages: tuple[str, ...]
    main_cf: KeyedLines
    smtpd_sasl_conf: WholeFile
    # Lines as provisioner leaves them where the package shipped the file (an edit keeps a line's quoting).
    saslauthd_defaults: KeyedLines
    pam_smtp: KeyedLines  # its one line must be the file's first directive
    pam_allow_file: WholeFile
    mail_group: str
    mail_users: tuple[str, ...]
    virtual_map: WholeFile
    aliases: KeyedLines  # root's alias, when the inventory sets one
    services: tuple[str, ...]  # enabled at boot and running, in this order


def desired_state(vars: MailVars, platform: Platform) -> DesiredState:
    settings = main_cf_settings(vars, platform)
    quoted = platform.saslauthd_shipped.quoted
    return DesiredState(
        packages=platform.mail_packages,
        removed_packages=platform.sendmail_packages if vars.remove_sendmail else (),
        main_cf=KeyedLines(
            MAIN_CF,
            tuple((key, main_cf_line(key, value).rstrip("\n")) for key, value in settings.items() if value is not None),
            tuple(key for key, value in settings.items() if value is None),
        ),
        smtpd_sasl_conf=WholeFile(platform.smtpd_sasl_conf, SMTPD_CONF),
        saslauthd_defaults=KeyedLines(
            platform.saslauthd_defaults,
            tuple((key, shell_line(key, value, key in quoted).rstrip("\n"))
                  for key, value in platform.saslauthd_settings.items()),
        ),
        pam_smtp=KeyedLines(PAM_SMTP, (("pam_listfile", PAM_LISTFILE_LINE),)),
        pam_allow_file=WholeFile(PAM_ALLOW_FILE, allow_file_content([vars.mail_group])),
        mail_group=vars.mail_group,
        mail_users=tuple(vars.mail_users),
        virtual_map=WholeFile(VIRTUAL_MAP, render_virtual(vars.virtual_aliases)),
        aliases=KeyedLines(
            ALIASES, (("root", alias_line("root", vars.root_alias).rstrip("\n")),) if vars.root_alias else ()
        ),
        services=SERVICES,
    )
