"""Inventory: a YAML file of hosts, groups and vars, validated before any host is contacted.

Precedence: host vars > group vars (in file order) > defaults vars > built-in defaults.
``main_cf`` maps merge key by key; a key set to null unsets it.

Everything a connection needs is checked here too: the address (an IP address
or a DNS name; ``user@host:port`` is split into its parts), the SSH user, the
key file and the known_hosts file (they must exist), and the ProxyJump route
from ssh_config (see provisioner/sshconfig.py). A run that starts has no input
left to refuse.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from provisioner.inputfiles import key_path, load_yaml
from provisioner.sshconfig import Jump, SshConfig
from provisioner.validation import INVENTORY_NAME_RE, InputError, is_ssh_user, parse_destination, shown
from provisioner.vars import MailVars, StrictModel

DEFAULT_INVENTORY = "inventories/hosts.yaml"


class InventoryError(InputError):
    """Bad input: names the file, and the host or key, in one line."""


class _Connection(StrictModel):
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    key: str | None = None
    sudo: bool | None = None
    known_hosts: str | None = None
    ssh_config: str | None = None
    proxy_jump: str | None = None
    connect_timeout: float | None = Field(default=None, gt=0, le=3600)
    command_timeout: float | None = Field(default=None, gt=0, le=86400)
    vars: dict[str, Any] = Field(default_factory=dict)


class _Defaults(_Connection):
    pass


class _HostEntry(_Connection):
    address: str


class _Group(StrictModel):
    hosts: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)


class _File(StrictModel):
    defaults: _Defaults = Field(default_factory=_Defaults)
    groups: dict[str, _Group] = Field(default_factory=dict)
    hosts: dict[str, _HostEntry]


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key: str | None = None
    sudo: bool = False
    known_hosts: str = "~/.ssh/known_hosts"
    connect_timeout: float = 10.0
    command_timeout: float = 600.0
    groups: tuple[str, ...] = ()
    vars: MailVars | None = field(default=None, compare=False)
    jumps: tuple[Jump, ...] = ()  # ProxyJump hosts, first hop first


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: dict[str, Host]
    groups: dict[str, tuple[str, ...]]

    def select(self, names: list[str] | tuple[str, ...] = (), group: str | None = None, all_hosts: bool = False) -> list[Host]:
        if not names and not group and not all_hosts:
            raise InventoryError(f"{self.path}: choose hosts with --host NAME, --group NAME or --all")
        chosen: dict[str, Host] = {}
        if all_hosts:
            chosen.update(self.hosts)
        if group:
            if group not in self.groups:
                raise InventoryError(f"{self.path}: no group named {shown(group)} (groups: {_listing(self.groups)})")
            for name in self.groups[group]:
                chosen[name] = self.hosts[name]
        for name in names:
            if name not in self.hosts:
                raise InventoryError(f"{self.path}: no host named {shown(name)} (hosts: {_listing(self.hosts)})")
            chosen[name] = self.hosts[name]
        return list(chosen.values())


def _listing(names: dict) -> str:
    shown_names = sorted(names)[:20]
    more = f", ... {len(names) - 20} more" if len(names) > 20 else ""
    return (", ".join(shown_names) + more) or "none"


def _located(err: dict) -> tuple[tuple[Any, ...], str]:
    """The key path and the message of one pydantic error."""
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind == "missing":
        return loc, "required key is missing"
    text = err["msg"].removeprefix("Value error, ")
    # A model-level check names its key first ("mail_group: ..."): show it where keys go.
    named = re.match(r"([a-z_]+): ", text) if not loc else None
    if named:
        loc, text = (named.group(1),), text[named.end():]
    if "main_cf" in loc[:-1] and isinstance(err.get("input"), dict):
        return loc, "give a string, null, or a mapping whose one key is secret"
    if err.get("input") is not None and kind.endswith("_type"):
        # A main.cf value may be a secret: its type is enough.
        value = "" if "main_cf" in loc else f" {shown(err['input'])}"
        text += f" (got {type(err['input']).__name__}{value})"
    return loc, text


def _pydantic_message(path: Path, prefix: tuple[Any, ...], exc: ValidationError) -> str:
    loc, text = _located(exc.errors()[0])
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {key_path(prefix + loc)}: {text}{more}"


def _merge_vars(*layers: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "main_cf" and isinstance(value, dict) and isinstance(merged.get(key), dict):
                combined = dict(merged[key])
                for name, setting in value.items():
                    # A key marked secret in a lower layer stays secret when a higher one sets it.
                    if _is_secret(combined.get(name)) and isinstance(setting, str):
                        setting = {"secret": setting}
                    combined[name] = setting
                merged[key] = combined
            else:
                merged[key] = value
    return merged


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["secret"]


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None:
        return None
    expanded = os.path.expanduser(value)
    return str((base / expanded).resolve()) if not os.path.isabs(expanded) else expanded


LOCAL_PATH_VARS = ("tls_cert", "tls_key", "tls_ca", "tls_combined", "verify_credentials_file")


def load(path: str | os.PathLike[str] = DEFAULT_INVENTORY) -> Inventory:
    path = Path(path)
    try:
        raw = load_yaml(path, "inventory file")
    except InputError as exc:
        raise InventoryError(str(exc)) from None
    if not isinstance(raw, dict):
        raise InventoryError(f"{path}: the inventory must be a mapping with a 'hosts' key")
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        raise InventoryError(_pydantic_message(path, (), exc)) from None

    for section, names in (("hosts", parsed.hosts), ("groups", parsed.groups)):
        for name in names:
            if not INVENTORY_NAME_RE.fullmatch(name):
                raise InventoryError(f"{path}: {section}.{shown(name)}: not a valid name "
                                     "(letters, digits, '.', '_', '-'; at most 64 characters)")
    membership: dict[str, list[str]] = {name: [] for name in parsed.hosts}
    for group_name, group in parsed.groups.items():
        if group_name in parsed.hosts:
            raise InventoryError(f"{path}: groups.{group_name}: a group cannot share a host's name")
        for member in group.hosts:
            if member not in parsed.hosts:
                raise InventoryError(f"{path}: groups.{group_name}.hosts: no host named {shown(member)}")
            if group_name in membership[member]:
                raise InventoryError(f"{path}: groups.{group_name}.hosts: {member} is listed twice")
            membership[member].append(group_name)

    base = path.parent
    ssh_configs: dict[str | None, SshConfig] = {}
    hosts: dict[str, Host] = {}
    for name, entry in parsed.hosts.items():
        group_vars = [(g, parsed.groups[g].vars) for g in membership[name]]
        mail_vars = _host_vars(path, name, entry, group_vars, parsed.defaults.vars)
        hosts[name] = _host(path, name, entry, parsed.defaults, tuple(membership[name]), mail_vars, ssh_configs)
    groups = {g: tuple(group.hosts) for g, group in parsed.groups.items()}
    return Inventory(path=path, hosts=hosts, groups=groups)


def _host_vars(path: Path, name: str, entry: _HostEntry, group_vars: list[tuple[str, dict]], default_vars: dict) -> MailVars:
    merged = _merge_vars(default_vars, *(gvars for _, gvars in group_vars), entry.vars)
    for key in LOCAL_PATH_VARS:
        if isinstance(merged.get(key), str):
            merged[key] = _resolve(path.parent, merged[key])
    try:
        mail_vars = MailVars.model_validate(merged)
    except ValidationError as exc:
        origin = _origin(_located(exc.errors()[0])[0], name, entry.vars, group_vars, default_vars)
        raise InventoryError(_pydantic_message(path, origin, exc)) from None
    for key in ("tls_cert", "tls_key", "tls_ca", "tls_combined"):
        local = getattr(mail_vars, key)
        if local:
            problem = _file_problem(local)
            if problem:
                where = key_path(_origin((key,), name, entry.vars, group_vars, default_vars) + (key,))
                raise InventoryError(f"{path}: {where}: file {local} {problem}")
    return mail_vars


def _host(path: Path, name: str, entry: _HostEntry, defaults: _Defaults, groups: tuple[str, ...],
          mail_vars: MailVars, ssh_configs: dict[str | None, SshConfig]) -> Host:
    """The connection settings of one host: its entry > defaults > built-in defaults, all checked."""

    def pick(attr: str, fallback: Any) -> tuple[Any, str]:
        for source, layer in ((f"hosts.{name}", entry), ("defaults", defaults)):
            value = getattr(layer, attr)
            if value is not None:
                return value, f"{source}.{attr}"
        return fallback, f"hosts.{name}.{attr}"

    try:
        address_user, address, address_port = parse_destination(entry.address)
    except ValueError as exc:
        raise InventoryError(f"{path}: hosts.{name}.address: {exc}") from None
    for attr, given in (("user", address_user), ("port", address_port)):
        own = getattr(entry, attr)
        if given is not None and own is not None and own != given:
            raise InventoryError(f"{path}: hosts.{name}.address: gives {attr} {given} but {attr}: {own} is set too")
    user, user_at = (address_user, f"hosts.{name}.address") if address_user else pick("user", "root")
    if not is_ssh_user(user):
        raise InventoryError(f"{path}: {user_at}: {shown(user)} is not a valid SSH user name")
    port = address_port or pick("port", 22)[0]

    key, key_at = pick("key", None)
    key = _resolve(path.parent, key)
    if key is not None:
        problem = _file_problem(key, private=True)
        if problem:
            raise InventoryError(f"{path}: {key_at}: key file {key} {problem}")
    known_hosts, known_at = pick("known_hosts", "~/.ssh/known_hosts")
    known_hosts = _resolve(path.parent, known_hosts)
    problem = _file_problem(known_hosts)
    if problem:
        raise InventoryError(f"{path}: {known_at}: known_hosts file {known_hosts} {problem} "
                             "(host keys are checked strictly: add each host's key first)")

    config_path, _ = pick("ssh_config", None)
    config_path = _resolve(path.parent, config_path)
    jump_spec, jump_at = pick("proxy_jump", None)
    try:
        if config_path not in ssh_configs:
            ssh_configs[config_path] = SshConfig.load(config_path)
        config = ssh_configs[config_path]
        if jump_spec is None:
            jumps = config.route(address)
        elif jump_spec.lower() == "none":
            jumps = ()
        else:
            jumps = config.chain(jump_spec, f"{path}: {jump_at}", (address,))
    except InputError as exc:
        raise InventoryError(f"{exc} (for host {name})") from None

    return Host(
        name=name,
        address=address,
        port=port,
        user=user,
        key=key,
        sudo=pick("sudo", False)[0],
        known_hosts=known_hosts,
        connect_timeout=pick("connect_timeout", 10.0)[0],
        command_timeout=pick("command_timeout", 600.0)[0],
        groups=groups,
        vars=mail_vars,
        jumps=jumps,
    )


def _file_problem(path: str, private: bool = False) -> str | None:
    """Why a local file the run needs cannot be used, or None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "does not exist on this machine"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if not os.access(path, os.R_OK):
        return "is not readable"
    if private and info.st_mode & 0o077:
        return f"is readable by others (mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it, as ssh requires"
    return None


def _origin(loc: tuple[Any, ...], host: str, host_vars: dict, group_vars: list[tuple[str, dict]], default_vars: dict) -> tuple[Any, ...]:
    """Name the place in the file that set the offending var: the last layer that set it wins."""

    def depth(layer: dict) -> int:
        node: Any = layer
        found = 0
        for part in loc:
            if isinstance(node, dict) and part in node:
                node = node[part]
                found += 1
            else:
                break
        return found

    layers = [(("hosts", host, "vars"), host_vars)]
    layers += [(("groups", group, "vars"), gvars) for group, gvars in reversed(group_vars)]
    layers.append((("defaults", "vars"), default_vars))
    best = max(layers, key=lambda item: depth(item[1]))  # max keeps the first (highest precedence) on ties
    return best[0] if depth(best[1]) else layers[0][0]
