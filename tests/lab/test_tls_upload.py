"""TLS material uploaded from the control machine: installed as given, key 0600, never shown."""

from __future__ import annotations

import datetime
import hashlib
import json

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ensure_provisioned, invoke, ssh


def make_material(directory, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "mail.key").write_bytes(key_pem)
    (directory / "mail.key").chmod(0o600)
    (directory / "mail.crt").write_bytes(cert_pem)
    return cert_pem, key_pem


def test_uploaded_certificate_replaces_the_self_signed_one(lab, tmp_path):
    ensure_provisioned(lab, "lab3", tmp_path)
    cert_pem, key_pem = make_material(tmp_path, "lab3.example.test")
    inv = yaml.safe_load(lab.inventory_path.read_text())
    inv["hosts"]["lab3"]["vars"].update({"tls_cert": str(tmp_path / "mail.crt"), "tls_key": str(tmp_path / "mail.key")})
    inv_path = tmp_path / "inv.yaml"
    inv_path.write_text(yaml.safe_dump(inv))

    dry = invoke("provision", "--inventory", str(inv_path), "--host", "lab3", "--dry-run", tmp=tmp_path)
    assert dry.code == 2, dry.out
    applied = invoke("provision", "--inventory", str(inv_path), "--host", "lab3", tmp=tmp_path)
    assert applied.code == 0, applied.out
    assert applied.summaries("lab3") == dry.summaries("lab3")
    assert any(step == "tls" for step, _ in applied.summaries("lab3"))
    assert applied.report["hosts"]["lab3"]["verify"]["ok"]

    remote_key = ssh(lab, "lab3", "sha256sum < /etc/postfix/tls/key.pem; stat -c '%a %U %G' /etc/postfix/tls/key.pem").stdout.split()
    assert remote_key[0] == hashlib.sha256(key_pem).hexdigest()
    assert remote_key[-3:] == ["600", "root", "root"]
    assert ssh(lab, "lab3", "cat /etc/postfix/tls/cert.pem").stdout.encode() == cert_pem
    # The replaced key is kept by the run's journal only: 0600 in a 0700 directory, never beside the live one.
    run_dir = f"/var/lib/provisioner/runs/{applied.report['hosts']['lab3']['run_id']}"
    modes = ssh(lab, "lab3", f"stat -c '%a %n' {run_dir} {run_dir}/files/* /var/lib/provisioner/runs").stdout.split("\n")
    assert modes[0].startswith("700 ") and modes[-2].startswith("700 "), modes
    assert all(line.startswith("600 ") for line in modes[1:-2] if line), modes
    assert ssh(lab, "lab3", "ls /etc/postfix/tls").stdout.split() == ["cert.pem", "ffdhe2048.pem", "key.pem"]
    # The private key never shows: not in the terminal output, not in the JSON report.
    body = b"".join(key_pem.splitlines()[1:-1]).decode()
    for text in (dry.out, applied.out, json.dumps(dry.report), json.dumps(applied.report)):
        assert "PRIVATE KEY" not in text and body[:40] not in text

    again = invoke("provision", "--inventory", str(inv_path), "--host", "lab3", "--dry-run", tmp=tmp_path)
    assert again.code == 0 and again.summaries("lab3") == []
