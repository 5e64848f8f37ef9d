"""One lab host: its root dir, its systemd-nspawn process, ssh to it."""

from __future__ import annotations

import json
import logging
import os
import secrets as _secrets
import shutil
import signal
import socket
import string
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import cgroups, config
from .errors import LabError
from .image import Image
from .naming import HostPlan
from .system import file_tail, mounts_under, pid_alive, run, tool

log = logging.getLogger("tooling.lab")

_PASSWORD_ALPHABET = string.ascii_letters + string.digits

#: Popen objects of the nspawn processes this Python process started (so we can reap them).
_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class HostSecrets:
    user: str
    password: str
    outsider_user: str
    outsider_password: str


def new_password(length: int = config.PASSWORD_LENGTH) -> str:
    return "".join(_secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


def new_secrets() -> HostSecrets:
    return HostSecrets(config.MAIL_USER, new_password(), config.OUTSIDER_USER, new_password())


# --- paths -------------------------------------------------------------------------------


def host_dir(name: str) -> Path:
    return config.HOSTS_DIR / name


def root_dir(name: str) -> Path:
    return host_dir(name) / "root"


def boot_log(name: str) -> Path:
    return host_dir(name) / "boot.log"


def secrets_file(name: str) -> Path:
    return host_dir(name) / "secrets.json"


def host_key_file(name: str) -> Path:
    return root_dir(name) / "etc/ssh/ssh_host_ed25519_key.pub"


def load_secrets(name: str) -> HostSecrets | None:
    try:
        return HostSecrets(**json.loads(secrets_file(name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def known_hosts_line(plan: HostPlan) -> str:
    """``10.200.N.2 ssh-ed25519 AAAA...`` read from the host's own root dir."""
    try:
        fields = host_key_file(plan.name).read_text().split()
    except OSError as e:
        raise LabError(f"{plan.name}: no ed25519 host key in its root dir: {e}") from e
    if len(fields) < 2 or fields[0] != "ssh-ed25519":
        raise LabError(f"{plan.name}: unexpected host key file {host_key_file(plan.name)}")
    return f"{plan.address} {fields[0]} {fields[1]}"


# --- the lab key -------------------------------------------------------------------------


def ensure_key(path: Path = config.KEY_PATH) -> Path:
    """The lab's ssh key pair, generated once (private key mode 0600)."""
    pub = path.with_name(path.name + ".pub")
    if not (path.exists() and pub.exists()):
        path.parent.mkdir(parents=True, exist_ok=True)
        for p in (path, pub):
            p.unlink(missing_ok=True)
        log.info("generating the lab ssh key %s", path)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "provisioner-lab", "-f", str(path)])
    os.chmod(path, 0o600)
    return path


# --- root dir ----------------------------------------------------------------------------


def _inside(root: Path, rel: str) -> Path:
    """A path inside ``root`` that is safe to write (no symlink escapes to the host)."""
    p = root / rel.lstrip("/")
    real_root = root.resolve()
    parent = p.parent.resolve()
    if parent != real_root and real_root not in parent.parents:
        raise LabError(f"{p} resolves outside the host root {root}")
    if p.is_symlink():
        p.unlink()
    return p


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    p = _inside(root, rel)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    os.chmod(p, mode)


def prepare_root(plan: HostPlan, image: Image, key_path: Path, host_secrets: HostSecrets, domain: str) -> Path:
    """Extract the image into the host's root dir and make it this host."""
    hdir, root = host_dir(plan.name), root_dir(plan.name)
    if hdir.exists():
        remove_host_dir(plan.name)
    root.mkdir(parents=True)
    os.chmod(hdir, 0o700)
    os.chmod(root, 0o755)
    run(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(image.rootfs_tar), "-C", str(root)],
        timeout=300,
    )
    fqdn = f"{plan.name}.{domain}"
    _write(root, "etc/hostname", f"{plan.name}\n")
    _write(
        root,
        "etc/hosts",
        f"127.0.0.1\tlocalhost\n{plan.address}\t{fqdn} {plan.name}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    )
    # apt: the offline repo only (hosts have no route out).
    _write(root, "etc/apt/sources.list", config.SOURCES_LIST)
    sld = _inside(root, "etc/apt/sources.list.d")
    if sld.is_dir():
        for p in sld.iterdir():
            if p.name.endswith((".list", ".sources")):
                p.unlink()
    _inside(root, "srv/repo").mkdir(parents=True, exist_ok=True)
    # sshd: fresh host keys per host; root logs in with the lab key only.
    ssh_dir = _inside(root, "etc/ssh")
    for p in ssh_dir.glob("ssh_host_*"):
        p.unlink()
    run(["ssh-keygen", "-A", "-f", str(root)])
    for p in ssh_dir.glob("ssh_host_*_key"):
        p.chmod(0o600)
    _write(
        root,
        "etc/ssh/sshd_config.d/provisioner-lab.conf",
        "# written by tooling.lab\nPermitRootLogin prohibit-password\n",
    )
    dot_ssh = _inside(root, "root/.ssh")
    dot_ssh.mkdir(mode=0o700, exist_ok=True)
    os.chmod(dot_ssh, 0o700)
    pub = Path(str(key_path) + ".pub").read_text()
    _write(root, "root/.ssh/authorized_keys", pub if pub.endswith("\n") else pub + "\n", 0o600)
    # Accounts: one that may send mail, one real account that must not.
    for user in (host_secrets.user, host_secrets.outsider_user):
        run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", user])
    run(
        ["chroot", str(root), "chpasswd"],
        input=f"{host_secrets.user}:{host_secrets.password}\n"
        f"{host_secrets.outsider_user}:{host_secrets.outsider_password}\n",
    )
    secrets_path = secrets_file(plan.name)
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(host_secrets.__dict__, f)
    return root


def remove_host_dir(name: str) -> None:
    hdir = host_dir(name)
    if not hdir.exists():
        return
    busy = mounts_under(hdir)
    if busy:
        raise LabError(f"refusing to delete {hdir}: still mounted: {', '.join(busy)}")
    shutil.rmtree(hdir)


# --- nspawn ------------------------------------------------------------------------------


def nspawn_argv(plan: HostPlan, image: Image) -> list[str]:
    return [
        tool("systemd-nspawn"),
        "--boot",
        "--register=no",
        "--keep-unit",
        "-D",
        str(root_dir(plan.name)),
        "-M",
        plan.machine,
        f"--hostname={plan.name}",
        f"--network-namespace-path=/run/netns/{plan.netns}",
        "--capability=CAP_NET_ADMIN",
        f"--bind-ro={image.repo_dir}:{config.REPO_MOUNT}",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
        "--console=read-only",
    ]


def start(plan: HostPlan, image: Image) -> int:
    """Start systemd-nspawn in the background (own session and cgroup, console to boot.log); its pid."""
    log_path = boot_log(plan.name)
    argv = cgroups.wrap(nspawn_argv(plan, image), plan.name)
    log.debug("%s: %s", plan.name, " ".join(argv))
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        _CHILDREN.pop(pid, None)


def alive(pid: int) -> bool:
    _reap(pid)
    return pid_alive(pid)


def _signal_and_wait(pending: set[int], sig: signal.Signals, wait: float) -> set[int]:
    """Send ``sig`` to each process and wait up to ``wait`` s for them to go; return the ones still alive."""
    for pid in pending:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait
    while pending and time.monotonic() < deadline:
        pending = {p for p in pending if alive(p)}
        if pending:
            time.sleep(0.1)
    return pending


def stop(pids: Iterable[int], timeout: float = config.STOP_TIMEOUT) -> None:
    """SIGTERM each nspawn (it shuts its container down), wait, then SIGKILL what is left."""
    pending = {p for p in pids if alive(p)}
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        pending = _signal_and_wait(pending, sig, wait)
        if not pending:
            return
        if sig == signal.SIGTERM:
            log.warning("systemd-nspawn %s did not stop within %.0f s; killing", sorted(pending), wait)
    raise LabError(f"systemd-nspawn processes {sorted(pending)} survived SIGKILL")


def kill_now(pids: Iterable[int], timeout: float = 10.0) -> None:
    """SIGKILL and wait: for what is left of a container whose nspawn is gone.

    (A container's systemd survives a SIGKILLed nspawn and ignores SIGTERM from outside.)
    """
    pending = _signal_and_wait({p for p in pids if alive(p)}, signal.SIGKILL, timeout)
    if pending:
        raise LabError(f"processes {sorted(pending)} survived SIGKILL")


# --- ssh ---------------------------------------------------------------------------------


def ssh_argv(
    address: str,
    command: str,
    *,
    user: str = "root",
    key: Path = config.KEY_PATH,
    known_hosts: Path = config.KNOWN_HOSTS_PATH,
    connect_timeout: int = 5,
) -> list[str]:
    # fmt: off
    return [
        "ssh",
        "-F", "/dev/null",
        "-i", str(key),
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "LogLevel=ERROR",
        "-p", "22",
        f"{user}@{address}",
        command,
    ]
    # fmt: on


def ssh(plan: HostPlan, command: str, *, key: Path, known_hosts: Path, timeout: float = 60, check: bool = True):
    return run(ssh_argv(plan.address, command, key=key, known_hosts=known_hosts), timeout=timeout, check=check)


def wait_for_sshd(plan: HostPlan, pid: int, deadline: float, timeout: float) -> None:
    """Poll until sshd on the host sends its banner; LabError with the boot log tail otherwise."""
    while True:
        if not alive(pid):
            raise LabError(
                f"{plan.name}: systemd-nspawn (pid {pid}) exited during boot; "
                f"tail of {boot_log(plan.name)}:\n{file_tail(boot_log(plan.name))}"
            )
        try:
            with socket.create_connection((plan.address, 22), timeout=1.0) as s:
                s.settimeout(2.0)
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise LabError(
                f"{plan.name}: sshd at {plan.address}:22 did not answer within {timeout:.0f} s; "
                f"tail of {boot_log(plan.name)}:\n{file_tail(boot_log(plan.name))}"
            )
        time.sleep(0.2)
