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

from provisioner.model import Action, Command, Journaled, KeepService, OsRelease, Shell, Undo, one_line
from provisioner.platforms.postfix import PostfixBuild

# The process that shows a service's daemon runs (the process table, not the service manager, is the truth).
DAEMONS = {"postfix": "master", "saslauthd": "saslauthd", "sendmail": "sendmail"}


class UnsupportedPlatform(Exception):
    pass


@dataclass(frozen=True)
class ReleaseFloor:
    """The oldest release of a package the desired state works with, and why.

    ``release`` is compared with the installed version the way the platform's
    package tool orders them. The packages step updates an older package; the
    main_cf step refuses to write main.cf while postfix stays below its floor.
    """

    package: str
    release: str
    lacks: str  # what older releases lack: "TLSv1.1 and TLSv1.2"
    harm: str  # what the desired state would do to such a release


@dataclass(frozen=True)
class ManagedFile:
    """A whole file the tool writes on platforms that need it (a systemd drop-in...)."""

    path: str
    content: str
    why: str  # for the plan: what the file is for


@dataclass(frozen=True)
class MtaAlternative:
    """The alternatives group that decides /usr/sbin/sendmail (and its /etc/pam.d/smtp slave)."""

    name: str  # "mta"
    link: str  # the group's link in /etc/alternatives, read with readlink
    postfix: str  # postfix's path in the group
    sendmail: str  # sendmail's: its package takes it along when removed


# ------------------------------------------------------------------ tools


