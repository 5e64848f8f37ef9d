"""Connections to an in-process SSH server on loopback: strict host-key checking against the inventory's
known_hosts (known, unknown and changed keys, the file parsed once per version), and the cipher agreed."""

from __future__ import annotations

import os

import paramiko
import pytest

from provisioner import transport
from provisioner.inventory import Host
from provisioner.transport import HostConnection, TransportError, known_host_keys

from .ssh_server import listening



@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    server, other, client = (paramiko.ECDSAKey.generate() for _ in range(3))
    client.write_private_key_file(str(d / "id"))
    os.chmod(d / "id", 0o600)
    return {"server": server, "other": other, "client_file": str(d / "id")}


def _known_hosts(path, port: int, *keys: paramiko.PKey, extra: int = 0) -> str:
    lines = [f"[10.9.{i // 250}.{i % 250}]:22 {keys[0].get_name()} {keys[0].get_base64()}" for i in range(extra)]
    lines += [f"[127.0.0.1]:{port} {k.get_name()} {k.get_base64()}" for k in keys]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _host(port: int, known_hosts: str, key: str) -> Host:
    return Host(name="h1", address="127.0.0.1", port=port, key=key, known_hosts=known_hosts, connect_timeout=5)


def test_a_known_key_connects_and_runs(tmp_path, keys):
    with listening(keys["server"]) as port:
        kh = _known_hosts(tmp_path / "known_hosts", port, keys["server"], extra=40)
        with HostConnection(_host(port, kh, keys["client_file"])) as conn:
            assert conn.run_script("true", what="test").stdout == "ok\n"


def test_an_unknown_host_and_a_changed_key_are_refused(tmp_path, keys):
    with listening(keys["server"]) as port:
        kh = _known_hosts(tmp_path / "known_hosts", port + 1, keys["server"])  # another port: unknown
        with pytest.raises(TransportError, match=rf"\[127.0.0.1\]:{port} is not in {kh}; refusing an unknown host key"):
            HostConnection(_host(port, kh, keys["client_file"])).open()
        changed = _known_hosts(tmp_path / "changed", port, keys["other"])
        with pytest.raises(TransportError, match="host key for 127.0.0.1 has CHANGED"):
            HostConnection(_host(port, changed, keys["client_file"])).open()


def test_the_file_is_parsed_once_per_version(tmp_path, keys, monkeypatch):
    parsed = []
    real = paramiko.HostKeys

    def counting(path):
        parsed.append(path)
        return real(path)

    monkeypatch.setattr(transport.paramiko, "HostKeys", counting)
    with listening(keys["server"]) as port:
        kh = _known_hosts(tmp_path / "known_hosts", port, keys["other"])
        with pytest.raises(TransportError, match="CHANGED"):
            HostConnection(_host(port, kh, keys["client_file"])).open()
        for _ in range(3):
            assert known_host_keys(kh) is known_host_keys(kh)
        assert parsed == [kh]
        # The admin fixes the entry during the run: the next connection reads the file again.
        _known_hosts(tmp_path / "known_hosts", port, keys["server"], extra=3)
        with HostConnection(_host(port, kh, keys["client_file"])) as conn:
            assert conn.run_script("true", what="test").stdout == "ok\n"
        assert parsed == [kh, kh]


@pytest.mark.parametrize("server_ciphers, agreed", [
    (None, "aes128-gcm@openssh.com"),  # GCM first: its integrity check runs in C
    (("aes128-ctr", "aes256-ctr"), "aes128-ctr"),  # a server without GCM (OpenSSH before 6.2) still agrees
])
def test_the_cipher_prefers_gcm_and_falls_back(tmp_path, keys, server_ciphers, agreed):
    with listening(keys["server"], ciphers=server_ciphers) as port:
        kh = _known_hosts(tmp_path / "known_hosts", port, keys["server"])
        with HostConnection(_host(port, kh, keys["client_file"])) as conn:
            transport = conn._conn.get_transport()
            assert (transport.local_cipher, transport.remote_cipher) == (agreed, agreed)
            assert conn.run_script("true", what="test").stdout == "ok\n"
