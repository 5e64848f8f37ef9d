"""SSH routes and host keys against a real sshd (lab3).

* ProxyJump from an ssh config: lab3 reached through itself (jump host
  10.200.3.2, then 127.0.0.1 as seen from there), both keys checked against
  the inventory's known_hosts; an unknown or changed jump host key is refused
  with the fingerprint ``ssh-keygen -lf`` prints.
* ``~/.ssh/config`` options that provisioner ignores (ConnectTimeout crashed
  every run when fabric read them) do not get in the way.
* A JSON report that cannot be written after a run (a full tmpfs): the report
  is printed, one error line is added, the run's exit code is kept.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import host, invoke


def _key_line(lab, name: str) -> str:
    """``ssh-ed25519 AAAA...`` of a lab host, from the lab's known_hosts."""
    address = host(lab, name).address
    line = next(line for line in lab.known_hosts_path.read_text().splitlines() if line.startswith(address + " "))
    return line.split(" ", 1)[1]


def _fingerprint(key_line: str, tmp: Path) -> str:
    path = tmp / "one.key"
    path.write_text(f"x {key_line}\n")
    return subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True, check=True).stdout.split()[1]


def _via_jump(lab, tmp: Path, known: dict[str, str]) -> Path:
    """An inventory of one host, lab3 as 127.0.0.1 behind the jump host 'bastion' (lab3 itself)."""
    lab3 = host(lab, "lab3")
    (tmp / "known_hosts").write_text("".join(f"{address} {key}\n" for address, key in known.items()))
    (tmp / "ssh_config").write_text(
        "Host 127.0.0.1\n  ProxyJump bastion\n  ConnectTimeout 3\n  StrictHostKeyChecking no\n"
        f"Host bastion\n  HostName {lab3.address}\n  User root\n  IdentityFile {lab.key_path}\n"
    )
    inv = yaml.safe_load(lab.inventory_path.read_text())
    inv["defaults"].update({"known_hosts": str(tmp / "known_hosts"), "ssh_config": str(tmp / "ssh_config")})
    inv["hosts"] = {"viajump": {"address": "127.0.0.1",
                                "vars": {"myhostname": "lab3.example.test", "control_address": lab3.control_address}}}
    inv["groups"] = {"lab": {**inv["groups"]["lab"], "hosts": ["viajump"]}}  # not the per-suite groups
    path = tmp / "inv.yaml"
    path.write_text(yaml.safe_dump(inv))
    return path


def test_proxyjump_from_ssh_config_reaches_the_host_with_every_key_checked(lab, tmp_path):
    lab3 = host(lab, "lab3")
    direct = invoke("provision", "--inventory", str(lab.inventory_path), "--host", "lab3", "--dry-run", tmp=tmp_path)
    assert direct.code in (0, 2), direct.out
    key = _key_line(lab, "lab3")
    inv = _via_jump(lab, tmp_path, {lab3.address: key, "127.0.0.1": key})
    jumped = invoke("provision", "--inventory", str(inv), "--host", "viajump", "--dry-run", tmp=tmp_path)
    assert jumped.code == direct.code, jumped.out
    report = jumped.report["hosts"]["viajump"]
    assert report["platform"] == "debian12"
    assert report["round_trips"] == 3  # the jump host, the target, the fact script
    assert jumped.summaries("viajump") == direct.summaries("lab3")


def _refused(lab, tmp: Path, known: dict[str, str]) -> str:
    """The error of a dry run through the jump host with this known_hosts content."""
    outcome = invoke("provision", "--inventory", str(_via_jump(lab, tmp, known)), "--host", "viajump", "--dry-run",
                     tmp=tmp)
    assert outcome.code == 1, outcome.out
    assert outcome.report["hosts"]["viajump"]["status"] == "unreachable"
    return outcome.report["hosts"]["viajump"]["error"]


def test_an_unknown_jump_host_key_is_refused_with_its_sha256_fingerprint(lab, tmp_path):
    lab3 = host(lab, "lab3")
    key = _key_line(lab, "lab3")
    error = _refused(lab, tmp_path, {"127.0.0.1": key})
    assert f"{lab3.address} is not in {tmp_path}/known_hosts" in error
    assert f"jump host bastion ({lab3.address}) offers ssh-ed25519 key {_fingerprint(key, tmp_path)}" in error


def test_a_changed_jump_host_key_is_refused(lab, tmp_path):
    lab3 = host(lab, "lab3")
    real, forged = _key_line(lab, "lab3"), _key_line(lab, "lab1")
    error = _refused(lab, tmp_path, {lab3.address: forged, "127.0.0.1": real})
    assert (f"host key for jump host bastion ({lab3.address}) has CHANGED (got ssh-ed25519 key "
            f"{_fingerprint(real, tmp_path)}, known_hosts has ssh-ed25519 key {_fingerprint(forged, tmp_path)})") in error


def test_a_changed_target_key_behind_a_jump_host_is_refused(lab, tmp_path):
    lab3 = host(lab, "lab3")
    real, forged = _key_line(lab, "lab3"), _key_line(lab, "lab1")
    error = _refused(lab, tmp_path, {lab3.address: real, "127.0.0.1": forged})
    assert f"host key for 127.0.0.1 has CHANGED (got ssh-ed25519 key {_fingerprint(real, tmp_path)}" in error


def test_options_of_the_users_ssh_config_that_provisioner_ignores_do_not_get_in_the_way(lab, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "Host *\n  ConnectTimeout 5\n  ServerAliveInterval 10\n  StrictHostKeyChecking accept-new\n"
        "  UserKnownHostsFile /dev/null\n  ControlMaster auto\n"
    )
    outcome = invoke("provision", "--inventory", str(lab.inventory_path), "--host", "lab3", "--dry-run",
                     env={"HOME": str(home)}, tmp=tmp_path)
    assert outcome.code in (0, 2), outcome.out
    assert outcome.report["hosts"]["lab3"]["platform"] == "debian12"


@pytest.fixture
def full_disk():
    """A directory on a 16 kB tmpfs that is full."""
    path = Path(tempfile.mkdtemp(prefix="provisioner-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,nr_inodes=64", "tmpfs", str(path)], check=True)
    try:
        with open(path / "filler", "wb") as filler:
            try:
                filler.write(b"\0" * 65536)
                filler.flush()
                os.fsync(filler.fileno())
            except OSError:
                pass
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
        path.rmdir()


def test_a_json_report_that_cannot_be_written_keeps_the_report_and_the_exit_code(lab, tmp_path, full_disk):
    args = ("provision", "--inventory", str(lab.inventory_path), "--host", "lab3", "--dry-run", "--no-diff")
    expected = invoke(*args, tmp=tmp_path)
    assert expected.code in (0, 2), expected.out
    outcome = invoke(*args, "--json", str(full_disk / "report.json"), json_report=False)
    assert outcome.code == expected.code, outcome.out
    assert "recap (dry run)" in outcome.out and "lab3" in outcome.out
    errors = [line for line in outcome.out.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {full_disk}/report.json: cannot write the JSON report: No space left on device"], outcome.out
    assert "Traceback" not in outcome.out
