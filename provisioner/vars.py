"""The vars model: everything a host's mail server is made of, validated.

Every step receives a ``MailVars``; the inventory (YAML loading, precedence
of defaults, groups and hosts) builds one per host.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

POSTCONF_KEY_RE = re.compile(r"^[a-z0-9_]+$")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


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

    @field_validator("myhostname", "mydomain")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*", value):
            raise ValueError(f"{value!r} is not a valid DNS name")
        return value.lower()

    @field_validator("control_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)
        return value

    @field_validator("main_cf")
    @classmethod
    def _main_cf(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for key, setting in value.items():
            if not POSTCONF_KEY_RE.match(key):
                raise ValueError(f"{key!r} is not a Postfix parameter name")
            if setting is not None and ("\n" in setting or "\r" in setting):
                raise ValueError(f"the value of {key} spans lines; give it on one line")
        return value

    @field_validator("mail_group", "root_alias")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z_][a-z0-9_.-]*\$?", value):
            raise ValueError(f"{value!r} is not a valid account name")
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
            if not alias or any(c.isspace() for c in alias) or not target or "\n" in target:
                raise ValueError(f"bad alias entry {alias!r}: {target!r}")
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
