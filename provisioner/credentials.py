"""Credentials for verify: from the environment, or from a file outside git.

The file is YAML, either keyed by host name or flat (for every host):
    lab1: {user: mailuser, password: "...", outsider_user: outsider, outsider_password: "..."}
Like ssh with private keys, a file that others can read is refused.
Environment variables override the file:
PROVISIONER_VERIFY_USER, PROVISIONER_VERIFY_PASSWORD,
PROVISIONER_VERIFY_OUTSIDER_USER, PROVISIONER_VERIFY_OUTSIDER_PASSWORD.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KEYS = ("user", "password", "outsider_user", "outsider_password")
ENV = {key: f"PROVISIONER_VERIFY_{key.upper()}" for key in KEYS}


class CredentialsError(Exception):
    pass


@dataclass(frozen=True)
class VerifyCredentials:
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    outsider_user: str | None = None
    outsider_password: str | None = field(default=None, repr=False)


def load(host: str, path: str | None, environ: dict[str, str] | None = None) -> VerifyCredentials:
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, str | None] = dict.fromkeys(KEYS)
    if path:
        file = Path(path)
        try:
            mode = file.stat().st_mode
        except FileNotFoundError:
            raise CredentialsError(f"{path}: verify credentials file not found (host {host})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(f"{path}: verify credentials file is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CredentialsError(f"{path}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(data, dict):
            raise CredentialsError(f"{path}: expected a mapping")
        entry = data.get(host, data if any(k in data for k in KEYS) else {})
        if not isinstance(entry, dict):
            raise CredentialsError(f"{path}: {host}: expected a mapping of {', '.join(KEYS)}")
        unknown = set(entry) - set(KEYS)
        if unknown:
            raise CredentialsError(f"{path}: {host}: unknown key {sorted(unknown)[0]!r}")
        for key in KEYS:
            if entry.get(key) is not None:
                values[key] = str(entry[key])
    for key, name in ENV.items():
        if environ.get(name):
            values[key] = environ[name]
    return VerifyCredentials(**values)
