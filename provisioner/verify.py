"""End-to-end check of a provisioned mail server with a real SMTP client.

Repeats the seed tutorial's tests (relay refused without AUTH, AUTH over TLS,
relay allowed after AUTH, STARTTLS handshake) plus the group restriction
(outsider gets 535) and, optionally, local delivery to an alias.

Rules this module keeps:
- No printing and no rendering: it returns data; report.py renders it.
- No password ever reaches a result: details are built from server replies
  and scrubbed of every password (and its AUTH PLAIN base64 form) anyway.
- One connection per port (the server sleeps 5 s per connection because of
  ``smtpd_client_restrictions = sleep 5``); ports run concurrently.
- A refused or timed-out connection yields failed checks, never an exception.
- No mail ever leaves the server: the relay test after AUTH stops at RCPT TO
  and is followed by RSET.

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

import base64
import re
import secrets
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate, make_msgid

__all__ = [
    "Credentials",
    "VerifyTarget",
    "CheckResult",
    "VerifyReport",
    "Reply",
    "Expect",
    "verify",
    "parse_ehlo",
    "auth_mechanisms",
    "cert_names",
    "hostname_matches",
    "cert_matches_hostname",
    "tls_version_ok",
    "relay_refusal_expectation",
    "describe_mismatch",
]

SMTPS_PORT = 465
SMTP_PORT = 25
LOCAL_DELIVERY_WAIT = 15.0  # seconds to poll the mailbox for the token
LOCAL_DELIVERY_POLL = 1.0
MIN_TLS = ("TLSv1.2", "TLSv1.3")


# --------------------------------------------------------------------------- API


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


# ------------------------------------------------------------- pure helpers

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


def relay_refusal_expectation(port: int, tls: bool) -> Expect:
    """What an unauthenticated relay attempt must get on ``port``.

    Before TLS on a submission port the refusal comes at MAIL FROM (530); in
    every other case at RCPT TO (554 5.7.1).
    """
    if port == SMTP_PORT:
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


def cert_names(der: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(SAN DNS names, subject CNs) of a DER certificate."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    cns = tuple(
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )
    return dns, cns


def hostname_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125 style: case-insensitive, a '*' only as the whole left-most label."""
    p = pattern.strip().rstrip(".").lower()
    h = hostname.strip().rstrip(".").lower()
    if not p or not h:
        return False
    if p.startswith("*."):
        rest = p[2:]
        if "*" in rest or "." not in rest:
            return False
        head, dot, tail = h.partition(".")
        return bool(head) and bool(dot) and tail == rest
    return "*" not in p and p == h


def cert_matches_hostname(der: bytes, hostname: str) -> tuple[bool, str]:
    """Does the certificate name ``hostname`` (SAN DNS or CN)? Returns (ok, names text)."""
    dns, cns = cert_names(der)
    names = f"SAN DNS {list(dns)}, CN {list(cns)}"
    ok = any(hostname_matches(n, hostname) for n in (*dns, *cns))
    return ok, names


def _scrubber(creds: Iterable[Credentials | None]) -> Callable[[str], str]:
    needles: list[str] = []
    for c in creds:
        if c is None or not c.password:
            continue
        needles.append(c.password)
        needles.append(_plain_blob(c.user, c.password))
    needles.sort(key=len, reverse=True)

    def scrub(text: str) -> str:
        for n in needles:
            if n:
                text = text.replace(n, "***")
        return text

    return scrub


