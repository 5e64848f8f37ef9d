"""Unit tests for provisioner.verify.

Pure pieces (reply classification, EHLO parsing, certificate names) are tested
directly; the SMTP session logic runs against a small fake SMTP server on
127.0.0.1 that answers the way Postfix 3.7 on Debian 12 was seen to answer
(docs/notes/debian12-by-hand.md). No traffic leaves the loopback interface.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.certs import cert_matches_hostname, cert_names, hostname_matches
from provisioner.verify import client as V
from provisioner.verify import session as S
from provisioner.verify.expect import (
    Expect,
    Reply,
    auth_mechanisms,
    describe_mismatch,
    parse_ehlo,
    relay_refusal_expectation,
    tls_version_ok,
)
from provisioner.verify.model import CheckResult, Credentials, VerifyReport, VerifyTarget, plain_blob, scrubber

MEMBER_PW = "Memb3r-S3cret-pw!"
OUTSIDER_PW = "0utsider-S3cret-pw?"
HOSTNAME = "lab1.example.test"


# ------------------------------------------------------------------ helpers


def make_cert(cn: str | None, sans: list[str] | None = None) -> tuple[bytes, bytes, bytes]:
    """Self-signed EC certificate: (DER cert, PEM cert, PEM key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no cn")])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return (
        cert.public_bytes(serialization.Encoding.DER),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )


@pytest.fixture(scope="module")
def server_ctx(tmp_path_factory) -> ssl.SSLContext:
    _, pem, key = make_cert(HOSTNAME, [HOSTNAME])
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(pem)
    (d / "key.pem").write_bytes(key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(d / "cert.pem"), str(d / "key.pem"))
    return ctx


