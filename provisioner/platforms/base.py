"""The Platform type: what differs between OS releases, as data plus small command builders.

Steps ask the platform; they never test its name or family. A family module
(``debian.py``, ``el.py``) defines its platforms and the tools that only it
has (apt's install, yum's); the service managers, shared across families,
live here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import ClassVar, Mapping, Protocol

from provisioner.model import Action, Command, Journaled, KeepService, OsRelease, Shell, one_line

# The process that shows a service's daemon runs (the process table, not the service manager, is the truth).
DAEMONS = {"postfix": "master", "saslauthd": "saslauthd"}


class UnsupportedPlatform(Exception):
    pass


# ------------------------------------------------------------------ tools


class PackageTool(Protocol):
    """How a platform installs and removes packages."""

    def install(self, names: tuple[str, ...]) -> tuple[Action, ...]: ...

    def remove(self, names: tuple[str, ...]) -> tuple[Action, ...]: ...


@dataclass(frozen=True)
class Systemd:
    kind: ClassVar[str] = "systemd"
    # SysV scripts behind systemd's generator: `systemctl enable` would go
    # through update-rc.d anyway, and is-enabled says "generated".
    sysv_scripts: frozenset[str] = frozenset()

    def enable(self, service: str) -> Command:
        if service in self.sysv_scripts:
            return Command(("update-rc.d", service, "enable"))
        return Command(("systemctl", "enable", "--quiet", service))

    def restart(self, service: str) -> Command:
        return Command(("systemctl", "restart", service))

    def reload(self, service: str) -> Command:
        return Command(("systemctl", "reload", service))

    def disable(self, service: str) -> Command:
        if service in self.sysv_scripts:
            return Command(("update-rc.d", service, "disable"))
        return Command(("systemctl", "disable", "--quiet", service))

    def stop(self, service: str) -> Command:
        return Command(("systemctl", "stop", service))

    def enabled_test(self, service: str) -> str:
        """A shell condition, true when the service starts at boot (as the services probe reads it)."""
        if service in self.sysv_scripts:
            return f"ls /etc/rc2.d/S??{shlex.quote(service)} >/dev/null 2>&1"
        return f"systemctl is-enabled --quiet {shlex.quote(service)} 2>/dev/null"


@dataclass(frozen=True)
class SysV:
    kind: ClassVar[str] = "sysv"
    def enable(self, service: str) -> Command:
        return Command(("chkconfig", service, "on"))

    def restart(self, service: str) -> Command:
        return Command((f"/etc/init.d/{service}", "restart"))

    def reload(self, service: str) -> Command:
        return Command((f"/etc/init.d/{service}", "reload"))

    def disable(self, service: str) -> Command:
        return Command(("chkconfig", service, "off"))

    def stop(self, service: str) -> Command:
        return Command((f"/etc/init.d/{service}", "stop"))

    def enabled_test(self, service: str) -> str:
        return f"chkconfig --list {shlex.quote(service)} 2>/dev/null | grep -q '3:on'"


ServiceManager = Systemd | SysV


# ------------------------------------------------------------------ data


@dataclass(frozen=True)
class Release:
    """Releases a platform serves: os-release IDs and a range of major versions."""

    os_ids: frozenset[str]
    first_major: int
    last_major: int | None = None  # None: every later release too

    def covers(self, ids: set[str], major: int) -> bool:
        return bool(self.os_ids & ids) and self.first_major <= major and (
            self.last_major is None or major <= self.last_major
        )


@dataclass(frozen=True)
class ShippedSettings:
    """A KEY=VALUE settings file as its package ships it.

    A dry run that installs the package cannot read the file yet: it predicts
    from these values which managed variables will change. ``quoted`` are the
    variables the file writes in double quotes (an edit keeps a line's quoting).
    """

    package: str
    values: Mapping[str, str] = field(default_factory=dict)
    quoted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Platform:
    name: str  # the report's name: debian12, el6, el7, el8
    family: str  # debian | el: for people reading a report; no step branches on it
    releases: tuple[Release, ...]
    packages: PackageTool
    services: ServiceManager
    # The oldest Postfix the platform ships: which main.cf and master.cf
    # parameters it knows (see provisioner.desired).
    postfix_version: tuple[int, int]
    mail_packages: tuple[str, ...]
    sendmail_packages: tuple[str, ...]
    # Cyrus SASL and saslauthd.
    smtpd_sasl_conf: str
    saslauthd_defaults: str
    saslauthd_settings: Mapping[str, str]  # the variables managed in saslauthd_defaults
    saslauthd_shipped: ShippedSettings
    postfix_chroot: bool
    # Unit or script whose health says whether the Postfix daemon runs.
    postfix_health_unit: str
    # master.cf's name for the port-465 service in the stock file.
    smtps_service: str
    # Firewall: the package the fact script looks for, what to install when
    # the host has no firewall tool (and the tools it brings), whether the
    # stock iptables ruleset rejects new inbound connections (so the mail
    # ports need opening), and whether rules persist through `service
    # iptables save` when that service is enabled at boot.
    firewall_package: str
    firewall_install: tuple[str, ...]
    firewall_install_tools: frozenset[str]
    iptables_stock_rejects: bool = False
    iptables_saved_by_service: bool = False
    # Files a package drops on install; their content is unknown until it is installed.
    package_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Users and groups a package creates.
    package_accounts: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # Service state right after a package is installed: (service, enabled, active).
    package_services: Mapping[str, tuple[str, bool, bool]] = field(default_factory=dict)
    # Commands a package puts on PATH.
    package_commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pam_smtp_tail: tuple[str, ...] = ()
    # Where an alternatives link at /etc/pam.d/smtp usually ends, if the platform has one.
    pam_smtp_link_target: str | None = None
    openssl_has_addext: bool = True

    def serves(self, os: OsRelease, by_id_like: bool) -> bool:
        ids = {os.id, *os.id_like} if by_id_like else {os.id}
        return any(release.covers(ids, os.major) for release in self.releases)

    @property
    def all_package_names(self) -> tuple[str, ...]:
        return self.mail_packages + self.sendmail_packages + (self.firewall_package,)

    # ------------------------------------------------------------ packages

    def install(self, names: list[str] | tuple[str, ...]) -> tuple[Action, ...]:
        """Install ``names``; the services they bring are recorded first, so a rollback stops and disables them."""
        actions = self.packages.install(tuple(names))
        keeps = tuple(keep for name in names if name in self.package_services
                      for keep in (self.keep_service(self.package_services[name][0], "boot"),
                                   self.keep_service(self.package_services[name][0], "run")))
        if not keeps or not actions:
            return actions
        return (Journaled(actions[0], keeps), *actions[1:])

    def remove(self, names: list[str] | tuple[str, ...]) -> tuple[Action, ...]:
        return self.packages.remove(tuple(names))

    # ------------------------------------------------------------ services

    def keep_service(self, service: str, what: str, back: str = "restart") -> KeepService:
        """The journal record of a service's boot (``what="boot"``) or running state, before a run touches it.

        ``back``: how a service that ran comes back with the restored
        configuration, ``restart`` or ``reload`` (reloaded if still running,
        else started).
        """
        daemon = DAEMONS[service]
        manager = self.services
        restart = manager.restart(service).render()
        if back == "reload":
            again = (f"if pgrep -x {shlex.quote(daemon)} >/dev/null 2>&1; then {manager.reload(service).render()}; "
                     f"else {restart}; fi")
        else:
            again = restart
        return KeepService(
            service=service,
            what=what,
            daemon=daemon,
            enabled_test=manager.enabled_test(service),
            disable=manager.disable(service).render(),
            stop=manager.stop(service).render(),
            back_running=again + "; " + one_line((self.is_active_check(service, daemon),)),
        )

    def enable(self, service: str) -> Action:
        return Journaled(self.services.enable(service), (self.keep_service(service, "boot"),))

    def restart(self, service: str) -> Action:
        return Journaled(self.services.restart(service), (self.keep_service(service, "run"),))

    def reload(self, service: str) -> Action:
        return Journaled(self.services.reload(service), (self.keep_service(service, "run", back="reload"),))

    def postfix_check(self) -> Shell:
        """`postfix check`, with its messages on stderr.

        Without a terminal postfix check sends its complaints only to syslog;
        under script(1) they come back to us for the report.
        """
        return Shell(
            "if script -qec true /dev/null >/dev/null 2>&1; then "
            "if ! script -qec 'postfix check' /dev/null >&2; then echo 'postfix check failed' >&2; exit 1; fi; "
            "elif ! postfix check; then echo 'postfix check failed' >&2; exit 1; fi"
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


@dataclass(frozen=True)
class Family:
    """OS releases that share packaging: their platforms, tried in order."""

    name: str
    platforms: tuple[Platform, ...]
    # Whether a platform's releases also match os-release's ID_LIKE, not only its ID.
    by_id_like: bool
    # Why a member of the family matches none of its platforms: {id} and {version} are filled in.
    unsupported: str = ""
    # Serves members whose os-release gives no major version.
    unknown_major: Platform | None = None

    @property
    def os_ids(self) -> frozenset[str]:
        """The IDs (or ID_LIKE values) that make a host a member of this family."""
        return frozenset().union(*(r.os_ids for p in self.platforms for r in p.releases))

    def platform_for(self, os: OsRelease) -> Platform:
        for platform in self.platforms:
            if platform.serves(os, self.by_id_like):
                return platform
        if self.unknown_major is not None and not os.major:
            return self.unknown_major
        raise UnsupportedPlatform(self.unsupported.format(id=os.id, version=os.version_id))
