"""ssh_config(5), read for the one thing provisioner takes from it: ProxyJump routes.

The inventory says how to reach each host (address, port, user, key,
known_hosts, timeouts); ssh_config says through which jump hosts, as
``ssh ADDRESS`` would: the target's ``ProxyJump`` is looked up by its
inventory address. For each jump host, its own ``HostName``, ``Port``,
``User``, ``IdentityFile`` and ``ProxyJump`` (for the first hop of a list)
apply, as with ``ssh -J``. Every other option (ConnectTimeout,
StrictHostKeyChecking, UserKnownHostsFile, ...) is ignored: host keys of jump
hosts are checked against the inventory's known_hosts file like the target's.

This is a reader of its own, not paramiko's: paramiko resolves the local host
name through DNS when it expands IdentityFile, runs ``Match exec`` commands
and has no ``Include``. Here nothing is run and nothing is resolved; a
``ProxyCommand``, or a ``Match`` criterion that cannot be decided without
running something (exec, localnetwork, tagged), is refused when it would
decide a route, with a one-line error naming the file and line.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
import shlex
import socket
from dataclasses import dataclass, field

from provisioner.inputfiles import read_text
from provisioner.validation import InputError, host_address_problem, is_ssh_user, shown

DEFAULT_FILES = ("~/.ssh/config", "/etc/ssh/ssh_config")
MAX_INCLUDE_DEPTH = 16
MAX_HOPS = 8
ROUTE_KEYWORDS = ("hostname", "port", "user", "identityfile", "proxyjump", "proxycommand")
SINGLE_VALUE = ("hostname", "port", "user", "identityfile", "proxyjump")
LINE_RE = re.compile(r"([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*)")
JUMP_RE = re.compile(r"(?:ssh://)?(?:(?P<user>[^@/]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_+.-]+)(?::(?P<port>[0-9]+))?/?")


@dataclass(frozen=True)
class Jump:
    """One jump host of a route, as ssh_config resolves it."""

    name: str  # as written in ProxyJump
    address: str
    port: int = 22
    user: str = "root"
    keys: tuple[str, ...] = ()  # IdentityFile entries that exist on this machine

    def label(self) -> str:
        return self.name if self.name == self.address else f"{self.name} ({self.address})"


@dataclass(frozen=True)
class _Option:
    keyword: str
    value: str
    where: str  # file:line


@dataclass
class _Block:
    kind: str  # "all" (before any Host/Match), "host" or "match"
    args: list[str]
    where: str
    options: list[_Option] = field(default_factory=list)
    # The Host/Match blocks whose Include this block was read from: they must apply too.
    within: tuple["_Block", ...] = ()


@dataclass(frozen=True)
class _Settings:
    values: dict[str, str]
    identity_files: tuple[str, ...]
    where: dict[str, str]


class SshConfig:
    """The blocks of one or more ssh_config files, in the order ssh reads them."""

    def __init__(self, blocks: list[_Block], sources: tuple[str, ...]):
        self.blocks = blocks
        self.sources = sources

    @classmethod
    def load(cls, path: str | None = None) -> "SshConfig":
        """Read ``path`` (like ``ssh -F``), or else ~/.ssh/config then /etc/ssh/ssh_config if they exist."""
        blocks: list[_Block] = []
        sources: list[str] = []
        if path is not None:
            files = [(os.path.expanduser(path), True)]
        else:
            files = [(os.path.expanduser(name), False) for name in DEFAULT_FILES]
        for name, required in files:
            if not required and not os.path.lexists(name):
                continue
            # ssh_config(5): a relative Include is under ~/.ssh in a user's file, /etc/ssh in the system's.
            base = "/etc/ssh" if name == DEFAULT_FILES[1] else os.path.expanduser("~/.ssh")
            sources.append(name)
            _read(name, base, 0, blocks)
        return cls(blocks, tuple(sources))

    def describe(self) -> str:
        return " + ".join(self.sources) if self.sources else "ssh config"

    def route(self, address: str) -> tuple[Jump, ...]:
        """The jump hosts on the way to ``address`` (empty: connect directly)."""
        settings = self._settings(address)
        if settings.values.get("proxycommand", "none").lower() != "none":
            raise InputError(
                f"{settings.where['proxycommand']}: ProxyCommand for {address} is not supported; "
                "use ProxyJump, or proxy_jump in the inventory"
            )
        spec = settings.values.get("proxyjump")
        if not spec or spec.lower() == "none":
            return ()
        return self.chain(spec, settings.where["proxyjump"], (address,))

    def chain(self, spec: str, where: str, trail: tuple[str, ...]) -> tuple[Jump, ...]:
        """Resolve a ProxyJump value (``[user@]host[:port][,...]``) into hops, first hop first."""
        items = spec.split(",")
        first_name = _jump_parts(items[0], where)[1]
        first = self._settings(first_name)
        before: tuple[Jump, ...] = ()
        first_spec = first.values.get("proxyjump", "none")
        if first.values.get("proxycommand", "none").lower() != "none":
            raise InputError(f"{first.where['proxycommand']}: ProxyCommand for jump host {first_name} is not supported; use ProxyJump")
        if first_spec.lower() != "none":
            if first_name in trail:
                loop = " -> ".join((*trail, first_name))
                raise InputError(f"{first.where['proxyjump']}: ProxyJump loop: {loop} (exclude the jump host, e.g. Host * !{first_name})")
            before = self.chain(first_spec, first.where["proxyjump"], (*trail, first_name))
        hops = before + tuple(self._jump(item, where) for item in items)
        if len(hops) > MAX_HOPS:
            raise InputError(f"{where}: more than {MAX_HOPS} jump hosts on the way to {trail[0]}")
        return hops

    def _jump(self, item: str, where: str) -> Jump:
        user, name, port = _jump_parts(item, where)
        settings = self._settings(name)
        values = settings.values
        address = values.get("hostname", name)
        problem = host_address_problem(address)
        if problem:
            raise InputError(f"{settings.where.get('hostname', where)}: jump host {name}: {problem}")
        if port is None and "port" in values:
            port = _port(values["port"], f"{settings.where['port']}: jump host {name}")
        user = user or values.get("user") or getpass.getuser()
        if not is_ssh_user(user):
            raise InputError(f"{settings.where.get('user', where)}: jump host {name}: {shown(user)} is not a valid SSH user name")
        tokens = _tokens(name, address, port or 22, user)
        keys = tuple(
            path
            for path in (_expand(value, tokens, settings.where["identityfile"]) for value in settings.identity_files)
            if os.path.isfile(path)
        )
        return Jump(name=name, address=address, port=port or 22, user=user, keys=keys)

    def _settings(self, host: str) -> _Settings:
        """The first value of each route keyword that applies to ``host`` (IdentityFile accumulates)."""
        values: dict[str, str] = {}
        where: dict[str, str] = {}
        identity: list[str] = []
        for block in self.blocks:
            if not block.options or not any(o.keyword in ROUTE_KEYWORDS for o in block.options):
                continue
            if not self._applies(block, host, values):
                continue
            for option in block.options:
                key = option.keyword
                if key == "identityfile":
                    identity.append(option.value)
                    where.setdefault(key, option.where)
                    continue
                if key not in ROUTE_KEYWORDS or key in values:
                    continue
                if key in ("proxyjump", "proxycommand") and ({"proxyjump", "proxycommand"} & set(values)):
                    continue  # whichever comes first wins (ssh_config(5), ProxyJump)
                value = option.value
                if key == "hostname":
                    value = value.replace("%h", host).replace("%%", "%")
                values[key] = value
                where[key] = option.where
        return _Settings(values, tuple(identity), where)

    def _applies(self, block: _Block, host: str, values: dict[str, str]) -> bool:
        if not all(self._applies(outer, host, values) for outer in block.within):
            return False
        if block.kind == "all":
            return True
        if block.kind == "host":
            return _pattern_list_matches(block.args, host)
        return _match_applies(block, host, values)


def _read(name: str, base: str, depth: int, blocks: list[_Block], within: tuple[_Block, ...] = ()) -> None:
    if depth > MAX_INCLUDE_DEPTH:
        raise InputError(f"{name}: Include nested deeper than {MAX_INCLUDE_DEPTH} files")
    text = read_text(name, "ssh config file")
    if depth == 0:
        blocks.append(_Block("all", [], f"{name}:1"))
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{number}"
        match = LINE_RE.fullmatch(line)
        if not match:
            raise InputError(f"{where}: cannot parse {shown(line)}")
        keyword, value = match.group(1).lower(), match.group(2).strip()
        args = _split(value, where)
        if keyword in ("host", "match"):
            if not args:
                raise InputError(f"{where}: {match.group(1)} needs an argument")
            blocks.append(_Block(keyword, args, where, within=within))
        elif keyword == "include":
            # An included file is read only where the enclosing block applies (ssh: SSHCONF_NEVERMATCH),
            # and the enclosing block goes on after it.
            enclosing = blocks[-1]
            inner = enclosing.within + ((enclosing,) if enclosing.kind != "all" else ())
            for pattern in args:
                pattern = os.path.expanduser(pattern)
                if not os.path.isabs(pattern):
                    pattern = os.path.join(base, pattern)
                for included in sorted(glob.glob(pattern)):
                    _read(included, base, depth + 1, blocks, inner)
            blocks.append(_Block(enclosing.kind, enclosing.args, enclosing.where, within=enclosing.within))
        elif keyword in SINGLE_VALUE:
            if len(args) != 1:
                raise InputError(f"{where}: {match.group(1)} takes one value")
            blocks[-1].options.append(_Option(keyword, args[0], where))
        else:
            blocks[-1].options.append(_Option(keyword, value, where))


def _split(value: str, where: str) -> list[str]:
    try:
        return shlex.split(value, comments=False, posix=True)
    except ValueError:
        raise InputError(f"{where}: unbalanced quotes in {shown(value)}") from None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()))


def _pattern_list_matches(patterns: list[str], name: str) -> bool:
    """OpenSSH's pattern lists: any positive pattern matches and no negated one does."""
    name = name.lower()
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _glob_regex(pattern[1:] if negated else pattern).fullmatch(name):
            if negated:
                return False
            matched = True
    return matched


