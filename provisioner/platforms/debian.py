"""The Debian family: Debian 12+ and Ubuntu 22.04+ (Postfix 3.6 and later)."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.model import Action, Command, RevertFile, Shell, WriteFile
from provisioner.platforms.base import Family, Platform, Release, ShippedSettings, Systemd

# saslauthd's socket inside Postfix's chroot: Debian's init script creates it
# (root:sasl 0710) from the -m option.
SASLAUTHD_SOCKET_DIR = "/var/spool/postfix/var/run/saslauthd"


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

    def remove(self, names: tuple[str, ...]) -> tuple[Action, ...]:
        return (
            Shell(
                "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "
                + " ".join("{%d}" % i for i in range(len(names))),
                names,
            ),
        )


DEBIAN12 = Platform(
    name="debian12",
    family="debian",
    releases=(Release(frozenset({"debian"}), 12), Release(frozenset({"ubuntu"}), 22)),
    packages=Apt(),
    services=Systemd(sysv_scripts=frozenset({"saslauthd"})),
    postfix_version=(3, 6),  # Ubuntu 22.04's 3.6.4; Debian 12 ships 3.7
    mail_packages=("postfix", "sasl2-bin", "libsasl2-modules"),
    sendmail_packages=("sendmail-bin", "sendmail-base", "sendmail-cf", "sendmail"),
    smtpd_sasl_conf="/etc/postfix/sasl/smtpd.conf",
    saslauthd_defaults="/etc/default/saslauthd",
    # Without START=yes the init script does not start saslauthd.
    saslauthd_settings={"START": "yes", "MECHANISMS": "pam", "OPTIONS": f"-c -m {SASLAUTHD_SOCKET_DIR}"},
    # sasl2-bin ships no START line at all (so saslauthd does not run), and
    # MECHANISMS and OPTIONS double-quoted.
    saslauthd_shipped=ShippedSettings(
        "sasl2-bin",
        {"MECHANISMS": "pam", "OPTIONS": "-c -m /var/run/saslauthd"},
        quoted=frozenset({"MECHANISMS", "OPTIONS"}),
    ),
    postfix_chroot=True,
    postfix_health_unit="postfix@-",
    smtps_service="submissions",
    firewall_package="nftables",
    firewall_install=("nftables",),
    firewall_install_tools=frozenset({"nft"}),
    package_files={
        # postfix's postinst writes master.cf and /etc/aliases even with "No configuration".
        "postfix": ("/etc/postfix/master.cf", "/etc/aliases"),
        "sasl2-bin": ("/etc/default/saslauthd",),
    },
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

FAMILY = Family(
    name="debian",
    platforms=(DEBIAN12,),
    by_id_like=False,
    unsupported="unsupported operating system {id} {version}: the Debian family needs Debian 12 or "
                "Ubuntu 22.04 or newer (Postfix 3.6+)",
)