class PackageTool(Protocol):
    """How a platform installs, updates and removes packages, and orders their versions."""

    def install(self, names: tuple[str, ...]) -> tuple[Action, ...]: ...

    def update(self, names: tuple[str, ...]) -> tuple[Action, ...]: ...

    def remove(self, names: tuple[str, ...]) -> tuple[Action, ...]: ...

    def compare(self, a: str, b: str) -> int:
        """-1, 0 or 1: installed versions, as the package manager orders them."""
        ...


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

    def disable_now(self, service: str) -> tuple[Command, ...]:
        return (Command(("systemctl", "disable", "--now", service)),)

    def reload_units(self) -> tuple[Command, ...]:
        return (Command(("systemctl", "daemon-reload")),)

    def unmask(self, service: str) -> tuple[Command, Command] | None:
        """Lift a mask, and what puts it back."""
        return (Command(("systemctl", "unmask", "--quiet", service)), Command(("systemctl", "mask", "--quiet", service)))

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

    def disable_now(self, service: str) -> tuple[Command, ...]:
        return (Command(("chkconfig", service, "off")), Command((f"/etc/init.d/{service}", "stop")))

    def reload_units(self) -> tuple[Command, ...]:
        return ()

    def unmask(self, service: str) -> tuple[Command, Command] | None:
        return None  # SysV has no mask

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
    name: str  # the report's name: debian12, debian13, el6, el7, el8, el9
    family: str  # debian | el: for people reading a report; no step branches on it
    releases: tuple[Release, ...]
    packages: PackageTool
    services: ServiceManager
    # Every Postfix the platform's releases ship, oldest first: which main.cf
    # and master.cf parameters and syntax they all read (see provisioner.desired).
    postfix: tuple[PostfixBuild, ...]
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
    # The stock master.cf the postfix package ships besides /etc/postfix/master.cf:
    # what a master.cf that lost its services is rebuilt from.
    master_cf_stock: str
    # Firewall: the package the fact script looks for, and what to install
    # when the host has no firewall tool (and the tools it brings). Whether
    # the host's own rules close the mail ports, and whether they are saved,
    # is read from the host (steps/firewall), never assumed per platform.
    firewall_package: str
    firewall_install: tuple[str, ...]
    firewall_install_tools: frozenset[str]
    # Packages older than these releases are updated (see ReleaseFloor).
    package_floors: tuple[ReleaseFloor, ...] = ()
    # main.cf's cyrus_sasl_config_path, where the platform's Postfix has no
    # built-in path to smtpd_sasl_conf's directory (None: left to Postfix).
    cyrus_sasl_config_path: str | None = None
    # Other smtpd.conf files Cyrus reads before smtpd_sasl_conf, each with why it
    # must go (besides shadowing ours): removed when found.
    smtpd_sasl_conf_shadows: tuple[tuple[str, str], ...] = ()
    # A systemd drop-in saslauthd's unit needs for the socket inside the chroot.
    saslauthd_unit_dropin: ManagedFile | None = None
    # The alternatives group that picks the system MTA, where the platform has one.
    mta_alternative: MtaAlternative | None = None
    # sendmail's service, stopped and disabled when its package is kept.
    sendmail_service: str | None = None
    # Files a package drops on install; their content is unknown until it is installed.
    package_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Managed files another package claims as its conffiles when installed over them, which
    # its purge would delete: kept across the removal (see steps/packages.py).
    purge_takes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
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

    @property
    def postfix_version(self) -> tuple[int, ...]:
        """The oldest Postfix the platform ships: what every key and syntax must suit."""
        return min(build.number for build in self.postfix)

    @property
    def newest_postfix_version(self) -> tuple[int, ...]:
        return max(build.number for build in self.postfix)

    def serves(self, os: OsRelease, by_id_like: bool) -> bool:
        ids = {os.id, *os.id_like} if by_id_like else {os.id}
        return any(release.covers(ids, os.major) for release in self.releases)

    @property
    def all_package_names(self) -> tuple[str, ...]:
        return self.mail_packages + self.sendmail_packages + (self.firewall_package,)

    # ------------------------------------------------------------ packages

    def install(self, names: list[str] | tuple[str, ...]) -> tuple[Action, ...]:
        """Install ``names``; the services they bring are recorded first, so a rollback stops and disables them."""
        return self._keeping_services(names, self.packages.install(tuple(names)))

    def update(self, names: list[str] | tuple[str, ...]) -> tuple[Action, ...]:
        return self._keeping_services(names, self.packages.update(tuple(names)))

    def remove(self, names: list[str] | tuple[str, ...]) -> tuple[Action, ...]:
        return self.packages.remove(tuple(names))

    def _keeping_services(self, names, actions: tuple[Action, ...]) -> tuple[Action, ...]:
        keeps = tuple(keep for name in names if name in self.package_services
                      for keep in (self.keep_service(self.package_services[name][0], "boot"),
                                   self.keep_service(self.package_services[name][0], "run")))
        if not keeps or not actions:
            return actions
        return (Journaled(actions[0], keeps), *actions[1:])

    def below_floor(self, package: str, installed: str | None) -> ReleaseFloor | None:
        """The floor an installed release is older than (None: fine, not installed, or not known yet)."""
        if not installed or installed.startswith("("):  # "(to be installed)", "(to be updated)"
            return None
        for floor in self.package_floors:
            if floor.package == package and self.packages.compare(installed, floor.release) < 0:
                return floor
        return None

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
            enable=manager.enable(service).render(),
            disable=manager.disable(service).render(),
            stop=manager.stop(service).render(),
            back_running=again + "; " + one_line((self.is_active_check(service, daemon),)),
        )

    def enable(self, service: str) -> Action:
        return Journaled(self.services.enable(service), (self.keep_service(service, "boot"),))

    def unmask(self, service: str) -> tuple[Action, ...]:
        """Lift the service manager's mask; a rollback masks it again."""
        commands = self.services.unmask(service)
        if commands is None:
            return ()
        unmask, mask = commands
        return (Journaled(unmask, (Undo(f"mask {service} again", mask.render()),)),)

    def restart(self, service: str) -> Action:
        return Journaled(self.services.restart(service), (self.keep_service(service, "run"),))

    def reload(self, service: str) -> Action:
        return Journaled(self.services.reload(service), (self.keep_service(service, "run", back="reload"),))

    def disable_now(self, service: str) -> tuple[Action, ...]:
        """Stop and disable ``service``; a rollback enables and starts it again if it was."""
        actions = self.services.disable_now(service)
        keeps = (self.keep_service(service, "boot"), self.keep_service(service, "run"))
        return (Journaled(actions[0], keeps), *actions[1:])

    def reload_units(self) -> tuple[Command, ...]:
        """What makes the service manager read changed unit files (nothing for SysV)."""
        return self.services.reload_units()

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
    # Releases known to need what no platform models: refused, with the reason.
    refused: tuple[tuple[Release, str], ...] = ()

    @property
    def os_ids(self) -> frozenset[str]:
        """The IDs (or ID_LIKE values) that make a host a member of this family."""
        releases = [r for p in self.platforms for r in p.releases] + [r for r, _ in self.refused]
        return frozenset().union(*(r.os_ids for r in releases))

    def platform_for(self, os: OsRelease) -> Platform:
        ids = {os.id, *os.id_like} if self.by_id_like else {os.id}
        for release, reason in self.refused:
            if release.covers(ids, os.major):
                raise UnsupportedPlatform(f"unsupported operating system {os.id} {os.version_id}: {reason}")
        for platform in self.platforms:
            if platform.serves(os, self.by_id_like):
                return platform
        if self.unknown_major is not None and not os.major:
            return self.unknown_major
        raise UnsupportedPlatform(self.unsupported.format(id=os.id, version=os.version_id))
