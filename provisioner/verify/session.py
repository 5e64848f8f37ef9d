"""The SMTP sessions of one port: the seed's checks, recorded as CheckResults.

The main session runs the checks in order; each AUTH that must be refused runs
on a session of its own (``refusal_session``), concurrently with it.

A refused or timed-out connection yields failed checks, never an exception.
No mail ever leaves the server: the relay test after AUTH stops at RCPT TO
and is followed by RSET.
"""

from __future__ import annotations

import secrets
import smtplib
import ssl
from collections.abc import Callable
from email.utils import formatdate, make_msgid

from provisioner.certs import cert_matches_hostname
from provisioner.verify.expect import (
    Expect,
    Reply,
    auth_mechanisms,
    describe_mismatch,
    parse_ehlo,
    relay_refusal_expectation,
    tls_version_ok,
)
from provisioner.verify.model import CheckResult, Credentials, VerifyTarget, plain_blob
from provisioner.verify.smtp import SMTP, error_text, tls_context


class Aborted(Exception):
    """The session cannot go on; what failed is recorded already."""


class PortSession:
    """Runs the checks for one port on one connection and collects CheckResults.

    ``implicit_tls``: TLS from the first byte (port 465); ``smtp_port``: the
    port where unauthenticated mail from the world is expected (25), which
    refuses relaying differently from the submission ports.
    """

    def __init__(self, target: VerifyTarget, port: int, scrub: Callable[[str], str],
                 token: str, do_local: bool, *, implicit_tls: bool, smtp_port: int) -> None:
        self.t = target
        self.port = port
        self.implicit_tls = implicit_tls
        self.smtp_port = smtp_port
        self.scrub = scrub
        self.token = token
        self.do_local = do_local
        self.results: list[CheckResult] = []
        self.local_queued = False
        self.last_auth_code = 0
        self.greeting_code = 0
        self.smtp: SMTP | None = None
        self.ctx = tls_context()
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
            if self.implicit_tls:
                steps = [self._tls_checks, self._ehlo_after_tls, self._relay_after_tls,
                         self._local_delivery, self._auth_checks, self._quit]
            else:
                steps = [self._ehlo_plain, self._relay_before_tls, self._starttls,
                         self._tls_checks, self._ehlo_after_tls, self._relay_after_tls,
                         self._local_delivery, self._auth_checks, self._quit]
            for fn in steps:
                step = fn.__name__.strip("_").replace("_", " ")
                fn()
        except Aborted:
            pass
        except (OSError, smtplib.SMTPException, ssl.SSLError, ValueError) as exc:
            self.add(step, False, f"session aborted during {step}: {error_text(exc)}")
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
        """Open the connection and read the greeting. With record=False (a refusal's own
        session) only failures are recorded."""
        implicit = self.ctx if self.implicit_tls else None
        where = f"{self.t.address}:{self.port}"
        tls = " (implicit TLS)" if implicit else ""
        self.smtp = SMTP(timeout=self.t.timeout, source_address=self.t.source_address,
                          implicit_tls=implicit, sni=self.t.myhostname)
        try:
            code, msg = self.smtp.connect(self.t.address, self.port)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            if not self.smtp.tcp_connected:
                self.add("connect", False, f"expected a TCP connection to {where}, got {error_text(exc)}")
            elif implicit is not None and not isinstance(exc, smtplib.SMTPServerDisconnected):
                self.add("connect", False, f"expected a TLS handshake on {where}, got {error_text(exc)}")
            else:
                if record:
                    self.add("connect", True, f"connected to {where}{tls}")
                self.add("greeting", False, f"expected 220 greeting, got {error_text(exc)}")
            self.smtp = None
            return False
        reply = Reply.from_smtplib(code, msg)
        self.greeting_code = reply.code
        if record:
            self.add("connect", True, f"connected to {where}{tls}")
            return self.expect("greeting", reply, Expect(220, label="220 greeting"))
        if reply.code != 220:
            return self.expect("greeting", reply, Expect(220, label="220 greeting"))
        return True

    def _ehlo_plain(self) -> None:
        reply = self.smtp.ehlo_raw(self.ehlo_name)
        if not self.expect("ehlo", reply, Expect(250, label="250 reply to EHLO")):
            raise Aborted
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
            raise Aborted

    def _relay_before_tls(self) -> None:
        exp = relay_refusal_expectation(self.port, tls=False, smtp_port=self.smtp_port)
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
        self._relay_refused("relay refused without auth", mail, exp)
        self.expect("rset", self.smtp.cmd("RSET"), Expect(250, label="250 reply to RSET"))

    def _relay_refused(self, name: str, mail: Reply, exp: Expect) -> None:
        """After MAIL FROM's ``mail`` reply: RCPT TO a foreign recipient must get ``exp``."""
        if mail.code != 250:
            self.add(name, False, f"expected 250 to MAIL FROM then {exp} to RCPT TO, got {mail} to MAIL FROM")
        else:
            rcpt = self.smtp.cmd(f"RCPT TO:<{self.t.foreign_recipient}>")
            self.expect(name, rcpt, exp, f"RCPT TO:<{self.t.foreign_recipient}>")

    def _starttls(self) -> None:
        try:
            reply = self.smtp.starttls_raw(self.ctx, self.t.myhostname)
        except (ssl.SSLError, OSError) as exc:
            self.add("starttls", False, f"expected a TLS handshake after 220, got {error_text(exc)}")
            raise Aborted from exc
        if not self.expect("starttls", reply, Expect(220, label="220 Ready to start TLS")):
            raise Aborted

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
            self.add("certificate name", False, f"expected a parsable X.509 certificate, got {error_text(exc)}")
            return
        self.add("certificate name", ok,
                 f"{self.t.myhostname} in {names}" if ok
                 else f"expected a certificate naming {self.t.myhostname}, got {names}")

    def _ehlo_after_tls(self) -> None:
        reply = self.smtp.ehlo_raw(self.ehlo_name)
        if reply.code != 250:
            self.add("auth offered after tls", False, f"expected 250 reply to EHLO, got {reply}")
            raise Aborted
        mechs = auth_mechanisms(parse_ehlo(reply.text))
        self.add("auth offered after tls", "PLAIN" in mechs,
                 f"AUTH {' '.join(mechs)}" if "PLAIN" in mechs
                 else f"expected AUTH with PLAIN after TLS, got {('AUTH ' + ' '.join(mechs)) if mechs else 'no AUTH'}")

    def _relay_after_tls(self) -> None:
        exp = relay_refusal_expectation(self.port, tls=True, smtp_port=self.smtp_port)
        self._relay_refused("relay refused after tls without auth", self.smtp.cmd(f"MAIL FROM:<{self.sender}>"), exp)
        self.smtp.cmd("RSET")

    def _local_delivery(self) -> None:
        if not self.do_local:
            return
        self.local_queued = send_local(self, self.smtp)

    def _auth_checks(self) -> None:
        member = self.t.member
        if member is None:
            return
        if self._auth("auth member accepted", member, Expect(235, "2.7.0", label="235 2.7.0 Authentication successful")):
            self._relay_after_auth()
        else:
            self.add("relay allowed after auth", False, "not attempted: AUTH as the member failed")

    def _auth(self, name: str, cred: Credentials, exp: Expect) -> bool:
        reply = self.smtp.cmd("AUTH PLAIN " + plain_blob(cred.user, cred.password))
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


