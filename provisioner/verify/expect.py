"""What the server's replies must be: pure, no socket anywhere.

Expected replies were observed on Debian 12 (Postfix 3.7.11), see
docs/notes/debian12-by-hand.md:
- port 25, no AUTH:  ``554 5.7.1 <rcpt>: Relay access denied`` at RCPT TO
  (``454 4.7.1`` means smtpd_relay_restrictions ends in
  defer_unauth_destination, the compatibility_level 3.6 default);
- port 587 before STARTTLS (smtpd_tls_security_level=encrypt): MAIL FROM and
  even RSET get ``530 5.7.0 Must issue a STARTTLS command first``;
- port 587/465 after TLS, no AUTH (relay restrictions
  ``permit_sasl_authenticated,reject``):
  ``554 5.7.1 <rcpt>: Recipient address rejected: Access denied``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SMTP_PORT = 25
MIN_TLS = ("TLSv1.2", "TLSv1.3")

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


@dataclass(frozen=True)
class Reply:
    """One SMTP reply. ``text`` has the lines of a multi-line reply joined by newlines."""

    code: int
    text: str

    @classmethod
    def from_smtplib(cls, code: int, msg: bytes | str) -> Reply:
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", errors="replace")
        return cls(int(code), msg.strip())

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code ("5.7.1"), if the reply has one."""
        m = _ENHANCED.match(self.text)
        return f"{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else None

    @property
    def kind(self) -> str:
        """'positive', 'intermediate', 'transient' (4xx), 'permanent' (5xx) or 'invalid'."""
        return {2: "positive", 3: "intermediate", 4: "transient", 5: "permanent"}.get(
            self.code // 100, "invalid"
        )

    def __str__(self) -> str:
        return f"{self.code} {' | '.join(self.text.splitlines())}".rstrip()


@dataclass(frozen=True)
class Expect:
    """What a reply must look like: the code, optionally the enhanced code and a text fragment."""

    code: int
    enhanced: str | None = None
    contains: tuple[str, ...] = ()  # case-insensitive; any one of them must appear
    label: str = ""

    def matches(self, reply: Reply) -> bool:
        if reply.code != self.code:
            return False
        if self.enhanced is not None and reply.enhanced != self.enhanced:
            return False
        if self.contains:
            low = reply.text.lower()
            if not any(c.lower() in low for c in self.contains):
                return False
        return True

    def __str__(self) -> str:
        if self.label:
            return self.label
        parts = [str(self.code)]
        if self.enhanced:
            parts.append(self.enhanced)
        if self.contains:
            parts.append(" or ".join(repr(c) for c in self.contains))
        return " ".join(parts)


def describe_mismatch(expect: Expect, reply: Reply) -> str:
    """'expected X, got Y' plus a hint for the replies whose cause we know."""
    msg = f"expected {expect}, got {reply}"
    hint = _hint(expect, reply)
    return f"{msg} ({hint})" if hint else msg


def _hint(expect: Expect, reply: Reply) -> str:
    text = reply.text.lower()
    if expect.code == 554 and reply.code == 454 and "relay access denied" in text:
        return (
            "temporary refusal: smtpd_relay_restrictions ends in defer_unauth_destination "
            "(the compatibility_level >= 1 default); set it explicitly, ending in "
            "reject_unauth_destination"
        )
    if expect.code in (554, 530) and reply.kind == "positive":
        return "the server accepted a relay attempt without authentication: open relay"
    if expect.code == 235 and reply.code == 535:
        return (
            "check that the user is in the allowed group, saslauthd runs with its socket "
            "in /var/spool/postfix/var/run/saslauthd, and user postfix is in group sasl"
        )
    if expect.code in (235, 535) and reply.code == 454:
        return "temporary authentication failure: is saslauthd running and reachable from the chroot?"
    if expect.code == 535 and reply.code == 235:
        return "authentication that must fail succeeded: PAM group restriction missing?"
    if expect.code == 535 and reply.code == 503 and "already authenticated" in text:
        return "session already authenticated"
    return ""


def relay_refusal_expectation(port: int, tls: bool, *, smtp_port: int = SMTP_PORT) -> Expect:
    """What an unauthenticated relay attempt must get on ``port``.

    Before TLS on a submission port the refusal comes at MAIL FROM (530); in
    every other case at RCPT TO (554 5.7.1).
    """
    if port == smtp_port:
        return Expect(554, "5.7.1", ("Relay access denied",), "554 5.7.1 Relay access denied")
    if not tls:
        return Expect(
            530,
            "5.7.0",
            ("Must issue a STARTTLS command first",),
            "530 5.7.0 Must issue a STARTTLS command first",
        )
    return Expect(554, "5.7.1", ("Access denied",), "554 5.7.1 ... Access denied")


def parse_ehlo(text: str) -> dict[str, str]:
    """EHLO reply text (lines after the greeting line) -> {KEYWORD: params}.

    ``AUTH=PLAIN LOGIN`` (broken_sasl_auth_clients) is kept apart under the key
    ``AUTH=``; the first line (the server's name) is skipped.
    """
    out: dict[str, str] = {}
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines[1:]:
        if ln.upper().startswith("AUTH="):
            out.setdefault("AUTH=", ln[5:].strip())
            continue
        kw, _, params = ln.partition(" ")
        out.setdefault(kw.upper(), params.strip())
    return out


def auth_mechanisms(ehlo: dict[str, str]) -> tuple[str, ...]:
    mechs = ehlo.get("AUTH")
    if mechs is None:
        return ()
    return tuple(m.upper() for m in mechs.split())


def tls_version_ok(version: str | None) -> bool:
    return version in MIN_TLS
