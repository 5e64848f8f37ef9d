"""Credentials for verify: from the environment, or from a file outside git.

The file is YAML, either keyed by host name or flat (for every host):
    lab1: {user: mailuser, password: "...", outsider_user: outsider, outsider_password: "..."}
Like ssh with private keys, a file that others can read is refused. It is
read with the inventory's bounds (size, duplicate keys, aliases, control
characters), and every value must be a string: YAML reads ``password: 0123``
as the number 83 and ``password: yes`` as true, so an unquoted value that is
not a string is refused rather than converted.
Environment variables override the file:
PROVISIONER_VERIFY_USER, PROVISIONER_VERIFY_PASSWORD,
PROVISIONER_VERIFY_OUTSIDER_USER, PROVISIONER_VERIFY_OUTSIDER_PASSWORD.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

from provisioner.inputfiles import load_yaml, stat_input
from provisioner.validation import InputError, shown, unprintable

KEYS = ("user", "password", "outsider_user", "outsider_password")
ENV = {key: f"PROVISIONER_VERIFY_{key.upper()}" for key in KEYS}
MAX_VALUE = 512
WHAT = "verify credentials file"


class CredentialsError(InputError):
    pass


@dataclass(frozen=True)
class VerifyCredentials:
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    outsider_user: str | None = None
    outsider_password: str | None = field(default=None, repr=False)


def _value_problem(key: str, value: Any) -> str | None:
    """Why a value cannot be sent in an SMTP AUTH exchange (without showing a password)."""
    if not isinstance(value, str):
        return f"must be a string (got {type(value).__name__}; quote it)"
    if not value:
        return "is empty"
    if len(value) > MAX_VALUE:
        return f"is longer than {MAX_VALUE} characters"
    code = unprintable(value)
    if code:
        return f"holds the control character {code}"
    if key.endswith("user") and any(c.isspace() for c in value):
        return f"{shown(value)} holds white space"
    return None


def _check_entry(path: str, where: str, entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise CredentialsError(f"{path}: {where}: expected a mapping of {', '.join(KEYS)}")
    for key, value in entry.items():
        if key not in KEYS:
            raise CredentialsError(f"{path}: {where}: unknown key {shown(key)}")
        problem = None if value is None else _value_problem(key, value)
        if problem:
            raise CredentialsError(f"{path}: {where}.{key} {problem}")
    return entry


def read_file(path: str) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """(the flat entry or None, the per-host entries) of a credentials file, every entry checked."""
    try:
        info = stat_input(path, WHAT)
    except InputError as exc:
        raise CredentialsError(str(exc)) from None
    if stat.S_ISREG(info.st_mode) and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path}: verify credentials file is readable by others (mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it"
        )
    try:
        data = load_yaml(path, WHAT)
    except InputError as exc:
        raise CredentialsError(str(exc)) from None
    if data is None:
        return None, {}
    if not isinstance(data, dict):
        raise CredentialsError(f"{path}: expected a mapping (host names to accounts, or the accounts themselves)")
    if any(key in KEYS for key in data):
        return _check_entry(path, "(top level)", data), {}
    hosts = {}
    for host, entry in data.items():
        hosts[str(host)] = _check_entry(path, shown(host) if not isinstance(host, str) else host, entry)
    return None, hosts


def load(host: str, path: str | None, environ: dict[str, str] | None = None) -> VerifyCredentials:
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, str | None] = dict.fromkeys(KEYS)
    if path:
        flat, per_host = read_file(path)
        entry = per_host.get(host, flat or {})
        for key in KEYS:
            if entry.get(key) is not None:
                values[key] = entry[key]
    for key, name in ENV.items():
        if environ.get(name):
            problem = _value_problem(key, environ[name])
            if problem:
                raise CredentialsError(f"environment variable {name} {problem}")
            values[key] = environ[name]
    return VerifyCredentials(**values)
