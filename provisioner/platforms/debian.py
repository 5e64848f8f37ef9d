"""The Debian family: Debian 12 (bookworm), Debian 13 (trixie), Ubuntu 22.04.

Debian 12 and 13 are recorded from real hosts (docs/notes/debian12-by-hand.md,
debian13-by-hand.md); Ubuntu 22.04 is served by the Debian 12 model and has
never been tested (no Ubuntu host is reachable here).
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.model import Action, Command, RevertFile, Shell, WriteFile
from provisioner.platforms.base import Family, ManagedFile, Platform, Release, ShippedSettings, Systemd
from provisioner.platforms.postfix import BERKELEY_DB, TLS_NAMES_1_3, PostfixBuild

# saslauthd's socket inside Postfix's chroot, from the -m option. Debian 12's
# init script creates it (root:sasl 0710); Debian 13's native unit does not
# (SASLAUTHD_DROPIN does).
SASLAUTHD_SOCKET_DIR = "/var/spool/postfix/var/run/saslauthd"


def _dpkg_order(text: str, i: int) -> int:
    """dpkg's order() of one character: ~ first (before the end), then the end and digits, letters, the rest."""
    if i >= len(text) or text[i].isdigit():
        return 0
    char = text[i]
    if char == "~":
        return -1
    return ord(char) if char.isalpha() else ord(char) + 256


def _dpkg_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac, bc = _dpkg_order(a, i), _dpkg_order(b, j)
            if ac != bc:
                return -1 if ac < bc else 1
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first_diff = 0
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            first_diff = first_diff or (ord(a[i]) - ord(b[j]))
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def dpkg_version_compare(a: str, b: str) -> int:
    """-1, 0 or 1, as ``dpkg --compare-versions`` orders ``[epoch:]upstream[-revision]``."""

    def split(version: str) -> tuple[int, str, str]:
        epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or 0), upstream, revision

    (ea, ua, ra), (eb, ub, rb) = split(a), split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _dpkg_part(ua, ub) or _dpkg_part(ra, rb)


# Ours during an install: every service start a maintainer script asks for is refused, so nothing
# listens before it is configured. Marked, so that one left by a run that died mid-install (host
# crash) is known as ours (steps/leftovers.py) and never mistaken for the admin's.
POLICY_RC_D = "/usr/sbin/policy-rc.d"
POLICY_RC_D_OURS = (
    "#!/bin/sh\n"
    "# provisioner: refuses service starts during its package install; removed right after it\n"
    "exit 101\n"
)
# Where an older provisioner put the admin's own policy-rc.d aside during an install.
POLICY_RC_D_SAVED_BY_OLD_VERSION = "/usr/sbin/policy-rc.d.provisioner-saved"


@dataclass(frozen=True)
class Apt:
    def install(self, names: tuple[str, ...]) -> tuple[Action, ...]:
        # Debconf "No configuration" leaves main.cf to us, so Postfix never
        # starts with a stock config; our policy-rc.d keeps every service
        # stopped during the install. The journal keeps the admin's own
        # policy-rc.d (or its absence): it is put back right after the
        # install, and by the rollback if the install fails or is killed.
        # `dpkg --configure -a` first finishes an install a killed run
        # interrupted (apt refuses to start until it is done).
        placeholders = " ".join("{%d}" % i for i in range(len(names)))
        return (
            Shell(
                "echo 'postfix postfix/main_mailer_type select No configuration' "
                "| debconf-set-selections"
            ),
            WriteFile(POLICY_RC_D, POLICY_RC_D_OURS, mode="755"),
            Shell("DEBIAN_FRONTEND=noninteractive dpkg --configure -a"),
            Command(("apt-get", "update", "-q")),
            Shell(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                "-o Dpkg::Options::=--force-confold " + placeholders,
                names,
            ),
            RevertFile(POLICY_RC_D),
        )

    def update(self, names: tuple[str, ...]) -> tuple[Action, ...]:
        # apt's install of an installed package upgrades it, with the same safeguards.
        return self.install(names)

    def remove(self, names: tuple[str, ...]) -> tuple[Action, ...]:
        return (
            Shell(
                "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "
                + " ".join("{%d}" % i for i in range(len(names))),
                names,
            ),
        )

    def compare(self, a: str, b: str) -> int:
        return dpkg_version_compare(a, b)


_DEBIAN_COMMON = dict(
    family="debian",
    packages=Apt(),
    sendmail_packages=("sendmail-bin", "sendmail-base", "sendmail-cf", "sendmail"),
    smtpd_sasl_conf="/etc/postfix/sasl/smtpd.conf",
    saslauthd_defaults="/etc/default/saslauthd",
    # sasl2-bin ships no START line at all (so Debian 12's init script does
    # not start saslauthd), and MECHANISMS and OPTIONS double-quoted.
    saslauthd_shipped=ShippedSettings(
        "sasl2-bin",
        {"MECHANISMS": "pam", "OPTIONS": "-c -m /var/run/saslauthd"},
        quoted=frozenset({"MECHANISMS", "OPTIONS"}),
    ),
    postfix_chroot=True,
    smtps_service="submissions",
    # postfix's postinst copies it to /etc/postfix/master.cf when that is missing.
    master_cf_stock="/usr/share/postfix/master.cf.dist",
    # sendmail-base ships /etc/pam.d/smtp as a conffile: installed over ours (the admin keeping ours at
    # dpkg's prompt) dpkg counts it as sendmail-base's, and `apt-get purge` deletes it.
    purge_takes={"sendmail-base": ("/etc/pam.d/smtp",)},
    firewall_package="nftables",
    firewall_install=("nftables",),
    firewall_install_tools=frozenset({"nft"}),
    package_accounts={
        "postfix": (("user", "postfix"), ("group", "postdrop")),
        "sasl2-bin": (("group", "sasl"),),
    },
    package_services={
        "postfix": ("postfix", True, False),
        "sasl2-bin": ("saslauthd", False, False),
    },
    package_commands={
        "postfix": ("postconf", "postmap", "postalias", "newaliases", "postfix"),
        "sasl2-bin": ("saslauthd", "testsaslauthd"),
    },
    pam_smtp_tail=("@include common-auth", "@include common-account"),
)

