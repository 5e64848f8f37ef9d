"""What verify is given and what it returns, and how credentials are kept out of its results."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class VerifyTarget:
    host: str  # inventory name, for messages
    address: str  # where to connect
    myhostname: str
    ports: tuple[int, ...] = (25, 587)  # 465 = implicit TLS when present
    member: Credentials | None = None  # in the allowed group: AUTH must give 235
    outsider: Credentials | None = None  # real account outside the group: must give 535
    foreign_recipient: str = "relay-test@example.invalid"
    local_delivery_to: str | None = None  # e.g. info@example.test; checked through mailbox_reader
    source_address: str | None = None  # bind the client socket to this local address
    timeout: float = 30.0


@dataclass(frozen=True)
class CheckResult:
    port: int
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    host: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.ok)


# ------------------------------------------------------------------ credentials


def scrubber(creds: Iterable[Credentials | None]) -> Callable[[str], str]:
    """A function that replaces every password, and its AUTH PLAIN form, with ***."""
    needles: list[str] = []
    for c in creds:
        if c is None or not c.password:
            continue
        needles.append(c.password)
        needles.append(plain_blob(c.user, c.password))
    needles.sort(key=len, reverse=True)

    def scrub(text: str) -> str:
        for n in needles:
            if n:
                text = text.replace(n, "***")
        return text

    return scrub


def plain_blob(user: str, password: str) -> str:
    """The AUTH PLAIN argument for these credentials."""
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