@dataclass
class FakeSMTP:
    """A scripted SMTP server on 127.0.0.1 that answers like Postfix 3.7 did.

    role: "smtp" (port-25 rules), "submission" (TLS required before MAIL) or "smtps".
    """

    ctx: ssl.SSLContext
    role: str = "smtp"
    relay_reply: str = "554 5.7.1 <{rcpt}>: Relay access denied"
    users: dict[str, tuple[str, bool]] = field(default_factory=lambda: {
        "mailuser": (MEMBER_PW, True), "outsider": (OUTSIDER_PW, False)})
    local_domains: tuple[str, ...] = ("example.test", HOSTNAME)
    echo_auth: bool = False  # a badly behaved server that echoes the credentials back
    offer_auth_before_tls: bool = False
    greet: bool = True
    greet_delay: float = 0.0  # like Postfix's smtpd_client_restrictions = sleep 5
    max_sessions: int = 0  # like smtpd_client_connection_count_limit (0: no limit)
    mailbox: list[str] = field(default_factory=list)
    open_sessions: int = 0
    most_open: int = 0
    commands: list[str] = field(default_factory=list)

    def start(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._count = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self.sock.getsockname()[1]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with self._count:
            self.open_sessions += 1
            self.most_open = max(self.most_open, self.open_sessions)
        try:
            self._session(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()
            with self._count:
                self.open_sessions -= 1

    def _session(self, conn: socket.socket) -> None:
        tls = False
        if self.max_sessions and self.open_sessions > self.max_sessions:
            conn.sendall(f"421 4.7.0 {HOSTNAME} Error: too many connections from 127.0.0.1\r\n".encode())
            return
        if self.role == "smtps":
            conn = self.ctx.wrap_socket(conn, server_side=True)
            tls = True
        if not self.greet:
            self._stop.wait(5)
            return
        self._stop.wait(self.greet_delay)
        f = conn.makefile("rb")

        def send(*lines: str) -> None:
            out = [f"{ln[:3]}-{ln[4:]}" for ln in lines[:-1]] + [lines[-1]]
            conn.sendall("".join(x + "\r\n" for x in out).encode())

        send(f"220 {HOSTNAME} ESMTP Postfix")
        authed = False
        mail = False
        while True:
            raw = f.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb):].strip()
            must_tls = self.role == "submission" and not tls
            if verb == "EHLO":
                ext = ["250 PIPELINING", "250 SIZE 10240000"]
                if not tls:
                    ext.append("250 STARTTLS")
                if tls or self.offer_auth_before_tls:
                    ext += ["250 AUTH PLAIN LOGIN", "250 AUTH=PLAIN LOGIN"]
                ext += ["250 ENHANCEDSTATUSCODES", "250 8BITMIME"]
                send(f"250 {HOSTNAME}", *ext)
            elif verb == "STARTTLS":
                send("220 2.0.0 Ready to start TLS")
                conn = self.ctx.wrap_socket(conn, server_side=True)
                f = conn.makefile("rb")
                tls, authed, mail = True, False, False
            elif must_tls and verb in ("MAIL", "RCPT", "RSET", "AUTH", "DATA"):
                send("530 5.7.0 Must issue a STARTTLS command first")
            elif verb == "AUTH":
                blob = arg.split(" ", 1)[1] if " " in arg else ""
                _, user, pw = base64.b64decode(blob).decode().split("\0")
                ok = self.users.get(user) == (pw, True)
                if authed:
                    send("503 5.5.1 Error: already authenticated")
                elif ok:
                    authed = True
                    send("235 2.7.0 Authentication successful")
                elif self.echo_auth:
                    send(f"535 5.7.8 Error: authentication failed for {user}/{pw} ({blob})")
                else:
                    send("535 5.7.8 Error: authentication failed: authentication failure")
            elif verb == "MAIL":
                mail = True
                send("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpt = arg.split(":", 1)[1].strip("<> ")
                domain = rcpt.rpartition("@")[2]
                if not mail:
                    send("503 5.5.1 Error: need MAIL command")
                elif domain in self.local_domains or authed:
                    send("250 2.1.5 Ok")
                elif self.role == "smtp":
                    send(self.relay_reply.format(rcpt=rcpt))
                else:
                    send(f"554 5.7.1 <{rcpt}>: Recipient address rejected: Access denied")
            elif verb == "DATA":
                send("354 End data with <CR><LF>.<CR><LF>")
                body = []
                while True:
                    ln = f.readline().decode()
                    if ln in (".\r\n", ".\n", ""):
                        break
                    body.append(ln)
                self.mailbox.append("".join(body))
                send("250 2.0.0 Ok: queued as ABC123")
                mail = False
            elif verb == "RSET":
                mail = False
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 Error: command not recognized")


@pytest.fixture
def fake(server_ctx, monkeypatch):
    servers: list[FakeSMTP] = []

    def start(role: str = "smtp", **kw) -> tuple[FakeSMTP, int]:
        srv = FakeSMTP(server_ctx, role=role, **kw)
        port = srv.start()
        servers.append(srv)
        if role == "smtp":
            monkeypatch.setattr(V, "SMTP_PORT", port)
        elif role == "smtps":
            monkeypatch.setattr(V, "SMTPS_PORT", port)
        return srv, port

    yield start
    for s in servers:
        s.stop()


def target(*ports: int, **kw) -> VerifyTarget:
    base = dict(
        host="fake",
        address="127.0.0.1",
        myhostname=HOSTNAME,
        ports=ports,
        member=Credentials("mailuser", MEMBER_PW),
        outsider=Credentials("outsider", OUTSIDER_PW),
        timeout=5.0,
    )
    base.update(kw)
    return VerifyTarget(**base)


def by_name(report: VerifyReport, port: int) -> dict[str, CheckResult]:
    return {c.name: c for c in report.checks if c.port == port}


def assert_no_secret(report: VerifyReport) -> None:
    blobs = [repr(report)] + [c.detail for c in report.checks] + [str(c) for c in report.checks]
    for pw in (MEMBER_PW, OUTSIDER_PW):
        for b in blobs:
            assert pw not in b
            assert base64.b64encode(pw.encode()).decode() not in b


# ---------------------------------------------------------- reply handling


def test_reply_parts_and_str():
    r = Reply.from_smtplib(554, b"5.7.1 <x@example.invalid>: Relay access denied")
    assert r.enhanced == "5.7.1"
    assert r.kind == "permanent"
    assert str(r) == "554 5.7.1 <x@example.invalid>: Relay access denied"
    multi = Reply.from_smtplib(250, b"lab1.example.test\nPIPELINING\nSTARTTLS")
    assert str(multi) == "250 lab1.example.test | PIPELINING | STARTTLS"
    assert multi.enhanced is None
    assert Reply(454, "4.7.1 x").kind == "transient"
    assert Reply(235, "2.7.0 Authentication successful").kind == "positive"


def test_expect_matches_code_enhanced_and_text():
    e = relay_refusal_expectation(25, tls=False)
    assert e.matches(Reply(554, "5.7.1 <a@b.invalid>: Relay access denied"))
    assert not e.matches(Reply(454, "4.7.1 <a@b.invalid>: Relay access denied"))
    assert not e.matches(Reply(554, "5.7.1 <a@b.invalid>: Recipient address rejected: Access denied"))
    assert not e.matches(Reply(554, "5.7.0 Relay access denied"))


def test_relay_expectations_per_port():
    assert relay_refusal_expectation(587, tls=False).matches(
        Reply(530, "5.7.0 Must issue a STARTTLS command first"))
    after = relay_refusal_expectation(587, tls=True)
    assert after.matches(Reply(554, "5.7.1 <a@b.invalid>: Recipient address rejected: Access denied"))
    assert after.matches(Reply(554, "5.7.1 <a@b.invalid>: Relay access denied"))
    assert not after.matches(Reply(250, "2.1.5 Ok"))
    assert relay_refusal_expectation(465, tls=True) == after


def test_mismatch_detail_names_expected_and_got_with_hint():
    e = relay_refusal_expectation(25, tls=False)
    d = describe_mismatch(e, Reply(454, "4.7.1 <r@example.invalid>: Relay access denied"))
    assert d.startswith("expected 554 5.7.1 Relay access denied, got 454 4.7.1 <r@example.invalid>: Relay access denied")
    assert "defer_unauth_destination" in d
    open_relay = describe_mismatch(e, Reply(250, "2.1.5 Ok"))
    assert "open relay" in open_relay
    auth = describe_mismatch(Expect(235, "2.7.0", label="235 2.7.0 Authentication successful"),
                             Reply(454, "4.7.0 Temporary authentication failure: generic failure"))
    assert "saslauthd" in auth
    assert describe_mismatch(Expect(221), Reply(500, "x")) == "expected 221, got 500 x"


def test_parse_ehlo_and_auth():
    text = ("lab1.example.test\nPIPELINING\nSIZE 10240000\nSTARTTLS\nAUTH PLAIN LOGIN\n"
            "AUTH=PLAIN LOGIN\nENHANCEDSTATUSCODES")
    ext = parse_ehlo(text)
    assert "STARTTLS" in ext
    assert ext["SIZE"] == "10240000"
    assert ext["AUTH="] == "PLAIN LOGIN"
    assert auth_mechanisms(ext) == ("PLAIN", "LOGIN")
    assert auth_mechanisms(parse_ehlo("host\nSTARTTLS")) == ()
    assert "LAB1.EXAMPLE.TEST" not in parse_ehlo(text)  # greeting line skipped


@pytest.mark.parametrize("version,ok", [
    ("TLSv1.3", True), ("TLSv1.2", True), ("TLSv1.1", False), ("TLSv1", False), (None, False)])
def test_tls_version_ok(version, ok):
    assert tls_version_ok(version) is ok


# ---------------------------------------------------------- certificate names


@pytest.mark.parametrize("pattern,host,ok", [
    ("lab1.example.test", "lab1.example.test", True),
    ("LAB1.Example.Test.", "lab1.example.test", True),
    ("*.example.test", "lab1.example.test", True),
    ("*.example.test", "example.test", False),
    ("*.example.test", "a.lab1.example.test", False),
    ("*.test", "example.test", False),
    ("lab*.example.test", "lab1.example.test", False),
    ("other.example.test", "lab1.example.test", False),
    ("", "lab1.example.test", False),
])
def test_hostname_matches(pattern, host, ok):
    assert hostname_matches(pattern, host) is ok


def test_cert_names_san_and_cn():
    der, _, _ = make_cert("lab1.example.test", ["lab1.example.test", "mail.example.test"])
    assert cert_names(der) == (("lab1.example.test", "mail.example.test"), ("lab1.example.test",))
    ok, names = cert_matches_hostname(der, "mail.example.test")
    assert ok and "mail.example.test" in names


def test_cert_cn_only_and_wildcard_san():
    der, _, _ = make_cert("lab1.example.test")
    assert cert_names(der) == ((), ("lab1.example.test",))
    assert cert_matches_hostname(der, "lab1.example.test")[0]
    wild, _, _ = make_cert(None, ["*.example.test"])
    assert cert_matches_hostname(wild, "lab1.example.test")[0]
    assert not cert_matches_hostname(wild, "example.test")[0]


def test_cert_wrong_name_reports_names():
    der, _, _ = make_cert("snakeoil.localdomain", ["snakeoil.localdomain"])
    ok, names = cert_matches_hostname(der, "lab1.example.test")
    assert not ok
    assert names == "SAN DNS ['snakeoil.localdomain'], CN ['snakeoil.localdomain']"


# ---------------------------------------------------------- secrets


def test_credentials_and_target_repr_hide_password():
    c = Credentials("mailuser", MEMBER_PW)
    assert MEMBER_PW not in repr(c) and MEMBER_PW not in str(c)
    t = target(25)
    assert MEMBER_PW not in repr(t) and OUTSIDER_PW not in repr(t)


def test_scrubber_removes_password_and_plain_blob():
    scrub = scrubber([Credentials("u", MEMBER_PW), None])
    blob = plain_blob("u", MEMBER_PW)
    assert scrub(f"x {MEMBER_PW} y {blob}") == "x *** y ***"


# ---------------------------------------------------------- sessions (fake server)


def test_port25_all_ok_with_local_delivery(fake):
    srv, port = fake("smtp")
    reads = []

    def reader(token: str) -> str:
        reads.append(token)
        return "".join(srv.mailbox) if len(reads) >= 2 else ""

    rep = V.verify(target(port, local_delivery_to="info@example.test"), reader)
    assert rep.ok, [c for c in rep.checks if not c.ok]
    names = [c.name for c in rep.checks]
    assert names == [
        "connect", "greeting", "ehlo", "starttls offered", "auth not offered before tls",
        "relay refused without auth", "rset", "starttls", "tls version", "certificate name",
        "auth offered after tls", "relay refused after tls without auth",
        "local delivery accepted", "auth member accepted", "relay allowed after auth", "rset", "quit",
        "auth wrong password", "auth outsider refused", "local delivery",
    ]
    token = reads[0]
    assert token.startswith("provisioner-verify-") and token in srv.mailbox[0]
    # nothing was ever sent to the foreign recipient: one DATA only, to the local address
    assert len(srv.mailbox) == 1
    assert sum(1 for c in srv.commands if c.upper() == "DATA") == 1
    assert srv.commands[-1].upper() == "QUIT"
    assert_no_secret(rep)


def test_submission_requires_starttls_and_smtps(fake):
    _, sub = fake("submission")
    _, smtps = fake("smtps")
    rep = V.verify(target(sub, smtps))
    assert rep.ok, [c for c in rep.checks if not c.ok]
    s = by_name(rep, sub)
    assert "530 5.7.0 Must issue a STARTTLS command first" in s["relay refused without auth"].detail
    assert "Access denied" in s["relay refused after tls without auth"].detail
    i = by_name(rep, smtps)
    assert "starttls" not in i and "implicit TLS" in i["connect"].detail
    assert i["auth member accepted"].ok
    assert_no_secret(rep)


def test_454_relay_refusal_fails_with_clear_detail(fake):
    _, port = fake("smtp", relay_reply="454 4.7.1 <{rcpt}>: Relay access denied")
    rep = V.verify(target(port))
    assert not rep.ok
    failed = {c.name: c.detail for c in rep.failed}
    assert set(failed) == {"relay refused without auth", "relay refused after tls without auth"}
    assert ("expected 554 5.7.1 Relay access denied, got 454 4.7.1 "
            "<relay-test@example.invalid>: Relay access denied") in failed["relay refused without auth"]


def test_member_outside_group_fails_and_relay_not_attempted(fake):
    _, port = fake("smtp", users={"mailuser": (MEMBER_PW, False), "outsider": (OUTSIDER_PW, False)})
    rep = V.verify(target(port))
    failed = {c.name: c.detail for c in rep.failed}
    assert set(failed) == {"auth member accepted", "relay allowed after auth"}
    assert failed["auth member accepted"].startswith(
        "user mailuser: expected 235 2.7.0 Authentication successful, got 535 5.7.8")
    assert "not attempted" in failed["relay allowed after auth"]


def test_outsider_accepted_is_a_failure(fake):
    _, port = fake("smtp", users={"mailuser": (MEMBER_PW, True), "outsider": (OUTSIDER_PW, True)})
    rep = V.verify(target(port))
    # the outsider's AUTH has a session of its own: the member's is not affected by its 235
    assert [c.name for c in rep.failed] == ["auth outsider refused"]
    assert "got 235" in rep.failed[0].detail
    assert by_name(rep, port)["auth member accepted"].ok
    assert by_name(rep, port)["relay allowed after auth"].ok


def test_refused_auths_run_on_their_own_sessions_beside_the_main_one(fake):
    # Each session waits out the greeting delay: the refused AUTHs must not queue behind the main session.
    srv, port = fake("smtp", greet_delay=0.3)
    rep = V.verify(target(port))
    assert rep.ok, rep.failed
    assert srv.most_open == 3
    auths = [c for c in srv.commands if c.upper().startswith("AUTH")]
    assert len(auths) == 3


@pytest.mark.parametrize("limit", [1, 2])
def test_a_server_that_limits_connections_per_client_still_passes(fake, limit):
    # smtpd_client_connection_count_limit: sessions over the limit get 421 and are tried again, one at a time.
    srv, port = fake("smtp", greet_delay=0.2, max_sessions=limit)
    rep = V.verify(target(port, local_delivery_to="info@example.test"), lambda tok: "".join(srv.mailbox))
    assert rep.ok, rep.failed
    assert [c.name for c in rep.checks][-3:] == ["auth wrong password", "auth outsider refused", "local delivery"]
    assert sum(1 for c in srv.commands if c.upper().startswith("AUTH")) == 3
    assert len(srv.mailbox) == 1


def test_refusal_that_cannot_reach_auth_fails_verify(fake, monkeypatch):
    # Only the refusal sessions go through _reach_auth; the main session passes.
    _, port = fake("smtp")
    monkeypatch.setattr(S, "_reach_auth", lambda run: "expected 220 greeting, got 421 4.7.0 too many connections")
    rep = V.verify(target(port))
    assert not rep.ok
    assert {c.name: c.detail for c in rep.failed} == {
        "auth wrong password": "not attempted: expected 220 greeting, got 421 4.7.0 too many connections",
        "auth outsider refused": "not attempted: expected 220 greeting, got 421 4.7.0 too many connections",
    }


def test_refusal_session_on_a_server_that_drops_it_reports_one_result(fake):
    _, port = fake("smtp", greet=False)
    run = V._session(target(port, timeout=0.3), port, str, "tok", do_local=False)
    S.refusal_session(run, "auth wrong password", Credentials("mailuser", "wrong"))
    assert [(c.name, c.ok) for c in run.results] == [("auth wrong password", False)]
    assert run.results[0].detail == "not attempted: expected 220 greeting, got timeout"


def test_auth_before_tls_is_a_failure(fake):
    _, port = fake("smtp", offer_auth_before_tls=True)
    rep = V.verify(target(port))
    assert [c.name for c in rep.failed] == ["auth not offered before tls"]
    assert "got AUTH PLAIN LOGIN" in rep.failed[0].detail


def test_server_echoing_credentials_never_leaks_them(fake):
    _, port = fake("smtp", echo_auth=True,
                   users={"mailuser": (MEMBER_PW, False), "outsider": (OUTSIDER_PW, False)})
    rep = V.verify(target(port))
    assert not rep.ok
    assert any("***" in c.detail for c in rep.checks)
    assert_no_secret(rep)


def test_connection_refused_is_a_failed_check_not_an_exception():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rep = V.verify(target(port))
    assert not rep.ok
    assert [(c.name, c.ok) for c in rep.checks] == [("connect", False)]
    assert rep.checks[0].detail == f"expected a TCP connection to 127.0.0.1:{port}, got connection refused"


def test_silent_server_times_out_as_failed_check(fake):
    _, port = fake("smtp", greet=False)
    t0 = time.monotonic()
    rep = V.verify(target(port, timeout=0.5))
    assert time.monotonic() - t0 < 5
    assert [(c.name, c.ok) for c in rep.checks] == [("connect", True), ("greeting", False)]
    assert rep.checks[1].detail == "expected 220 greeting, got timeout"


def test_local_delivery_missing_token_fails_with_detail(fake, monkeypatch):
    monkeypatch.setattr(V, "LOCAL_DELIVERY_WAIT", 0.3)
    monkeypatch.setattr(V, "LOCAL_DELIVERY_POLL", 0.1)
    _, port = fake("smtp")

    def reader(token: str) -> str:
        raise RuntimeError("ssh: mailbox unreadable")

    rep = V.verify(target(port, local_delivery_to="info@example.test"), reader)
    [bad] = rep.failed
    assert bad.name == "local delivery"
    assert "expected token provisioner-verify-" in bad.detail
    assert "ssh: mailbox unreadable" in bad.detail


def test_local_delivery_on_its_own_connection_when_25_not_checked(fake):
    srv25, port25 = fake("smtp")
    _, sub = fake("submission")
    rep = V.verify(target(sub, local_delivery_to="info@example.test"),
                   lambda tok: "".join(srv25.mailbox))
    assert rep.ok, rep.failed
    local = [c for c in rep.checks if c.port == port25]
    assert [c.name for c in local] == ["connect", "greeting", "local delivery accepted", "local delivery"]


def test_report_ok_needs_checks():
    assert not VerifyReport("h", ()).ok
    assert VerifyReport("h", (CheckResult(25, "x", True, "d"),)).ok
