"""Pure certificate helpers: what a certificate says, whom it names, and the DH group we ship.

Everything here works on text already in memory (the cert file fact, a probe's
output); nothing touches a host. Private keys never come here: the key's
public half is derived on the host (see the tls step's probe).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

# RFC 7919 appendix A.1, ffdhe2048, generator 2, PKCS#3 encoding: the group
# Mozilla's SSL configuration generator ships (`openssl dhparam -text` names
# it "GROUP: ffdhe2048"). A known, audited safe prime beats a locally
# generated one, and costs no minutes of `openssl dhparam` on the host.
FFDHE2048_PEM = """-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


@dataclass(frozen=True)
class CertInfo:
    names: tuple[str, ...]  # subjectAltName DNS names, then the subject CN (lowercase)
    not_after: datetime  # timezone-aware, UTC
    self_signed: bool  # issuer == subject
    public_key_sha256: str  # sha256 of the DER SubjectPublicKeyInfo


class CertError(ValueError):
    pass


def spki_sha256(public_key) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def cert_info(pem: str) -> CertInfo:
    """What the first certificate of a PEM text says; CertError when there is none."""
    start = pem.find("-----BEGIN CERTIFICATE-----")
    if start < 0:
        raise CertError("no PEM certificate found")
    try:
        cert = x509.load_pem_x509_certificate(pem[start:].encode("ascii", errors="replace"))
    except ValueError as exc:
        raise CertError(f"unreadable certificate: {exc}") from None
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names.extend(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    except ValueError:  # malformed extension: fall back to the CN
        pass
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value if isinstance(attr.value, str) else attr.value.decode(errors="replace")
        if value.lower() not in names:
            names.append(value.lower())
    not_after = getattr(cert, "not_valid_after_utc", None)
    if not_after is None:  # cryptography < 42
        not_after = cert.not_valid_after.replace(tzinfo=timezone.utc)
    return CertInfo(
        names=tuple(names),
        not_after=not_after,
        self_signed=cert.issuer == cert.subject,
        public_key_sha256=spki_sha256(cert.public_key()),
    )


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


def names_host(names: tuple[str, ...] | list[str], hostname: str) -> bool:
    """Whether a certificate with these names is valid for ``hostname``."""
    return any(hostname_matches(name, hostname) for name in names)


def cert_names(der: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(SAN DNS names, subject CNs) of a DER certificate."""
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


def cert_matches_hostname(der: bytes, hostname: str) -> tuple[bool, str]:
    """Does the certificate name ``hostname`` (SAN DNS or CN)? Returns (ok, names text)."""
    dns, cns = cert_names(der)
    names = f"SAN DNS {list(dns)}, CN {list(cns)}"
    ok = names_host((*dns, *cns), hostname)
    return ok, names


def public_key_pem_sha256(text: str) -> str | None:
    """sha256 of the SubjectPublicKeyInfo in a PEM public key (``openssl pkey -pubout``), or None."""
    start = text.find("-----BEGIN PUBLIC KEY-----")
    end = text.find("-----END PUBLIC KEY-----")
    if start < 0 or end < 0:
        return None
    block = text[start : end + len("-----END PUBLIC KEY-----")] + "\n"
    try:
        key = serialization.load_pem_public_key(block.encode("ascii", errors="replace"))
    except (ValueError, TypeError):
        return None
    return spki_sha256(key)