def _match_applies(block: _Block, host: str, values: dict[str, str]) -> bool:
    args = list(block.args)
    while args:
        criterion = args.pop(0)
        negated = criterion.startswith("!")
        kind = criterion.lstrip("!").lower()
        if kind in ("all", "final"):
            result = True
        elif kind == "canonical":
            result = False  # provisioner never canonicalizes host names
        else:
            if not args:
                raise InputError(f"{block.where}: Match {kind} needs an argument")
            argument = args.pop(0)
            if kind == "host":
                result = _pattern_list_matches(argument.split(","), values.get("hostname", host))
            elif kind == "originalhost":
                result = _pattern_list_matches(argument.split(","), host)
            elif kind == "user":
                result = _pattern_list_matches(argument.split(","), values.get("user") or getpass.getuser())
            elif kind == "localuser":
                result = _pattern_list_matches(argument.split(","), getpass.getuser())
            else:
                raise InputError(
                    f"{block.where}: Match {kind} cannot be decided without running or probing anything, "
                    f"and this block sets how to reach {host}; use proxy_jump in the inventory, or ssh_config "
                    "to name a file without it"
                )
        if result == negated:
            return False
    return True


def _jump_parts(item: str, where: str) -> tuple[str | None, str, int | None]:
    match = JUMP_RE.fullmatch(item.strip())
    if not match or match.group("host").startswith("-"):
        raise InputError(f"{where}: ProxyJump {shown(item)} is not [user@]host[:port]")
    user, host, port = match.group("user"), match.group("host"), match.group("port")
    if user is not None and not is_ssh_user(user):
        raise InputError(f"{where}: ProxyJump {shown(item)}: {shown(user)} is not a valid SSH user name")
    return user, host.strip("[]"), _port(port, f"{where}: ProxyJump {shown(item)}") if port is not None else None


def _port(text: str, where: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InputError(f"{where}: port {shown(text)} is not a number from 1 to 65535")
    return int(text)


def _tokens(name: str, address: str, port: int, user: str) -> dict[str, str]:
    local = socket.gethostname()
    return {
        "%": "%", "d": os.path.expanduser("~"), "h": address, "i": str(os.getuid()), "L": local.split(".")[0],
        "l": local, "n": name, "p": str(port), "r": user, "u": getpass.getuser(),
    }


def _expand(value: str, tokens: dict[str, str], where: str) -> str:
    """IdentityFile: ``~``, ``${VAR}`` and the %-tokens of ssh_config(5) TOKENS."""

    def token(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            if match.group(1) not in tokens:
                raise InputError(f"{where}: token %{match.group(1)} is not supported in IdentityFile")
            return tokens[match.group(1)]
        if match.group(2) not in os.environ:
            raise InputError(f"{where}: environment variable {match.group(2)} is not set")
        return os.environ[match.group(2)]

    expanded = re.sub(r"%(.)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}", token, value)
    return os.path.expanduser(expanded)
