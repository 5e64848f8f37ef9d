"""The tls step: certificate parsing, renewal decisions, uploaded material, DH parameters."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from provisioner.certs import FFDHE2048_PEM, CertError, cert_info, names_host, public_key_pem_sha256
from provisioner.desired import DH_PARAMS, TLS_CA, TLS_CERT, TLS_COMBINED, TLS_DIR, TLS_KEY
from provisioner.model import Facts, FileState, SelfSignedCertificate, SetAttributes, WriteFile
from provisioner.platforms import DEBIAN12, EL6, EL7, EL8
from provisioner.steps import tls
from provisioner.steps.base import Context, StepOptions
from provisioner.steps.tls import (
    KEY_PROBE,
    Tls,
    generate_action,
    parse_dir,
    parse_key_public,
    tls_changes,
    read_material,
    renewal_reason,
)

from .journal_harness import Run
from .conftest import mail_vars

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=UTC)

# RFC 7919, appendix A.1
FFDHE2048_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695A9E13641146433FBCC939DCE249B3EF9"
    "7D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD65612433F51F5F066ED085636555 3DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797ABC0AB182B324FB61D108A94BB2C8E3FB"
    "B96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA"
    "886B423861285C97FFFFFFFFFFFFFFFF".replace(" ", ""),
    16,
)

_KEYS: dict[str, rsa.RSAPrivateKey] = {}


def key(name: str = "a") -> rsa.RSAPrivateKey:
    if name not in _KEYS:
        _KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[name]


def make_cert(k, cn: str, not_after: dt.datetime, san: list[str] | None = None, issuer: str | None = None) -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]) if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(k.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(not_after)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
    return builder.sign(k, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def public_pem(k) -> str:
    return k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_pem(k) -> str:
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


FAR = dt.datetime(2027, 6, 1, tzinfo=UTC)


# ------------------------------------------------------------------ DH parameters


def _der_integers(der: bytes) -> list[int]:
    """The INTEGERs of a DER SEQUENCE (enough ASN.1 for PKCS#3 DHParameter)."""

    def length(data: bytes, at: int) -> tuple[int, int]:
        first = data[at]
        if first < 0x80:
            return first, at + 1
        count = first & 0x7F
        return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count

    assert der[0] == 0x30
    total, at = length(der, 1)
    assert at + total == len(der)
    values = []
    while at < len(der):
        assert der[at] == 0x02
        size, at = length(der, at + 1)
        values.append(int.from_bytes(der[at : at + size], "big"))
        at += size
    return values


def test_dh_parameters_are_the_rfc7919_ffdhe2048_group():
    lines = FFDHE2048_PEM.strip().splitlines()
    assert lines[0] == "-----BEGIN DH PARAMETERS-----" and lines[-1] == "-----END DH PARAMETERS-----"
    p, g = _der_integers(base64.b64decode("".join(lines[1:-1])))
    assert p == FFDHE2048_P and p.bit_length() == 2048 and g == 2


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl here")
def test_openssl_names_the_dh_group():
    out = subprocess.run(["openssl", "dhparam", "-noout", "-text"], input=FFDHE2048_PEM.encode(), capture_output=True, check=True)
    text = out.stdout.decode()
    assert "2048 bit" in text
    if "GROUP:" in text:  # OpenSSL 3 recognises the named group
        assert "ffdhe2048" in text


# ------------------------------------------------------------------ certificates


def test_cert_info_reads_san_cn_expiry_issuer_and_key():
    k = key()
    info = cert_info(make_cert(k, "Mail.Example.Test", FAR, san=["mail.example.test", "smtp.example.test"]))
    assert info.names == ("mail.example.test", "smtp.example.test")
    assert info.not_after == FAR
    assert info.self_signed
    assert info.public_key_sha256 == public_key_pem_sha256(public_pem(k))


def test_cert_info_cn_only_and_ca_issued():
    info = cert_info("junk before\n" + make_cert(key(), "old.example.com", FAR, issuer="Some CA"))
    assert info.names == ("old.example.com",) and not info.self_signed


@pytest.mark.parametrize("text", ["", "not a cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_cert_info_rejects_garbage(text):
    with pytest.raises(CertError):
        cert_info(text)


def test_names_host():
    assert names_host(("mail.example.test",), "MAIL.example.test")
    assert names_host(("*.example.test",), "mail.example.test")
    assert not names_host(("*.example.test",), "a.mail.example.test")
    assert not names_host(("old.example.com",), "mail.example.test")
    assert not names_host((), "mail.example.test")


# ------------------------------------------------------------------ probes


def test_probe_parsers():
    assert parse_dir("755 root root\n") == {"mode": "755", "owner": "root", "group": "root"}
    assert parse_dir("") is None
    assert parse_key_public("") is None
    assert parse_key_public("unreadable\n") == "unreadable"
    k = key()
    assert parse_key_public(public_pem(k)) == hashlib.sha256(
        k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).hexdigest()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl here")
def test_key_probe_script_runs_against_a_real_key(tmp_path):
    k = key()
    path = tmp_path / "key.pem"
    path.write_text(key_pem(k))
    script = KEY_PROBE.script.replace(TLS_KEY, str(path))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert parse_key_public(out) == cert_info(make_cert(k, "x.test", FAR)).public_key_sha256
    path.write_text("garbage\n")
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert parse_key_public(out) == "unreadable"


# ------------------------------------------------------------------ self-signed


def _state(path, **kw):
    return FileState(path, exists=True, mode=kw.pop("mode", "644"), owner="root", group="root", **kw)


def test_renewal_reasons():
    k = key()
    cert = _state(TLS_CERT, content=make_cert(k, "mail.example.test", FAR, san=["mail.example.test"]))
    keyfile = _state(TLS_KEY, mode="600")
    good = cert_info(cert.content).public_key_sha256
    args = dict(hostname="mail.example.test", now=NOW, renew_before_days=30)
    assert renewal_reason(cert, keyfile, good, **args) is None
    assert renewal_reason(cert, keyfile, None, **args) is None  # no openssl to ask: not checked
    assert renewal_reason(FileState(TLS_CERT), keyfile, None, **args) == ""
    assert renewal_reason(cert, FileState(TLS_KEY), None, **args) == f"its key {TLS_KEY} is missing"
    assert renewal_reason(cert, keyfile, "0" * 64, **args) == f"its key {TLS_KEY} does not match it"
    assert renewal_reason(cert, keyfile, "unreadable", **args) == f"its key {TLS_KEY} cannot be read"
    assert renewal_reason(_state(TLS_CERT, content="junk"), keyfile, None, **args) == f"{TLS_CERT} cannot be read"
    assert (
        renewal_reason(cert, keyfile, good, hostname="other.example.test", now=NOW, renew_before_days=30)
        == "it names mail.example.test, not other.example.test"
    )
    soon = _state(TLS_CERT, content=make_cert(k, "mail.example.test", NOW + dt.timedelta(days=29)))
    assert renewal_reason(soon, keyfile, None, **args) == "it expires on 2026-03-30"
    assert renewal_reason(soon, keyfile, None, hostname="mail.example.test", now=NOW, renew_before_days=10) is None
    old = _state(TLS_CERT, content=make_cert(k, "mail.example.test", NOW - dt.timedelta(days=1)))
    assert renewal_reason(old, keyfile, None, **args) == "it expired on 2026-02-28"


def test_generate_action_quotes_and_follows_openssl_capabilities():
    with_san = generate_action("mail.example.test", 825, DEBIAN12).render()
    assert "-subj /CN=mail.example.test -addext subjectAltName=DNS:mail.example.test" in with_san
    assert "umask 077" in with_san and "-days 825" in with_san and "-nodes" in with_san
    for platform in (EL6, EL7):
        assert "-addext" not in generate_action("mail.example.test", 825, platform).render()
    assert "-addext" in generate_action("mail.example.test", 825, EL8).render()


@pytest.mark.skipif(shutil.which("openssl") is None or os.geteuid() != 0, reason="needs openssl and root (chown)")
def test_generate_action_really_makes_a_matching_pair_and_the_journal_keeps_the_old_one(tmp_path):
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    (tls_dir / "cert.pem").write_text("old cert\n")
    (tls_dir / "cert.pem").chmod(0o640)
    run = Run(tmp_path / "host")
    action = SelfSignedCertificate(directory=str(tls_dir), key=str(tls_dir / "key.pem"), cert=str(tls_dir / "cert.pem"),
                                   subject="/CN=mail.example.test", days=30, san="subjectAltName=DNS:mail.example.test")
    assert run.step(action.render()).returncode == 0
    info = cert_info((tls_dir / "cert.pem").read_text())
    assert info.names == ("mail.example.test",) and info.self_signed
    assert oct((tls_dir / "key.pem").stat().st_mode & 0o777) == "0o600"
    assert oct((tls_dir / "cert.pem").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tls_dir.iterdir()) == ["cert.pem", "key.pem"]  # no backup, no temporary dir
    probe = KEY_PROBE.script.replace(TLS_KEY, str(tls_dir / "key.pem"))
    out = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=True).stdout
    assert parse_key_public(out) == info.public_key_sha256
    # The old certificate is in the run's own journal (0600), and comes back on rollback; the new key goes.
    backups = list((run.dir / "files").iterdir())
    assert [b.read_text() for b in backups] == ["old cert\n"] and oct(backups[0].stat().st_mode & 0o777) == "0o600"
    assert run.rollback()[-1] == "done\trolled-back"
    assert (tls_dir / "cert.pem").read_text() == "old cert\n" and oct((tls_dir / "cert.pem").stat().st_mode) == "0o100640"
    assert not (tls_dir / "key.pem").exists()
    run.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_a_failing_openssl_leaves_the_old_pair_and_no_temporary_directory(tmp_path):
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    (tls_dir / "cert.pem").write_text("old cert\n")
    run = Run(tmp_path / "host")
    action = SelfSignedCertificate(directory=str(tls_dir), key=str(tls_dir / "key.pem"), cert=str(tls_dir / "cert.pem"),
                                   subject="not-a-subject", days=30)
    result = run.step(action.render())
    assert result.returncode != 0 and "subject" in result.stderr.lower()
    assert sorted(p.name for p in tls_dir.iterdir()) == ["cert.pem"]
    assert (tls_dir / "cert.pem").read_text() == "old cert\n"
    run.close()


def test_now_option():
    assert StepOptions.from_mapping({"now": "2026-03-01T12:00:00+00:00"}).clock() == NOW
    assert StepOptions.from_mapping({"now": "2026-03-01T12:00:00"}).clock() == NOW
    assert StepOptions.from_mapping({}).clock().tzinfo is not None


# ------------------------------------------------------------------ uploaded material


def _converged_dir_and_dh() -> dict:
    return {
        DH_PARAMS: FileState(DH_PARAMS, exists=True, content=FFDHE2048_PEM, mode="644", owner="root", group="root"),
    }


def _facts(files: dict, dir_state="755 root root") -> Facts:
    return Facts(files={**_converged_dir_and_dh(), **files}, extra={"tls_dir": parse_dir(dir_state), "tls_key_public": None})


@pytest.fixture
def material(tmp_path):
    k = key()
    cert = make_cert(k, "mail.example.test", FAR, san=["mail.example.test"])
    ca = make_cert(key("ca"), "Example CA", FAR)
    secret = key_pem(k)
    (tmp_path / "cert.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(secret)
    (tmp_path / "ca.pem").write_text(ca)
    (tmp_path / "combined.pem").write_text(cert + secret)
    return tmp_path, cert, secret, ca


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_uploaded_material_is_written_and_the_key_never_shown(material):
    base, cert, secret, ca = material
    vars = mail_vars(tls_cert=str(base / "cert.pem"), tls_key=str(base / "key.pem"), tls_ca=str(base / "ca.pem"))
    changes = tls_changes(vars, DEBIAN12, _facts({}), read_material(vars), NOW)
    assert [c.summary for c in changes] == [
        f"install the certificate {TLS_CERT} from the inventory",
        f"install the private key {TLS_KEY} from the inventory",
        f"install the CA certificate {TLS_CA} from the inventory",
    ]
    key_change = changes[1]
    (action,) = key_change.actions
    assert isinstance(action, WriteFile) and action.secret and action.mode == "600" and action.content == secret
    assert key_change.diff is None
    body = secret.splitlines()[1]
    for change in changes:
        assert body not in change.summary and body not in (change.diff or "")
        assert all(body not in a.describe() for a in change.actions)
        assert change.notify == frozenset({"postfix:reload"})
    assert "+" + cert.splitlines()[1] in changes[0].diff


def test_uploaded_material_converged_and_key_mode_drift(material):
    base, cert, secret, _ = material
    vars = mail_vars(tls_cert=str(base / "cert.pem"), tls_key=str(base / "key.pem"))
    files = {
        TLS_CERT: FileState(TLS_CERT, exists=True, content=cert, sha256=_sha(cert), mode="644", owner="root", group="root"),
        TLS_KEY: FileState(TLS_KEY, exists=True, sha256=_sha(secret), mode="600", owner="root", group="root"),
    }
    assert tls_changes(vars, DEBIAN12, _facts(files), read_material(vars), NOW) == []
    files[TLS_KEY] = FileState(TLS_KEY, exists=True, sha256=_sha(secret), mode="644", owner="root", group="root")
    (change,) = tls_changes(vars, DEBIAN12, _facts(files), read_material(vars), NOW)
    assert change.summary == f"set mode 600 on {TLS_KEY}"
    assert change.actions == (SetAttributes(TLS_KEY, mode="600"),)
    files[TLS_KEY] = FileState(TLS_KEY, exists=True, sha256=_sha("another key"), mode="600", owner="root", group="root")
    (change,) = tls_changes(vars, DEBIAN12, _facts(files), read_material(vars), NOW)
    assert change.summary == f"replace the private key {TLS_KEY} from the inventory" and change.diff is None


def test_combined_material(material):
    base, cert, secret, ca = material
    vars = mail_vars(tls_combined=str(base / "combined.pem"), tls_ca=str(base / "ca.pem"))
    materials = read_material(vars)
    assert [(m.path, m.secret) for m in materials] == [(TLS_COMBINED, True), (TLS_CA, False)]
    changes = tls_changes(vars, EL7, _facts({}), materials, NOW)
    assert [c.summary for c in changes] == [
        f"install the certificate and private key {TLS_COMBINED} from the inventory",
        f"install the CA certificate {TLS_CA} from the inventory",
    ]
    assert changes[0].diff is None and changes[0].actions[0].secret


def test_the_step_gathers_keys_as_secrets():
    spec = Tls().needs(mail_vars())
    assert set(spec.secret_files) == {TLS_KEY, TLS_COMBINED}
    assert TLS_KEY not in spec.files and TLS_COMBINED not in spec.files
    assert TLS_CERT in spec.files and DH_PARAMS in spec.files


def test_dry_run_effect_lets_a_second_plan_converge():
    """Applying the predicted effects of a fresh plan leaves only what needs the real host."""
    vars = mail_vars()
    facts = Facts(extra={"tls_dir": None, "tls_key_public": None})
    ctx = Context("h", vars, DEBIAN12, facts, options={"now": NOW})
    changes = Tls().check(ctx)
    assert [c.summary for c in changes] == [
        f"create directory {TLS_DIR} (mode 755, root:root)",
        "generate a self-signed certificate for mail.example.test (valid 825 days)",
        f"write {DH_PARAMS} (RFC 7919 ffdhe2048 DH parameters)",
    ]
    for change in changes:
        facts = change.effect(facts)
    assert Tls().check(Context("h", vars, DEBIAN12, facts, options={"now": NOW})) == []


def test_unreadable_material_fails_the_host_with_a_clear_message(tmp_path):
    from provisioner.steps.base import StepError

    (tmp_path / "cert.pem").write_bytes(b"\xff\xfe binary")
    (tmp_path / "key.pem").write_text("k")
    vars = mail_vars(tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem"))
    with pytest.raises(StepError, match=r"^h: the certificate .*cert.pem is not a PEM file"):
        Tls().check(Context("h", vars, DEBIAN12, Facts()))
