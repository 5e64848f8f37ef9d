"""The lab: real Debian 12 and 13 hosts (systemd-nspawn, real systemd, sshd, postfix, saslauthd, PAM).

One lab for the whole session. Each scenario owns a host so that scenarios do
not depend on each other's leftovers:
  lab1  Debian 12, and
  lab4  Debian 13: fresh -> planned -> provisioned -> converged -> drifted -> repaired (together)
  lab2  fail-closed: verify fails, port 25 stays shut to outsiders
  lab3  transport: host keys, unreachable hosts, bad input; testinfra
  lab5  Debian 12, faults: failed first runs, a reboot, each step failing in turn, locks, interrupts,
        timeouts, a dropped link (test_fault_fresh_host.py, then test_faults.py)
  lab6  Debian 12, the drift catalogue (test_drift_catalogue.py) and make drift-fuzz
Set PROVISIONER_KEEP_LAB=1 to leave the hosts up after the run, and
PROVISIONER_REUSE_LAB=1 to start from them instead of fresh hosts (when iterating).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Each lab host's Debian suite, lab1 first; the mission runs on one host of each.
SUITES = ("bookworm", "bookworm", "bookworm", "trixie", "bookworm", "bookworm")
MISSION_HOSTS = ("lab1", "lab4")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/lab" in str(item.fspath):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab boots systemd-nspawn hosts and needs root (make test says so)")
    from tooling.lab import down, up

    if not os.environ.get("PROVISIONER_REUSE_LAB"):
        down()  # every session starts from fresh hosts
    lab = up(hosts=list(SUITES))
    yield lab
    if not os.environ.get("PROVISIONER_KEEP_LAB"):
        down()


@dataclass
class Outcome:
    code: int
    out: str
    report: dict | None

    def summaries(self, host: str) -> list[tuple[str, str]]:
        return [(c["step"], c["summary"]) for c in self.report["hosts"][host]["changes"]]


def invoke(*args: str, env: dict | None = None, tmp: Path | None = None, json_report: bool = True) -> Outcome:
    """Run the real CLI, as a user would, and read its JSON report."""
    argv = [sys.executable, "-m", "invoke", *args]
    report_path = None
    if json_report and tmp is not None:
        report_path = tmp / f"report-{len(list(tmp.glob('report-*.json')))}.json"
        argv += ["--json", str(report_path)]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, errors="replace",
                          env={**os.environ, **(env or {})}, timeout=900)
    report = json.loads(report_path.read_text()) if report_path and report_path.exists() else None
    return Outcome(proc.returncode, proc.stdout + proc.stderr, report)


def ssh(lab, host, command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Act on a lab host by hand, as an admin would (to make drift)."""
    entry = next(h for h in lab.hosts if h.name == host)
    argv = [
        "ssh", "-i", str(lab.key_path), "-o", f"UserKnownHostsFile={lab.known_hosts_path}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "LogLevel=error",
        f"root@{entry.address}", command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120)


def smtp_banner(address: str, port: int, source: str | None = None, timeout: float = 10.0) -> str:
    """Connect from ``source`` and read the SMTP greeting; raises OSError when the port is shut."""
    with socket.create_connection((address, port), timeout=timeout, source_address=(source, 0) if source else None) as sock:
        sock.settimeout(timeout)
        return sock.recv(512).decode(errors="replace")


def ensure_provisioned(lab, name: str, tmp: Path) -> None:
    """Bring a host to the converged state (a no-op when it already is)."""
    if invoke("provision", "--inventory", "inventories/lab.yaml", "--host", name, "--dry-run", tmp=tmp).code != 0:
        outcome = invoke("provision", "--inventory", "inventories/lab.yaml", "--host", name, tmp=tmp)
        assert outcome.code == 0, outcome.out


def host(lab, name):
    return next(h for h in lab.hosts if h.name == name)
