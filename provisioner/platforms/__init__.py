"""Per OS family: paths, package names, and how services and packages are driven.

A Platform is data plus small command builders; steps ask it, never the OS id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.model import Command, OsRelease, Shell


class UnsupportedPlatform(Exception):
    pass


@dataclass(frozen=True)
class Platform:
    name: str  # debian12, el6, el7, el8
    family: str  # debian | el
    package_tool: str  # apt | yum | dnf
    service_manager: str  # systemd | sysv
    mail_packages: tuple[str, ...]
    sendmail_packages: tuple[str, ...]
    smtpd_sasl_conf: str
    saslauthd_defaults: str
    postfix_chroot: bool
    # Unit or script whose health says whether the Postfix daemon runs.
    postfix_health_unit: str
    # Firewall tools in order of preference, and the package that brings the first.
    firewall_tools: tuple[str, ...]
    firewall_package: str
    # Files a package drops on install; their content is unknown until it is installed.
    package_files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Users and groups a package creates.
    package_accounts: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # Service state right after a package is installed: (enabled, active).
    package_services: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)
    pam_smtp_tail: tuple[str, ...] = ()
    openssl_has_addext: bool = True

    @property
    def all_package_names(self) -> tuple[str, ...]:
        return self.mail_packages + self.sendmail_packages + (self.firewall_package,)

    # ------------------------------------------------------------ packages

    def install(self, names: list[str] | tuple[str, ...]) -> tuple[Command | Shell, ...]:
        names = tuple(names)
        if self.package_tool == "apt":
            # Debconf "No configuration" leaves main.cf to us, so Postfix never
            # starts with a stock config; policy-rc.d keeps every service
            # stopped during the install so nothing listens before it is configured.
            placeholders = " ".join("{%d}" % i for i in range(len(names)))
            return (
                Shell(
                    "echo 'postfix postfix/main_mailer_type select No configuration' "
                    "| debconf-set-selections"
                ),
                # A policy-rc.d of the host's own is put aside and back; ours is
                # removed whatever apt does (the step runs under set -e).
                Shell(
                    "_saved=; if [ -e /usr/sbin/policy-rc.d ]; then "
                    "mv -f /usr/sbin/policy-rc.d /usr/sbin/policy-rc.d.provisioner-saved; _saved=1; fi; "
                    "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; "
                    "_rc=0; {{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                    "--no-install-recommends -o Dpkg::Options::=--force-confold " + placeholders + "; }} || _rc=$?; "
                    "rm -f /usr/sbin/policy-rc.d; "
                    "if [ -n \"$_saved\" ]; then mv -f /usr/sbin/policy-rc.d.provisioner-saved /usr/sbin/policy-rc.d; fi; "
                    "[ $_rc -eq 0 ]",
                    names,
                ),
            )
        return (Command((self.package_tool, "install", "-y", "-q", *names)),)

    def remove(self, names: list[str] | tuple[str, ...]) -> tuple[Command | Shell, ...]:
        names = tuple(names)
        if self.package_tool == "apt":
            return (
                Shell(
                    "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "
                    + " ".join("{%d}" % i for i in range(len(names))),
                    names,
                ),
            )
        return (Command((self.package_tool, "remove", "-y", "-q", *names)),)

    # ------------------------------------------------------------ services

    def enable(self, service: str) -> Command | Shell:
        if self.service_manager == "sysv":
            return Command(("chkconfig", service, "on"))
        if self.family == "debian" and service == "saslauthd":
            # A SysV script behind systemd's generator: `systemctl enable`
            # goes through update-rc.d, and is-enabled says "generated".
            return Command(("update-rc.d", service, "enable"))
        return Command(("systemctl", "enable", "--quiet", service))

    def restart(self, service: str) -> Command:
        if self.service_manager == "sysv":
            return Command((f"/etc/init.d/{service}", "restart"))
        return Command(("systemctl", "restart", service))

    def reload(self, service: str) -> Command:
        if self.service_manager == "sysv":
            return Command((f"/etc/init.d/{service}", "reload"))
        return Command(("systemctl", "reload", service))

    def postfix_check(self) -> Shell:
        """`postfix check`, with its messages on stderr.

        Without a terminal postfix check sends its complaints only to syslog;
        under script(1) they come back to us for the report.
        """
        return Shell(
            "if script -qec true /dev/null >/dev/null 2>&1; then "
            "script -qec 'postfix check' /dev/null >&2 || {{ echo 'postfix check failed' >&2; exit 1; }}; "
            "else postfix check || {{ echo 'postfix check failed' >&2; exit 1; }}; fi"
        )

    def is_active_check(self, service: str, daemon: str) -> Shell:
        """Fails unless the service's daemon process really runs (waits up to 5 s).

        The process table, not the service manager, is the truth: Debian's
        postfix.service stays active when postfix@- failed, and saslauthd's
        SysV script can report active with no daemon.
        """
        return Shell(
            "_i=0; while ! pgrep -x {0} >/dev/null 2>&1; do _i=$((_i+1)); "
            "if [ $_i -gt 50 ]; then echo {1} >&2; exit 1; fi; sleep 0.1; done",
            (daemon, f"{service} is not running ({daemon} process missing) after restart"),
        )


DEBIAN = Platform(
    name="debian12",
    family="debian",
    package_tool="apt",
    service_manager="systemd",
    mail_packages=("postfix", "sasl2-bin", "libsasl2-modules"),
    sendmail_packages=("sendmail-bin", "sendmail-base", "sendmail-cf", "sendmail"),
    smtpd_sasl_conf="/etc/postfix/sasl/smtpd.conf",
    saslauthd_defaults="/etc/default/saslauthd",
    postfix_chroot=True,
    postfix_health_unit="postfix@-",
    firewall_tools=("nft", "iptables"),
    firewall_package="nftables",
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
    pam_smtp_tail=("@include common-auth", "@include common-account"),
)

_EL_COMMON = dict(
    family="el",
    mail_packages=("postfix", "cyrus-sasl", "cyrus-sasl-lib", "cyrus-sasl-plain"),
    sendmail_packages=("sendmail", "sendmail-cf"),
    saslauthd_defaults="/etc/sysconfig/saslauthd",
    postfix_chroot=False,
    postfix_health_unit="postfix",
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
    pam_smtp_tail=("auth       include      password-auth", "account    include      password-auth"),
)

EL6 = Platform(
    name="el6",
    package_tool="yum",
    service_manager="sysv",
    smtpd_sasl_conf="/usr/lib64/sasl2/smtpd.conf",
    firewall_tools=("iptables",),
    firewall_package="iptables",
    package_services={"postfix": ("postfix", True, False), "cyrus-sasl": ("saslauthd", False, False)},
    openssl_has_addext=False,
    **_EL_COMMON,
)
EL7 = Platform(
    name="el7",
    package_tool="yum",
    service_manager="systemd",
    smtpd_sasl_conf="/etc/sasl2/smtpd.conf",
    firewall_tools=("firewall-cmd",),
    firewall_package="firewalld",
    package_services={"postfix": ("postfix", True, False), "cyrus-sasl": ("saslauthd", False, False)},
    openssl_has_addext=False,
    **_EL_COMMON,
)
EL8 = Platform(
    name="el8",
    package_tool="dnf",
    service_manager="systemd",
    smtpd_sasl_conf="/etc/sasl2/smtpd.conf",
    firewall_tools=("firewall-cmd",),
    firewall_package="firewalld",
    package_services={"postfix": ("postfix", True, False), "cyrus-sasl": ("saslauthd", False, False)},
    **_EL_COMMON,
)

ALL = (DEBIAN, EL6, EL7, EL8)
EL_IDS = {"centos", "rhel", "rocky", "almalinux", "ol", "fedora", "scientific", "redhat"}


def detect(os: OsRelease) -> Platform:
    ids = {os.id, *os.id_like}
    if os.id == "debian" and os.major >= 12 or os.id == "ubuntu" and os.major >= 22:
        return DEBIAN  # Postfix >= 3.6: compatibility_level 3.6 and ">=TLSv1.2" syntax
    if ids & {"debian", "ubuntu"}:
        raise UnsupportedPlatform(
            f"unsupported operating system {os.id} {os.version_id}: the Debian family needs Debian 12 or "
            "Ubuntu 22.04 or newer (Postfix 3.6+)"
        )
    if ids & EL_IDS:
        if os.major and os.major <= 6:
            return EL6
        if os.major == 7:
            return EL7
        return EL8
    raise UnsupportedPlatform(
        f"unsupported operating system {os.id or 'unknown'!r} {os.version_id}: "
        "supported are Debian/Ubuntu and the RHEL family (CentOS, Rocky, Alma, RHEL 6 to 9)"
    )


def union_paths(attr: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for platform in ALL:
        seen[getattr(platform, attr)] = None
    return tuple(seen)
