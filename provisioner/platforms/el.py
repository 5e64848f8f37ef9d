"""The RHEL family: CentOS, RHEL, Rocky, Alma, Oracle Linux... 6 to 9.

Every fact here comes from the packaging files in /work/shared/reference/el
(docs/notes/el-packaging.md names the file and line of each); what the
reference does not hold is said so where it is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.model import Command
from provisioner.platforms.base import (
    Family,
    MtaAlternative,
    Platform,
    Release,
    ReleaseFloor,
    ShippedSettings,
    SysV,
    Systemd,
)
from provisioner.platforms.postfix import BERKELEY_DB, TLS_NAMES_1_2, TLS_NAMES_1_3, PostfixBuild

# Fedora is left out: its Postfix (3.8+, lmdb by default on new releases) is no EL release's.
EL_IDS = frozenset({"centos", "rhel", "rocky", "almalinux", "ol", "scientific", "redhat"})


def _segments(text: str) -> list[str]:
    """``2.6.6-8.el6`` -> ["2", "6", "6", "8", "el", "6"]: runs of digits or of letters."""
    segments, current = [], ""
    for char in text:
        kind = char.isdigit(), char.isalpha()
        if not any(kind):
            if current:
                segments.append(current)
            current = ""
            continue
        if current and (current[-1].isdigit(), current[-1].isalpha()) != kind:
            segments.append(current)
            current = ""
        current += char
    if current:
        segments.append(current)
    return segments


def rpm_version_compare(a: str, b: str) -> int:
    """-1, 0 or 1, as rpm's rpmvercmp() orders two ``VERSION-RELEASE`` strings.

    Segment by segment: numbers numerically, letters as strings, a number
    newer than letters; the longer string wins when one runs out (so
    ``2.6.6-8.el6`` is newer than ``2.6.6-7.el6`` and than ``2.6.6-8``).
    (``~`` and ``^`` ordering is left out: no EL release of the packages here uses them.)
    """
    left, right = _segments(a), _segments(b)
    for x, y in zip(left, right):
        if x.isdigit() != y.isdigit():
            return 1 if x.isdigit() else -1
        if x.isdigit():
            x_num, y_num = int(x), int(y)
            if x_num != y_num:
                return 1 if x_num > y_num else -1
        elif x != y:
            return 1 if x > y else -1
    return (len(left) > len(right)) - (len(left) < len(right))


@dataclass(frozen=True)
class Yum:
    binary: str  # yum | dnf

    def install(self, names: tuple[str, ...]) -> tuple[Command, ...]:
        # rpm scriptlets enable services by preset at most; none starts one.
        return (Command((self.binary, "install", "-y", "-q", *names)),)

    def update(self, names: tuple[str, ...]) -> tuple[Command, ...]:
        return (Command((self.binary, "update", "-y", "-q", *names)),)

    def remove(self, names: tuple[str, ...]) -> tuple[Command, ...]:
        return (Command((self.binary, "remove", "-y", "-q", *names)),)

    def compare(self, a: str, b: str) -> int:
        return rpm_version_compare(a, b)


_EL_COMMON = dict(
    family="el",
    mail_packages=("postfix", "cyrus-sasl", "cyrus-sasl-lib", "cyrus-sasl-plain"),
    sendmail_packages=("sendmail", "sendmail-cf"),
    # Every EL postfix RPM installs smtpd.conf here (sasl_config_dir, %config(noreplace)), EL6 included.
    smtpd_sasl_conf="/etc/sasl2/smtpd.conf",
    # cyrus-sasl reads /usr/lib64/sasl2 before /etc/sasl2 (--with-configdir), and postfix's
    # %post moves this file over /etc/sasl2/smtpd.conf on every install or update.
    smtpd_sasl_conf_shadows=(("/usr/lib64/sasl2/smtpd.conf", "postfix's %post moves it there on every update"),),
    saslauthd_defaults="/etc/sysconfig/saslauthd",
    # The default SOCKETDIR is right: Postfix is not chrooted.
    saslauthd_settings={"MECH": "pam"},
    saslauthd_shipped=ShippedSettings("cyrus-sasl", {"MECH": "pam"}),
    postfix_chroot=False,
    postfix_health_unit="postfix",
    smtps_service="smtps",
    # postfix registers priority 30 (60 from EL8), sendmail 90: with sendmail kept,
    # /usr/sbin/sendmail and /etc/pam.d/smtp stay sendmail's unless the group is set.
    mta_alternative=MtaAlternative("mta", "/etc/alternatives/mta", "/usr/sbin/sendmail.postfix",
                                   "/usr/sbin/sendmail.sendmail"),
    sendmail_service="sendmail",
    package_files={
        # The postfix RPM ships smtp.postfix behind the /etc/pam.d/smtp alternatives link,
        # and its own /etc/sasl2/smtpd.conf.
        "postfix": ("/etc/postfix/main.cf", "/etc/postfix/master.cf", "/etc/pam.d/smtp", "/etc/sasl2/smtpd.conf"),
        "cyrus-sasl": ("/etc/sysconfig/saslauthd",),
    },
    package_accounts={
        "postfix": (("user", "postfix"), ("group", "postdrop")),
        "cyrus-sasl": (("user", "saslauth"), ("group", "saslauth")),
    },
    package_services={"postfix": ("postfix", True, False), "cyrus-sasl": ("saslauthd", False, False)},
    package_commands={
        "postfix": ("postconf", "postmap", "postalias", "newaliases", "postfix"),
        "cyrus-sasl": ("saslauthd", "testsaslauthd"),
    },
    pam_smtp_tail=("auth       include      password-auth", "account    include      password-auth"),
    pam_smtp_link_target="/etc/pam.d/smtp.postfix",
)

EL6 = Platform(
    name="el6",
    releases=(Release(EL_IDS, 1, 6),),
    packages=Yum("yum"),
    services=SysV(),
    postfix=(PostfixBuild("2.6.6", TLS_NAMES_1_2, BERKELEY_DB, "postfix-2.6.6-8.el6: el6/postfix/postfix.spec; "
                          "TLSv1.1 and TLSv1.2 from postfix-2.6.6-add-tlsv11-2.patch"),),
    # Builds before Red Hat's backport disable TLS on the protocol list ("Invalid TLS protocol list").
    package_floors=(ReleaseFloor("postfix", "2.6.6-8.el6", "TLSv1.1 and TLSv1.2",
                                 "the TLS protocol list would make smtpd disable TLS, and with it AUTH"),),
    # The RPM ships the stock file in postfix_daemon_dir (el6/postfix/postfix.spec's %files).
    master_cf_stock="/usr/libexec/postfix/master.cf",
    firewall_package="iptables",
    firewall_install=("iptables", "iptables-ipv6"),
    firewall_install_tools=frozenset({"iptables", "ip6tables"}),
    openssl_has_addext=False,
    **_EL_COMMON,
)
EL7 = Platform(
    name="el7",
    releases=(Release(EL_IDS, 7, 7),),
    packages=Yum("yum"),
    services=Systemd(),
    postfix=(PostfixBuild("2.10.1", TLS_NAMES_1_2, BERKELEY_DB, "postfix-2.10.1-7.el7: el7/postfix/postfix.spec"),),
    master_cf_stock="/usr/libexec/postfix/master.cf",  # el7/postfix/postfix.spec's %files
    firewall_package="firewalld",
    # Never firewalld: its start would apply the default zone and close every other port.
    firewall_install=("iptables",),
    firewall_install_tools=frozenset({"iptables", "ip6tables"}),
    openssl_has_addext=False,
    **_EL_COMMON,
)
# EL8 and EL9 differ only in the Postfix they ship.
_EL8_ON = dict(
    packages=Yum("dnf"),
    # From EL8 the RPM ships it as /etc/postfix/master.cf.proto (el8, el9 postfix.spec's %files).
    master_cf_stock="/etc/postfix/master.cf.proto",
    services=Systemd(),
    firewall_package="firewalld",
    firewall_install=("nftables",),
    firewall_install_tools=frozenset({"nft"}),
)
EL8 = Platform(
    name="el8",
    releases=(Release(EL_IDS, 8, 8),),
    postfix=(
        PostfixBuild("3.3.1", TLS_NAMES_1_3, BERKELEY_DB, "postfix-3.3.1: el8/postfix/postfix.spec (EL 8.0)"),
        PostfixBuild("3.5.8", TLS_NAMES_1_3, BERKELEY_DB, "later EL8 minor releases (reference README)"),
    ),
    **_EL8_ON,
    **_EL_COMMON,
)
EL9 = Platform(
    name="el9",
    releases=(Release(EL_IDS, 9, 9),),
    postfix=(PostfixBuild("3.5.9", TLS_NAMES_1_3, BERKELEY_DB, "postfix-3.5.9: el9/postfix/postfix.spec"),),
    **_EL8_ON,
    **_EL_COMMON,
)

FAMILY = Family(
    name="el",
    platforms=(EL6, EL7, EL8, EL9),
    by_id_like=True,
    unsupported="unsupported operating system {id} {version}: no platform of the RHEL family serves it "
                "(EL6 to EL9 are supported)",
    unknown_major=EL8,
    refused=(
        (Release(EL_IDS, 10), "its postfix is built without Berkeley DB, so the hash: and btree: maps this "
                              "tool writes (aliases, the virtual map, the TLS session cache) do not exist there; "
                              "lmdb: maps are not supported yet"),
    ),
)