def _message(run: PortSession) -> str:
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


def send_local(run: PortSession, smtp: SMTP) -> bool:
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


def deliver_only(run: PortSession) -> PortSession:
    """Only the local delivery, on a session of its own (when its port is not among the checked ones)."""
    target = run.t
    try:
        if run._connect():
            reply = run.smtp.ehlo_raw(run.ehlo_name)
            if reply.code == 250:
                if "STARTTLS" in parse_ehlo(reply.text):
                    run.smtp.starttls_raw(run.ctx, target.myhostname)
                    run.smtp.ehlo_raw(run.ehlo_name)
                run.local_queued = send_local(run, run.smtp)
                run.smtp.quit()
                run.smtp = None
            else:
                run.add("local delivery accepted", False, f"expected 250 reply to EHLO, got {reply}")
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        run.add("local delivery accepted", False, f"session aborted: {error_text(exc)}")
    finally:
        run._close()
    return run


REFUSED = Expect(535, "5.7.8", label="535 5.7.8 authentication failed")


def refusals(target: VerifyTarget) -> list[tuple[str, Credentials]]:
    """The AUTH attempts that must get 535: a wrong password, and the outsider's own."""
    probe_user = (target.member or target.outsider or Credentials("provisioner-verify-nouser", "")).user
    tries = [("auth wrong password", Credentials(probe_user, "wrong-" + secrets.token_urlsafe(12)))]
    if target.outsider is not None:
        tries.append(("auth outsider refused", target.outsider))
    return tries


def refusal_session(run: PortSession, name: str, cred: Credentials) -> PortSession:
    """One refused AUTH on a session of its own, so that the server's delay after a
    failed AUTH (pam_unix's) and its per-connection ``sleep 5`` overlap the main
    session's instead of adding to it. The way to AUTH (greeting, EHLO, STARTTLS)
    is checked by the main session; here a failure on it only says why the AUTH
    was not attempted. Records exactly one result, named ``name``."""
    try:
        why = _reach_auth(run)
        if why:
            run.results[:] = [CheckResult(run.port, name, False, run.scrub("not attempted: " + why))]
            return run
        run._auth(name, cred, REFUSED)
        run.smtp.quit()
    except (OSError, smtplib.SMTPException, ssl.SSLError, ValueError) as exc:
        if not run.results:
            run.add(name, False, f"session aborted before the reply to AUTH: {error_text(exc)}")
    finally:
        run._close()
    return run


def _reach_auth(run: PortSession) -> str:
    """Connect, EHLO and STARTTLS quietly; why AUTH cannot be tried, or ''."""
    if not run._connect(record=False):
        return "; ".join(c.detail for c in run.results)
    reply = run.smtp.ehlo_raw(run.ehlo_name)
    if reply.code == 250 and not run.implicit_tls:
        starttls = run.smtp.starttls_raw(run.ctx, run.t.myhostname)
        if starttls.code != 220:
            return f"expected 220 to STARTTLS, got {starttls}"
        reply = run.smtp.ehlo_raw(run.ehlo_name)
    return "" if reply.code == 250 else f"expected 250 to EHLO, got {reply}"