DEBIAN12 = Platform(
    name="debian12",
    releases=(Release(frozenset({"debian"}), 12, 12), Release(frozenset({"ubuntu"}), 22, 22)),
    # saslauthd is a SysV script behind systemd's generator.
    services=Systemd(sysv_scripts=frozenset({"saslauthd"})),
    postfix=(
        PostfixBuild("3.6.4", TLS_NAMES_1_3, BERKELEY_DB, "Ubuntu 22.04's postfix 3.6.4 (never tested here)"),
        PostfixBuild("3.7.11", TLS_NAMES_1_3, BERKELEY_DB, "postfix 3.7.11-0+deb12u1 on the Debian 12 lab hosts"),
    ),
    mail_packages=("postfix", "sasl2-bin", "libsasl2-modules"),
    # Without START=yes the init script does not start saslauthd.
    saslauthd_settings={"START": "yes", "MECHANISMS": "pam", "OPTIONS": f"-c -m {SASLAUTHD_SOCKET_DIR}"},
    # postfix.service is a wrapper that stays active when the real daemon's instance failed.
    postfix_health_unit="postfix@-",
    package_files={
        # postfix's postinst writes master.cf and /etc/aliases even with "No configuration".
        "postfix": ("/etc/postfix/master.cf", "/etc/aliases"),
        "sasl2-bin": ("/etc/default/saslauthd",),
    },
    **_DEBIAN_COMMON,
)

# Debian 13's sasl2-bin has a native unit (Type=forking, PIDFile in /run/saslauthd,
# RuntimeDirectory=saslauthd) that neither creates the -m directory inside the
# chroot nor finds the pid file saslauthd writes there: start fails, or times out
# after 90 s (docs/notes/debian13-by-hand.md, section 4). "+" runs install as
# root:root, so the parents it creates are not group sasl.
SASLAUTHD_DROPIN = ManagedFile(
    "/etc/systemd/system/saslauthd.service.d/provisioner.conf",
    "# Written by provisioner: saslauthd's socket lives inside Postfix's chroot\n"
    f"# (OPTIONS=\"-m {SASLAUTHD_SOCKET_DIR}\" in /etc/default/saslauthd).\n"
    "# saslauthd writes its pid file into that directory, not into /run/saslauthd.\n"
    "[Service]\n"
    f"ExecStartPre=+/usr/bin/install -d -o root -g sasl -m 0710 {SASLAUTHD_SOCKET_DIR}\n"
    f"PIDFile={SASLAUTHD_SOCKET_DIR}/saslauthd.pid\n",
    "saslauthd's socket and pid file inside Postfix's chroot",
)

DEBIAN13 = Platform(
    name="debian13",
    releases=(Release(frozenset({"debian"}), 13, 13),),
    services=Systemd(),
    postfix=(PostfixBuild("3.10.13", TLS_NAMES_1_3, BERKELEY_DB, "postfix 3.10.13-0+deb13u1 on Debian 13 lab hosts"),),
    # postfix no longer depends on openssl (ssl-cert became a Recommends), and the tls step runs it.
    mail_packages=("postfix", "sasl2-bin", "libsasl2-modules", "openssl"),
    # The native unit never reads START.
    saslauthd_settings={"MECHANISMS": "pam", "OPTIONS": f"-c -m {SASLAUTHD_SOCKET_DIR}"},
    saslauthd_unit_dropin=SASLAUTHD_DROPIN,
    # Debian dropped its patch that hard-coded this path (postfix 3.9.0-3): without it smtpd
    # offers every mechanism and never asks saslauthd.
    cyrus_sasl_config_path="/etc/postfix/sasl",
    # postfix.service is the daemon itself (postfix@- is gone).
    postfix_health_unit="postfix",
    package_files={
        # "No configuration" no longer writes /etc/aliases.
        "postfix": ("/etc/postfix/master.cf",),
        "sasl2-bin": ("/etc/default/saslauthd",),
    },
    **_DEBIAN_COMMON,
)

FAMILY = Family(
    name="debian",
    platforms=(DEBIAN12, DEBIAN13),
    by_id_like=False,
    unsupported="unsupported operating system {id} {version}: the Debian family needs Debian 12 or 13, or "
                "Ubuntu 22.04 (Postfix 3.6+)",
    refused=(
        (Release(frozenset({"ubuntu"}), 23), "no platform models Ubuntu after 22.04, and no Ubuntu host was "
                                             "ever tested here"),
    ),
)
