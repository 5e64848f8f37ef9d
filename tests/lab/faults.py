"""Real faults on a lab host, and what a test compares before and after.

Faults are real: a command that really fails on the host (a broken binary
earlier on PATH, as a half-finished upgrade or an admin's wrapper leaves it;
a unit that fails to start), a full file system (a small tmpfs mounted over
a directory of the host), a signal to the real CLI, a killed CLI, a link
taken down, a timed-out command. Nothing in the product is patched.

``snapshot`` reads, in one ssh call, every file the tool manages (sha256,
owner, group, mode, mtime), group membership, each service's boot and
running state, temporary files the tool could have left, and the journal's
state: what a rollback must give back.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conftest import REPO, host as lab_host, ssh

INV = "inventories/lab.yaml"

MANAGED = (
    "/etc/postfix/main.cf",
    "/etc/postfix/master.cf",
    "/etc/postfix/sasl/smtpd.conf",
    "/etc/default/saslauthd",
    "/etc/pam.d/smtp",
    "/etc/pam.d/mail_auth_group.allow",
    "/etc/postfix/tls/cert.pem",
    "/etc/postfix/tls/key.pem",
    "/etc/postfix/tls/ffdhe2048.pem",
    "/etc/postfix/virtual_users",
    "/etc/postfix/virtual_users.db",
    "/etc/aliases",
    "/etc/aliases.db",
    "/usr/sbin/policy-rc.d",
)

SNAPSHOT = (
    "for f in " + " ".join(MANAGED) + "; do "
    "if [ -e \"$f\" ]; then printf 'file %s %s %s %s\\n' \"$f\" \"$(stat -c '%u:%g:%a' \"$f\")\" "
    "\"$(stat -c %Y \"$f\")\" \"$(sha256sum < \"$f\" | cut -d' ' -f1)\"; "
    "else printf 'file %s absent\\n' \"$f\"; fi; done; "
    "for u in mailuser outsider postfix; do printf 'groups %s %s\\n' \"$u\" \"$(id -nG \"$u\" 2>/dev/null)\"; done; "
    "printf 'group %s\\n' \"$(getent group mail_login)\"; "
    "printf 'enabled postfix %s\\n' \"$(systemctl is-enabled postfix 2>/dev/null)\"; "
    "printf 'enabled saslauthd %s\\n' \"$(ls /etc/rc2.d/ 2>/dev/null | grep -c '^S..saslauthd$')\"; "
    "for p in master saslauthd; do printf 'running %s %s\\n' \"$p\" \"$(pgrep -x \"$p\" >/dev/null && echo yes || echo no)\"; done; "
    "printf 'temporary %s\\n' \"$(find /etc /usr/sbin /var/lib/provisioner -name '.*.provisioner.*' 2>/dev/null | tr '\\n' ' ')\"; "
    "printf 'open runs %s\\n' \"$(grep -lx -e open -e rolling-back /var/lib/provisioner/runs/*/status 2>/dev/null | wc -l)\"; "
    "true"
)


@dataclass
class Snapshot:
    lines: list[str]

    @property
    def files(self) -> dict[str, str]:
        return {line.split()[1]: line for line in self.lines if line.startswith("file ")}

    def differences(self, other: "Snapshot") -> list[str]:
        return [f"{a!r} -> {b!r}" for a, b in zip(self.lines, other.lines) if a != b] + (
            ["line count differs"] if len(self.lines) != len(other.lines) else [])


def snapshot(lab, name: str) -> Snapshot:
    return Snapshot(ssh(lab, name, SNAPSHOT).stdout.splitlines())


def rolled_back_by_the_host(lab, name: str, within: float) -> float:
    """Wait until no run is open on the host (its holder rolled it back); the seconds it took."""
    began = time.monotonic()
    while "open runs 0" not in snapshot(lab, name).lines[-1] and time.monotonic() - began < within:
        time.sleep(0.5)
    return time.monotonic() - began


# ---------------------------------------------------------------- broken commands on the host


def wrapper(command: str, when: str, then: str) -> str:
    """A shell wrapper that runs ``then`` when its arguments match the case pattern ``when``, else the real command."""
    return (
        "#!/bin/sh\n# a lab fault (tests/lab/faults.py)\n"
        f'case "$*" in\n  {when}) {then} ;;\nesac\n'
        f"PATH=/usr/sbin:/usr/bin:/sbin:/bin exec {command} \"$@\"\n"
    )


@contextlib.contextmanager
def broken(lab, name: str, command: str, when: str = "*", then: str = "", message: str = ""):
    """/usr/local/sbin/<command> (first on the tool's PATH) fails when its arguments match ``when``."""
    then = then or f"echo {shlex.quote(message or command + ': injected failure')} >&2; exit 1"
    path = f"/usr/local/sbin/{command}"
    ssh(lab, name, f"printf %s {shlex.quote(wrapper(command, when, then))} > {path} && chmod 755 {path}")
    try:
        yield
    finally:
        ssh(lab, name, f"rm -f {path}")


@contextlib.contextmanager
def full_disk(lab, name: str, directory: str):
    """A tmpfs over ``directory`` holding a copy of it (same bytes, owners, modes), then filled up."""
    ssh(lab, name, f"set -e; d={shlex.quote(directory)}; t=$(mktemp -d); cp -a \"$d\"/. \"$t\"/; "
                   f"mount -t tmpfs -o size=64k,mode=755 tmpfs \"$d\"; cp -a \"$t\"/. \"$d\"/; rm -rf \"$t\"; "
                   f"dd if=/dev/zero of=\"$d\"/.filler bs=4k 2>/dev/null || true")
    try:
        yield
    finally:
        ssh(lab, name, f"umount {shlex.quote(directory)}")


@contextlib.contextmanager
def failing_start_once(lab, name: str, unit: str):
    """The unit's next start fails for real (an ExecStartPre drop-in that fails once)."""
    flag = f"/run/lab-fault-{unit}"
    dropin = f"/run/systemd/system/{unit}.service.d"
    pre = f"if [ -e {flag} ]; then rm -f {flag}; echo {unit}: injected start failure >&2; exit 1; fi"
    conf = f"[Service]\nExecStartPre=/bin/sh -c {shlex.quote(pre)}\n"
    ssh(lab, name, f"mkdir -p {dropin} && touch {flag} && printf %s {shlex.quote(conf)} > {dropin}/lab-fault.conf "
                   "&& systemctl daemon-reload")
    try:
        yield
    finally:
        ssh(lab, name, f"rm -rf {dropin} {flag} && systemctl daemon-reload")


# ---------------------------------------------------------------- clients


def credentials(lab, name: str) -> dict:
    return yaml.safe_load(Path(lab.secrets_path).read_text())[name]


def auth_reply(lab, name: str, user: str, password: str, port: int = 587) -> int:
    """AUTH with a real SMTP client (STARTTLS first) from the control address: the reply code."""
    entry = lab_host(lab, name)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(entry.address, port, timeout=30, source_address=(entry.control_address, 0)) as client:
        client.ehlo("verify.example.test")
        client.starttls(context=context)
        client.ehlo("verify.example.test")
        try:
            code, _ = client.login(user, password)
        except smtplib.SMTPAuthenticationError as exc:
            code = exc.smtp_code
        return code


def outsider_auth(lab, name: str) -> int:
    secrets = credentials(lab, name)
    return auth_reply(lab, name, secrets["outsider_user"], secrets["outsider_password"])


# ---------------------------------------------------------------- the CLI in the background


@dataclass
class Background:
    """The real CLI running in the background: its output as it comes, its JSON report at the end."""

    proc: subprocess.Popen
    report_path: Path
    out: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def wait_for(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.out):
                return
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"the CLI ended before {text!r}:\n" + "".join(self.out))
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout}s:\n" + "".join(self.out))

    def finish(self, timeout: float = 300) -> tuple[int, str, dict | None]:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        import json

        report = json.loads(self.report_path.read_text()) if self.report_path.exists() else None
        return code, "".join(self.out), report


def start(*args: str, tmp: Path, env: dict | None = None) -> Background:
    report = tmp / f"report-bg-{time.monotonic_ns()}.json"
    argv = [sys.executable, "-m", "invoke", *args, "--json", str(report)]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            env={**os.environ, "COLUMNS": "200", **(env or {})})
    bg = Background(proc, report)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            bg.out.append(line)

    bg._reader = threading.Thread(target=read, daemon=True)
    bg._reader.start()
    return bg


def interrupt(bg: Background, sig: signal.Signals) -> None:
    bg.proc.send_signal(sig)
