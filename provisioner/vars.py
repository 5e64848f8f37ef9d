"""The vars model: everything a host's mail server is made of, validated.

Every step receives a ``MailVars``; the inventory (YAML loading, precedence
of defaults, groups and hosts) builds one per host. Every value that ends up
in a file, a command or an SMTP session is checked here with a full-match
pattern (see provisioner/validation.py), so that no input can add a line, a
comment or a path component the steps did not write.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from provisioner.validation import (
    is_account,
    is_dns_name,
    is_ip_address,
    is_local_part,
    is_mail_address,
    is_postfix_parameter,
    shown,
    unprintable,
)

# Groups whose membership grants more than mail: root or its equivalent, the
# logs, every mailbox, the TLS keys or the mail system itself. Provisioner
# adds mail_users to mail_group and, with exclusive_membership, removes the
# others, so neither may be done to one of these.
PRIVILEGED_GROUPS = {
    "root": "is root's group",
    "sudo": "grants sudo",
    "wheel": "grants sudo/su",
    "admin": "grants sudo (older Ubuntu)",
    "adm": "reads the system logs",
    "staff": "writes /usr/local (root-equivalent on Debian)",
    "systemd-journal": "reads the journal",
    "shadow": "reads password hashes",
    "disk": "has raw access to the disks",
    "kmem": "reads kernel memory",
    "sys": "is a system group",
    "bin": "is a system group",
    "daemon": "is a system group",
    "tty": "writes to terminals",
    "utmp": "writes the login records",
    "docker": "is root-equivalent",
    "lxd": "is root-equivalent",
    "libvirt": "is root-equivalent",
    "kvm": "reaches the virtual machines",
    "mail": "reads every mailbox",
    "postfix": "is Postfix's own group",
    "postdrop": "is Postfix's queue group",
    "sasl": "reaches saslauthd and the SASL secrets",
    "ssl-cert": "reads the TLS private keys",
}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _single_line(value: str, what: str) -> str:
    code = unprintable(value)
    if code:
        raise ValueError(f"{what} holds the control character {code}; give it on one line")
    return value


def split_destinations(value: str) -> list[str]:
    """The destinations of a virtual(5) entry: separated by commas and/or white space."""
    return [part for part in re.split(r"[,\s]+", value.strip()) if part]


def _is_alias_key(alias: str) -> bool:
    """A virtual(5) lookup key: ``user@domain``, ``user`` or ``@domain`` (never a ``#`` comment)."""
    local, at, domain = alias.rpartition("@")
    if not at:
        return is_local_part(alias)
    return (local == "" or is_local_part(local)) and is_dns_name(domain)


class MailVars(StrictModel):
    """Everything a host's mail server is made of. Documented in inventories/example.yaml."""

    myhostname: str
    mydomain: str
    control_address: str | None = None
    main_cf: dict[str, str | None] = Field(default_factory=dict)
    mail_group: str = "mail_login"
    mail_users: list[str] = Field(default_factory=list)
    exclusive_membership: bool = False
    root_alias: str | None = None
    virtual_aliases: dict[str, str] = Field(default_factory=dict)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    tls_combined: str | None = None
    self_signed_days: int = Field(default=825, ge=2, le=3650)
    renew_before_days: int = Field(default=30, ge=1, le=365)
    submission: bool = True
    smtps: bool = False
    remove_sendmail: bool = True
    firewall_when_missing: Literal["install", "skip"] = "install"
    verify: bool = True
    verify_credentials_file: str | None = None
    verify_foreign_recipient: str = "relay-test@example.invalid"
    verify_local_delivery: str | None = None

    # main.cf keys the inventory marked secret ({secret: VALUE}); see secret_main_cf.
    _secret_main_cf: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @model_validator(mode="wrap")
    @classmethod
    def _unwrap_secret_values(cls, data, handler):
        """``main_cf: {key: {secret: VALUE}}`` sets key = VALUE and keeps VALUE out of every output."""
        secret: set[str] = set()
        if isinstance(data, dict) and isinstance(data.get("main_cf"), dict):
            main_cf = {}
            for key, value in data["main_cf"].items():
                if isinstance(value, dict) and list(value) == ["secret"]:
                    value = value["secret"]
                    secret.add(key)
                main_cf[key] = value
            data = {**data, "main_cf": main_cf}
        model = handler(data)
        if isinstance(data, dict):
            model._secret_main_cf = frozenset(secret)
        return model

    @property
    def secret_main_cf(self) -> frozenset[str]:
        """The main.cf keys whose values the inventory marked secret."""
        return self._secret_main_cf

    @property
    def local_mailbox(self) -> str | None:
        """The local account whose mailbox verify_local_delivery's test mail lands in."""
        if not self.verify_local_delivery:
            return None
        target = self.virtual_aliases.get(self.verify_local_delivery, self.verify_local_delivery)
        return split_destinations(target)[0].split("@", 1)[0].lower()

    @field_validator("myhostname", "mydomain")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not is_dns_name(value):
            raise ValueError(f"{shown(value)} is not a valid DNS name")
        return value.lower()

    @field_validator("control_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not is_ip_address(value):
            raise ValueError(f"{shown(value)} is not an IP address")
        return value

    @field_validator("main_cf")
    @classmethod
    def _main_cf(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for key, setting in value.items():
            if not is_postfix_parameter(key):
                raise ValueError(f"{shown(key)} is not a Postfix parameter name")
            if setting is not None:
                _single_line(setting, f"the value of {key}")
        return value

    @field_validator("mail_group", "root_alias")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not is_account(value):
            raise ValueError(f"{shown(value)} is not a valid account name")
        return value

    @field_validator("mail_users")
    @classmethod
    def _users(cls, value: list[str]) -> list[str]:
        for user in value:
            cls._account(user)
        return value

    @field_validator("virtual_aliases")
    @classmethod
    def _aliases(cls, value: dict[str, str]) -> dict[str, str]:
        for alias, target in value.items():
            if not _is_alias_key(alias):
                raise ValueError(f"{shown(alias)} is not an alias address (user@domain, user or @domain)")
            destinations = split_destinations(target)
            if not destinations:
                raise ValueError(f"the alias {alias} has no destination")
            for destination in destinations:
                if not (is_mail_address(destination) or is_local_part(destination)):
                    raise ValueError(f"the alias {alias}: {shown(destination)} is not an address or a local user")
        return value

    @field_validator("verify_foreign_recipient", "verify_local_delivery")
    @classmethod
    def _mail_address(cls, value: str | None) -> str | None:
        if value is not None and not is_mail_address(value):
            raise ValueError(f"{shown(value)} is not a mail address (local@domain)")
        return value

    @model_validator(mode="after")
    def _tls_combination(self) -> "MailVars":
        if self.tls_combined and (self.tls_cert or self.tls_key):
            raise ValueError("tls_combined excludes tls_cert and tls_key")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_ca and not (self.tls_cert or self.tls_combined):
            raise ValueError("tls_ca needs tls_cert/tls_key or tls_combined")
        return self

    @model_validator(mode="after")
    def _group_is_not_privileged(self) -> "MailVars":
        why = PRIVILEGED_GROUPS.get(self.mail_group)
        if why and (self.exclusive_membership or self.mail_users):
            done = "remove its other members" if self.exclusive_membership else "add mail_users to it"
            raise ValueError(
                f"mail_group: {self.mail_group!r} {why}; provisioner would {done}. Use a group of its own "
                "(the default mail_login)"
            )
        return self

    @model_validator(mode="after")
    def _mailbox_is_an_account(self) -> "MailVars":
        if self.verify_local_delivery:
            target = self.virtual_aliases.get(self.verify_local_delivery, self.verify_local_delivery)
            destinations = split_destinations(target)
            if len(destinations) != 1:
                raise ValueError(
                    f"verify_local_delivery: {self.verify_local_delivery} goes to {len(destinations)} destinations; "
                    "name an address delivered to one local mailbox"
                )
            if not is_account(self.local_mailbox or ""):
                raise ValueError(
                    f"verify_local_delivery: {self.verify_local_delivery} is delivered to {shown(destinations[0])}, "
                    "whose local part is not a local account name"
                )
        return self
