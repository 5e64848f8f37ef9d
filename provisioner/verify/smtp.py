"""The smtplib side: a client that can start TLS at connect time, and how its errors read."""

from __future__ import annotations

import smtplib
import socket
import ssl

from provisioner.verify.expect import Reply


def error_text(exc: BaseException) -> str:
    """A network error as a check's detail says it."""
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


def tls_context() -> ssl.SSLContext:
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


class SMTP(smtplib.SMTP):
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
