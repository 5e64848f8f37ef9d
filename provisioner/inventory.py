"""Inventory: a YAML file of hosts, groups and vars, validated before any host is contacted.

Precedence: host vars > group vars (in file order) > defaults vars > built-in defaults.
``main_cf`` maps merge key by key; a key set to null unsets it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from provisioner.vars import MailVars, StrictModel

DEFAULT_INVENTORY = "inventories/hosts.yaml"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class InventoryError(Exception):
    """Bad input: names the file, and the host or key, in one line."""


class _Connection(StrictModel):
    address: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    key: str | None = None
    sudo: bool | None = None
    known_hosts: str | None = None
    connect_timeout: float | None = Field(default=None, gt=0)
    command_timeout: float | None = Field(default=None, gt=0)
    vars: dict[str, Any] = Field(default_factory=dict)


class _Defaults(_Connection):
    pass


class _HostEntry(_Connection):
    address: str  # type: ignore[assignment]


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
                raise InventoryError(f"{self.path}: no group named {group!r} (groups: {', '.join(sorted(self.groups)) or 'none'})")
            for name in self.groups[group]:
                chosen[name] = self.hosts[name]
        for name in names:
            if name not in self.hosts:
                raise InventoryError(f"{self.path}: no host named {name!r} (hosts: {', '.join(sorted(self.hosts))})")
            chosen[name] = self.hosts[name]
        return list(chosen.values())


def _loc(parts: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in parts)


def _pydantic_message(path: Path, prefix: tuple[Any, ...], exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = _loc(prefix + tuple(err["loc"]))
    kind = err["type"]
    if kind == "extra_forbidden":
        text = "unknown key"
    elif kind == "missing":
        text = "required key is missing"
    else:
        text = err["msg"]
        if err.get("input") is not None and kind.endswith("_type"):
            text += f" (got {type(err['input']).__name__} {err['input']!r})"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {where}: {text}{more}"


def _merge_vars(*layers: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "main_cf" and isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None:
        return None
    expanded = os.path.expanduser(value)
    return str((base / expanded).resolve()) if not os.path.isabs(expanded) else expanded


LOCAL_PATH_VARS = ("tls_cert", "tls_key", "tls_ca", "tls_combined", "verify_credentials_file")


def load(path: str | os.PathLike[str] = DEFAULT_INVENTORY) -> Inventory:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InventoryError(f"{path}: inventory file not found") from None
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryError(f"{path}{where}: malformed YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise InventoryError(f"{path}: the inventory must be a mapping with a 'hosts' key")
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        raise InventoryError(_pydantic_message(path, (), exc)) from None

    base = path.parent
    for name in list(parsed.hosts) + list(parsed.groups):
        if not NAME_RE.match(name):
            raise InventoryError(f"{path}: {name!r} is not a valid host or group name")
    membership: dict[str, list[str]] = {name: [] for name in parsed.hosts}
    for group_name, group in parsed.groups.items():
        if group_name in parsed.hosts:
            raise InventoryError(f"{path}: groups.{group_name}: a group cannot share a host's name")
        for member in group.hosts:
            if member not in parsed.hosts:
                raise InventoryError(f"{path}: groups.{group_name}.hosts: no host named {member!r}")
            membership[member].append(group_name)

    defaults = parsed.defaults
    hosts: dict[str, Host] = {}
    for name, entry in parsed.hosts.items():
        layers = [defaults.vars, *(parsed.groups[g].vars for g in membership[name]), entry.vars]
        merged = _merge_vars(*layers)
        for key in LOCAL_PATH_VARS:
            if isinstance(merged.get(key), str):
                merged[key] = _resolve(base, merged[key])
        try:
            mail_vars = MailVars.model_validate(merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            origin = _origin(err["loc"], name, entry.vars, [(g, parsed.groups[g].vars) for g in membership[name]], defaults.vars)
            raise InventoryError(_pydantic_message(path, origin, exc)) from None
        for key in ("tls_cert", "tls_key", "tls_ca", "tls_combined"):
            local = getattr(mail_vars, key)
            if local and not os.path.isfile(local):
                raise InventoryError(f"{path}: hosts.{name}.vars.{key}: file {local} does not exist on this machine")

        def pick(attr: str, fallback: Any) -> Any:
            value = getattr(entry, attr)
            if value is None:
                value = getattr(defaults, attr)
            return fallback if value is None else value

        hosts[name] = Host(
            name=name,
            address=entry.address,
            port=pick("port", 22),
            user=pick("user", "root"),
            key=_resolve(base, pick("key", None)),
            sudo=pick("sudo", False),
            known_hosts=_resolve(base, pick("known_hosts", "~/.ssh/known_hosts")),
            connect_timeout=pick("connect_timeout", 10.0),
            command_timeout=pick("command_timeout", 600.0),
            groups=tuple(membership[name]),
            vars=mail_vars,
        )
    groups = {g: tuple(group.hosts) for g, group in parsed.groups.items()}
    return Inventory(path=path, hosts=hosts, groups=groups)


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