def _plain_blob(user: str, password: str) -> str:
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def _exc_text(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if "timed out" in str(exc):
            return "timeout"
        return f"connection closed by server ({exc})" if str(exc) else "connection closed by server"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


# ---------------------------------------------------------------- SMTP client


def _tls_context() -> ssl.SSLContext:
    """Never verifies the chain (self-signed is fine); lets old protocols through so a
    server that offers only TLS < 1.2 fails the version check with a clear detail."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):  # pragma: no cover - depends on the OpenSSL build
        pass
    return ctx


class _SMTP(smtplib.SMTP):
    """smtplib.SMTP that can wrap the socket in TLS at connect time (port 465)."""

    def __init__(self, *, timeout: float, source_address: str | None,
                 implicit_tls: ssl.SSLContext | None, sni: str) -> None:
        self._implicit_tls = implicit_tls
        self._sni = sni
        self.tcp_connected = False
        src = (source_address, 0) if source_address else None
        super().__init__(timeout=timeout, source_address=src)

    def _get_socket(self, host, port, timeout):  # noqa: ANN001 - smtplib signature
        sock = super()._get_socket(host, port, timeout)
        self.tcp_connected = True
        if self._implicit_tls is not None:
            try:
                sock = self._implicit_tls.wrap_socket(sock, server_hostname=self._sni)
            except BaseException:
                sock.close()
                raise
        return sock

    def cmd(self, line: str) -> Reply:
        code, msg = self.docmd(line)
        return Reply.from_smtplib(code, msg)

    def starttls_raw(self, ctx: ssl.SSLContext, sni: str) -> Reply:
        reply = self.cmd("STARTTLS")
        if reply.code == 220:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)
            self.file = None
            self.helo_resp = None
            self.ehlo_resp = None
            self.esmtp_features = {}
            self.does_esmtp = False
        return reply

    def ehlo_raw(self, name: str) -> Reply:
        code, msg = self.ehlo(name)
        return Reply.from_smtplib(code, msg)


class _Aborted(Exception):
    pass


class _PortRun:
    """Runs the checks for one port on one connection and collects CheckResults."""

    def __init__(self, target: VerifyTarget, port: int, scrub: Callable[[str], str],
                 token: str, do_local: bool) -> None:
        self.t = target
        self.port = port
        self.scrub = scrub
        self.token = token
        self.do_local = do_local
        self.results: list[CheckResult] = []
        self.local_queued = False
        self.last_auth_code = 0
        self.smtp: _SMTP | None = None
        self.ctx = _tls_context()
        self.ehlo_name = "provisioner-verify.invalid"
        self.sender = f"provisioner-verify@{target.myhostname}"

    # -- recording
    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.results.append(CheckResult(self.port, name, ok, self.scrub(detail)))
        return ok

    def expect(self, name: str, reply: Reply, exp: Expect, what: str = "") -> bool:
        prefix = f"{what}: " if what else ""
        if exp.matches(reply):
            return self.add(name, True, f"{prefix}{reply}")
        return self.add(name, False, prefix + describe_mismatch(exp, reply))

    # -- run
    def run(self) -> list[CheckResult]:
        step = "connect"
        try:
            step = "connect"
            if not self._connect():
                return self.results
            if self.port == SMTPS_PORT:
                steps = [self._tls_checks, self._ehlo_after_tls, self._relay_after_tls,
                         self._local_delivery, self._auth_checks, self._quit]
            else:
                steps = [self._ehlo_plain, self._relay_before_tls, self._starttls,
                         self._tls_checks, self._ehlo_after_tls, self._relay_after_tls,
                         self._local_delivery, self._auth_checks, self._quit]
            for fn in steps:
                step = fn.__name__.strip("_").replace("_", " ")
                fn()
        except _Aborted:
            pass
        except (OSError, smtplib.SMTPException, ssl.SSLError, ValueError) as exc:
            self.add(step, False, f"session aborted during {step}: {_exc_text(exc)}")
        finally:
            self._close()
        return self.results

    def _close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.close()
            except OSError:
                pass

    # -- steps
    def _connect(self, record: bool = True) -> bool:
        """Open the connection and read the greeting. With record=False (a reconnect)
        only failures are recorded."""
        implicit = self.ctx if self.port == SMTPS_PORT else None
        where = f"{self.t.address}:{self.port}"
        tls = " (implicit TLS)" if implicit else ""
        self.smtp = _SMTP(timeout=self.t.timeout, source_address=self.t.source_address,
                          implicit_tls=implicit, sni=self.t.myhostname)
        try:
            code, msg = self.smtp.connect(self.t.address, self.port)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            if not self.smtp.tcp_connected:
                self.add("connect", False, f"expected a TCP connection to {where}, got {_exc_text(exc)}")
            elif implicit is not None and not isinstance(exc, smtplib.SMTPServerDisconnected):
                self.add("connect", False, f"expected a TLS handshake on {where}, got {_exc_text(exc)}")
            else:
                if record:
                    self.add("connect", True, f"connected to {where}{tls}")
                self.add("greeting", False, f"expected 220 greeting, got {_exc_text(exc)}")
            self.smtp = None
            return False
        reply = Reply.from_smtplib(code, msg)
        if record:
            self.add("connect", True, f"connected to {where}{tls}")
            return self.expect("greeting", reply, Expect(220, label="220 greeting"))
        if reply.code != 220:
            return self.expect("greeting", reply, Expect(220, label="220 greeting"), "reconnect")
        return True

    def _reconnect(self) -> bool:
        """A fresh TLS session (after an AUTH that should have failed succeeded)."""
        try:
            self.smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
        self._close()
        if not self._connect(record=False):
            return False
        if self.port != SMTPS_PORT:
            self.smtp.ehlo_raw(self.ehlo_name)
            if self.smtp.starttls_raw(self.ctx, self.t.myhostname).code != 220:
                return False
        return self.smtp.ehlo_raw(self.ehlo_name).code == 250

    def _ehlo_plain(self) -> None:
        reply = self.smtp.ehlo_raw(self.ehlo_name)
        if not self.expect("ehlo", reply, Expect(250, label="250 reply to EHLO")):
            raise _Aborted
        ext = parse_ehlo(reply.text)
        self.add("starttls offered", "STARTTLS" in ext,
                 "STARTTLS in EHLO reply" if "STARTTLS" in ext
                 else f"expected STARTTLS in EHLO reply, got {reply}")
        mechs = auth_mechanisms(ext)
        self.add("auth not offered before tls", not mechs and "AUTH=" not in ext,
                 "no AUTH before STARTTLS" if not mechs and "AUTH=" not in ext
                 else f"expected no AUTH before STARTTLS (smtpd_tls_auth_only = yes), got AUTH {' '.join(mechs) or ext.get('AUTH=')}")
        if "STARTTLS" not in ext:
            # Everything after needs TLS; say so once instead of failing every check.
            self.add("starttls", False, "not attempted: STARTTLS not offered")
            raise _Aborted

    def _relay_before_tls(self) -> None:
        exp = relay_refusal_expectation(self.port, tls=False)
        mail = self.smtp.cmd(f"MAIL FROM:<{self.sender}>")
        if exp.code == 530:
            self.expect("relay refused without auth", mail, exp, "MAIL FROM before STARTTLS")
            rset_exp = Expect(530, "5.7.0", ("STARTTLS",), "250 or 530 5.7.0 Must issue a STARTTLS command first")
            rset = self.smtp.cmd("RSET")
            if rset.code == 250:
                self.add("rset", True, str(rset))
            else:
                self.expect("rset", rset, rset_exp)
            return
        if mail.code != 250:
            self.add("relay refused without auth", False,
                     f"expected 250 to MAIL FROM then {exp} to RCPT TO, got {mail} to MAIL FROM")
        else:
            rcpt = self.smtp.cmd(f"RCPT TO:<{self.t.foreign_recipient}>")
            self.expect("relay refused without auth", rcpt, exp, f"RCPT TO:<{self.t.foreign_recipient}>")
        self.expect("rset", self.smtp.cmd("RSET"), Expect(250, label="250 reply to RSET"))

    def _starttls(self) -> None:
        try:
            reply = self.smtp.starttls_raw(self.ctx, self.t.myhostname)
        except (ssl.SSLError, OSError) as exc:
            self.add("starttls", False, f"expected a TLS handshake after 220, got {_exc_text(exc)}")
            raise _Aborted from exc
        if not self.expect("starttls", reply, Expect(220, label="220 Ready to start TLS")):
            raise _Aborted

    def _tls_checks(self) -> None:
        sock = self.smtp.sock
        version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
        cipher = sock.cipher() if isinstance(sock, ssl.SSLSocket) else None
        self.add("tls version", tls_version_ok(version),
                 f"{version} {cipher[0] if cipher else ''}".strip() if tls_version_ok(version)
                 else f"expected TLSv1.2 or later, got {version}")
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        if not der:
            self.add("certificate name", False, "expected a server certificate, got none")
            return
        try:
            ok, names = cert_matches_hostname(der, self.t.myhostname)
        except Exception as exc:  # noqa: BLE001 - any parse error is a failed check
            self.add("certificate name", False, f"expected a parsable X.509 certificate, got {_exc_text(exc)}")
            return
        self.add("certificate name", ok,
                 f"{self.t.myhostname} in {names}" if ok
                 else f"expected a certificate naming {self.t.myhostname}, got {names}")

    def _ehlo_after_tls(self) -> None:
        reply = self.smtp.ehlo_raw(self.ehlo_name)
        if reply.code != 250:
            self.add("auth offered after tls", False, f"expected 250 reply to EHLO, got {reply}")
            raise _Aborted
        mechs = auth_mechanisms(parse_ehlo(reply.text))
        self.add("auth offered after tls", "PLAIN" in mechs,
                 f"AUTH {' '.join(mechs)}" if "PLAIN" in mechs
                 else f"expected AUTH with PLAIN after TLS, got {('AUTH ' + ' '.join(mechs)) if mechs else 'no AUTH'}")

    def _relay_after_tls(self) -> None:
        exp = relay_refusal_expectation(self.port, tls=True)
        mail = self.smtp.cmd(f"MAIL FROM:<{self.sender}>")
        if mail.code != 250:
            self.add("relay refused after tls without auth", False,
                     f"expected 250 to MAIL FROM then {exp} to RCPT TO, got {mail} to MAIL FROM")
        else:
            rcpt = self.smtp.cmd(f"RCPT TO:<{self.t.foreign_recipient}>")
            self.expect("relay refused after tls without auth", rcpt, exp,
                        f"RCPT TO:<{self.t.foreign_recipient}>")
        self.smtp.cmd("RSET")

    def _local_delivery(self) -> None:
        if not self.do_local:
            return
        self.local_queued = _send_local(self, self.smtp)

    def _auth_checks(self) -> None:
        t = self.t
        probe_user = (t.member or t.outsider or Credentials("provisioner-verify-nouser", "")).user
        wrong = Credentials(probe_user, "wrong-" + secrets.token_urlsafe(12))
        refused = Expect(535, "5.7.8", label="535 5.7.8 authentication failed")
        tries = [("auth wrong password", wrong)]
        if t.outsider is not None:
            tries.append(("auth outsider refused", t.outsider))
        for name, cred in tries:
            if not self._auth(name, cred, refused) and self.last_auth_code == 235:
                # The session is now authenticated; only a new one can test the rest.
                if not self._reconnect():
                    self.add("reconnect", False, "could not open a fresh session for the remaining AUTH checks")
                    raise _Aborted
        if t.member is not None:
            if self._auth("auth member accepted", t.member,
                          Expect(235, "2.7.0", label="235 2.7.0 Authentication successful")):
                self._relay_after_auth()
            else:
                self.add("relay allowed after auth", False,
                         "not attempted: AUTH as the member failed")

    def _auth(self, name: str, cred: Credentials, exp: Expect) -> bool:
        reply = self.smtp.cmd("AUTH PLAIN " + _plain_blob(cred.user, cred.password))
        self.last_auth_code = reply.code
        return self.expect(name, reply, exp, f"user {cred.user}")

    def _relay_after_auth(self) -> None:
        mail = self.smtp.cmd(f"MAIL FROM:<{self.sender}>")
        if mail.code != 250:
            self.add("relay allowed after auth", False,
                     f"expected 250 to MAIL FROM, got {mail}")
        else:
            rcpt = self.smtp.cmd(f"RCPT TO:<{self.t.foreign_recipient}>")
            self.expect("relay allowed after auth", rcpt, Expect(250, label="250 to RCPT TO"),
                        f"RCPT TO:<{self.t.foreign_recipient}> (no DATA sent)")
        self.expect("rset", self.smtp.cmd("RSET"), Expect(250, label="250 reply to RSET"),
                    "after the relay test, nothing sent")

    def _quit(self) -> None:
        code, msg = self.smtp.quit()
        self.smtp = None
        self.expect("quit", Reply.from_smtplib(code, msg), Expect(221, label="221 reply to QUIT"))


def _message(run: _PortRun) -> str:
    t = run.t
    return (
        f"From: <{run.sender}>\r\n"
        f"To: <{t.local_delivery_to}>\r\n"
        f"Subject: provisioner verify {run.token}\r\n"
        f"Date: {formatdate(localtime=False)}\r\n"
        f"Message-ID: {make_msgid('verify', domain=t.myhostname)}\r\n"
        "\r\n"
        f"Local delivery test from provisioner verify.\r\ntoken: {run.token}\r\n"
    )


def _send_local(run: _PortRun, smtp: _SMTP) -> bool:
    """MAIL/RCPT/DATA to local_delivery_to, unauthenticated (the domain is local)."""
    t = run.t
    name = "local delivery accepted"
    mail = smtp.cmd(f"MAIL FROM:<{run.sender}>")
    if mail.code != 250:
        run.add(name, False, f"expected 250 to MAIL FROM, got {mail}")
        smtp.cmd("RSET")
        return False
    rcpt = smtp.cmd(f"RCPT TO:<{t.local_delivery_to}>")
    if rcpt.code not in (250, 251):
        run.add(name, False, f"expected 250 to RCPT TO:<{t.local_delivery_to}>, got {rcpt}")
        smtp.cmd("RSET")
        return False
    try:
        code, msg = smtp.data(_message(run))
    except smtplib.SMTPDataError as exc:
        run.add(name, False, f"expected 354 to DATA, got {Reply.from_smtplib(exc.smtp_code, exc.smtp_error)}")
        smtp.cmd("RSET")
        return False
    reply = Reply.from_smtplib(code, msg)
    return run.expect(name, reply, Expect(250, label="250 queued"), f"to {t.local_delivery_to}, token {run.token}")


def _local_only_run(target: VerifyTarget, scrub: Callable[[str], str], token: str) -> _PortRun:
    """Local delivery on port 25 when port 25 is not among the checked ports."""
    run = _PortRun(target, SMTP_PORT, scrub, token, do_local=True)
    try:
        if run._connect():
            reply = run.smtp.ehlo_raw(run.ehlo_name)
            if reply.code == 250:
                if "STARTTLS" in parse_ehlo(reply.text):
                    run.smtp.starttls_raw(run.ctx, target.myhostname)
                    run.smtp.ehlo_raw(run.ehlo_name)
                run.local_queued = _send_local(run, run.smtp)
                run.smtp.quit()
                run.smtp = None
            else:
                run.add("local delivery accepted", False, f"expected 250 reply to EHLO, got {reply}")
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        run.add("local delivery accepted", False, f"session aborted: {_exc_text(exc)}")
    finally:
        run._close()
    return run


def _wait_mailbox(target: VerifyTarget, reader: Callable[[str], str], token: str,
                  scrub: Callable[[str], str], wait: float) -> CheckResult:
    deadline = time.monotonic() + wait
    last_err = ""
    while True:
        try:
            text = reader(token) or ""
            if token in text:
                return CheckResult(SMTP_PORT, "local delivery", True,
                                   f"token {token} found in the mailbox of {target.local_delivery_to}")
            last_err = ""
        except Exception as exc:  # noqa: BLE001 - the reader is the caller's code
            last_err = f"; last mailbox read failed: {_exc_text(exc)}"
        if time.monotonic() >= deadline:
            return CheckResult(SMTP_PORT, "local delivery", False, scrub(
                f"expected token {token} in the mailbox of {target.local_delivery_to} "
                f"within {wait:.0f} s, got no match{last_err}"))
        time.sleep(LOCAL_DELIVERY_POLL)


# ---------------------------------------------------------------- entry point


def verify(target: VerifyTarget,
           mailbox_reader: Callable[[str], str] | None = None) -> VerifyReport:
    """Run every check against ``target``; never raises for network trouble."""
    scrub = _scrubber((target.member, target.outsider))
    token = "provisioner-verify-" + secrets.token_hex(8)
    ports = tuple(dict.fromkeys(target.ports))  # keep order, drop duplicates
    local_on = SMTP_PORT if (target.local_delivery_to and SMTP_PORT in ports) else None

    runs: dict[int, _PortRun] = {
        p: _PortRun(target, p, scrub, token, do_local=(p == local_on)) for p in ports
    }
    extra: list[CheckResult] = []
    lock = threading.Lock()

    def work(port: int) -> None:
        run = runs[port]
        try:
            run.run()
        except Exception as exc:  # noqa: BLE001 - a bug here must not hide the other ports
            run.add("internal error", False, f"verifier failed: {_exc_text(exc)}")
            return
        if port == local_on and mailbox_reader is not None and run.local_queued:
            res = _wait_mailbox(target, mailbox_reader, token, scrub, LOCAL_DELIVERY_WAIT)
            with lock:
                extra.append(res)

    def local_alone() -> None:
        run = _local_only_run(target, scrub, token)
        res = list(run.results)
        if mailbox_reader is not None and run.local_queued:
            res.append(_wait_mailbox(target, mailbox_reader, token, scrub, LOCAL_DELIVERY_WAIT))
        with lock:
            extra.extend(res)

    jobs: list[Callable[[], None]] = [lambda p=p: work(p) for p in ports]
    if target.local_delivery_to and local_on is None:
        jobs.append(local_alone)
    if jobs:
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="verify") as pool:
            for fut in [pool.submit(j) for j in jobs]:
                fut.result()

    checks: list[CheckResult] = []
    for p in ports:
        checks.extend(runs[p].results)
    checks.extend(extra)
    return VerifyReport(target.host, tuple(checks))
