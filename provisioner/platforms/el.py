"""The RHEL family: CentOS, RHEL, Rocky, Alma, Oracle Linux... 6 to 9."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.model import Command
from provisioner.platforms.base import Family, Platform, Release, ShippedSettings, SysV, Systemd

EL_IDS = frozenset({"centos", "rhel", "rocky", "almalinux", "ol", "fedora", "scientific", "redhat"})


@dataclass(frozen=True)
class Yum:
    binary: str  # yum | dnf

    def install(self, names: tuple[str, ...]) -> tuple[Command, ...]:
        # rpm scriptlets enable services by preset at most; none starts one.
        return (Command((self.binary, "install", "-y", "-q", *names)),)

    def remove(self, names: tuple[str, ...]) -> tuple[Command, ...]:
        return (Command((self.binary, "remove", "-y", "-q", *names)),)


_EL_COMMON = dict(
    family="el",
    mail_packages=("postfix", "cyrus-sasl", "cyrus-sasl-lib", "cyrus-sasl-plain"),
    sendmail_packages=("sendmail", "sendmail-cf"),
    saslauthd_defaults="/etc/sysconfig/saslauthd",
    # The default SOCKETDIR is right: Postfix is not chrooted.
    saslauthd_settings={"MECH": "pam"},
    saslauthd_shipped=ShippedSettings("cyrus-sasl", {"MECH": "pam"}),
    postfix_chroot=False,
    postfix_health_unit="postfix",
    smtps_service="smtps",
    package_files={
        # The postfix RPM ships smtp.postfix behind the /etc/pam.d/smtp alternatives link,
        # and its own /etc/sasl2/smtpd.conf.
        "postfix": ("/etc/postfix/main.cf", "/etc/postfix/master.cf", "/etc/pam.d/smtp", "/etc/sasl2/smtpd.conf"),
        "cyrus-sasl": ("/etc/sysconfig/saslauthd",),
    },
    package_accounts={
        "postfix": (("user", "postfix"), ("group", "postdrop")),
        "cyrus-sasl": (("group", "saslauth"),),
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
    postfix_version=(2, 6),
    smtpd_sasl_conf="/usr/lib64/sasl2/smtpd.conf",
    firewall_package="iptables",
    firewall_install=("iptables", "iptables-ipv6"),
    firewall_install_tools=frozenset({"iptables", "ip6tables"}),
    # The stock /etc/sysconfig/iptables rejects every new inbound connection but SSH.
    iptables_stock_rejects=True,
    iptables_saved_by_service=True,
    openssl_has_addext=False,
    **_EL_COMMON,
)
EL7 = Platform(
    name="el7",
    releases=(Release(EL_IDS, 7, 7),),
    packages=Yum("yum"),
    services=Systemd(),
    postfix_version=(2, 10),
    smtpd_sasl_conf="/etc/sasl2/smtpd.conf",
    firewall_package="firewalld",
    # Never firewalld: its start would apply the default zone and close every other port.
    firewall_install=("iptables",),
    firewall_install_tools=frozenset({"iptables", "ip6tables"}),
    openssl_has_addext=False,
    **_EL_COMMON,
)
EL8 = Platform(
    name="el8",
    releases=(Release(EL_IDS, 8),),
    packages=Yum("dnf"),
    services=Systemd(),
    postfix_version=(3, 3),  # EL8.0's 3.3.1; later EL8 and EL9 ship 3.5
    smtpd_sasl_conf="/etc/sasl2/smtpd.conf",
    firewall_package="firewalld",
    firewall_install=("nftables",),
    firewall_install_tools=frozenset({"nft"}),
    **_EL_COMMON,
)

FAMILY = Family(
    name="el",
    platforms=(EL6, EL7, EL8),
    by_id_like=True,
    unsupported="unsupported operating system {id} {version}: no platform of the RHEL family serves it",
    unknown_major=EL8,
)
