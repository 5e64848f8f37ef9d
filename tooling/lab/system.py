"""Small, careful wrappers around the host system: commands, root, processes."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .errors import LabError

log = logging.getLogger("tooling.lab")

#: command -> Debian package that provides it (for the "missing" message).
COMMAND_PACKAGES: Mapping[str, str] = {
    "systemd-nspawn": "systemd-container",
    "mmdebstrap": "mmdebstrap",
    "ip": "iproute2",
    "dpkg-scanpackages": "dpkg-dev",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "apt-get": "apt",
    "apt-cache": "apt",
    "tar": "tar",
    "chroot": "coreutils",
}

#: Needed to boot hosts from a cached image.
RUN_COMMANDS = ("systemd-nspawn", "ip", "ssh", "ssh-keygen", "tar", "chroot")
#: Needed, in addition, to build the image and the offline repo.
BUILD_COMMANDS = ("mmdebstrap", "dpkg-scanpackages", "apt-get", "apt-cache")

_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
)


def tool(name: str) -> str:
    """Absolute path of a command, or a LabError naming the package to install."""
    path = shutil.which(name, path=_SEARCH_PATH)
    if path is None:
        pkg = COMMAND_PACKAGES.get(name, name)
        raise LabError(f"{name} missing (Debian package {pkg}): run make bootstrap")
    return path


def require_commands(names: Iterable[str]) -> None:
    missing = [n for n in names if shutil.which(n, path=_SEARCH_PATH) is None]
    if missing:
        pkgs = sorted({COMMAND_PACKAGES.get(n, n) for n in missing})
        raise LabError(f"{', '.join(missing)} missing (Debian packages: {' '.join(pkgs)}): run make bootstrap")


def require_root() -> None:
    if not sys.platform.startswith("linux"):
        raise LabError(f"the lab needs Linux (systemd-nspawn, network namespaces); this is {sys.platform}")
    if os.geteuid() != 0:
        raise LabError("not root: the lab needs root (systemd-nspawn, network namespaces, apt); run it as root")


def _tail(text: str | bytes | None, lines: int = 20) -> str:
    if not text:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    input: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = 120,
    check: bool = True,
    stdout: int | None = subprocess.PIPE,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command (argv list, never a shell); LabError on failure."""
    args = [os.fspath(a) for a in argv]
    if not os.path.isabs(args[0]):
        args[0] = tool(args[0])
    log.debug("run: %s", shlex.join(args))
    try:
        cp = subprocess.run(
            args,
            input=input,
            cwd=cwd,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError as e:
        raise LabError(f"{args[0]} missing: run make bootstrap") from e
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout:.0f}s: {shlex.join(args)}\n{_tail(e.stderr)}") from e
    if check and cp.returncode != 0:
        detail = _tail(cp.stderr) or _tail(cp.stdout)
        raise LabError(f"command failed (exit {cp.returncode}): {shlex.join(args)}\n{detail}".rstrip())
    return cp


def file_tail(path: Path, lines: int = 30) -> str:
    try:
        data = path.read_bytes()[-64 * 1024 :]
    except OSError as e:
        return f"(no boot log: {e})"
    return _tail(data, lines) or "(boot log is empty)"


# --- processes ---------------------------------------------------------------------------


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 onwards)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()


def start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (with the pid, a unique identity)."""
    f = _stat_fields(pid)
    return int(f[19]) if f and len(f) > 19 else None


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            f = _stat_fields(int(entry.name))
            if f and len(f) > 1 and f[1] == str(pid):
                found.append(int(entry.name))
    return sorted(found)


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (reaps it if it is our child)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def nspawn_root(argv: Sequence[str]) -> str | None:
    """The -D/--directory of a systemd-nspawn command line, or None if it is not one."""
    if not argv or os.path.basename(argv[0]) != "systemd-nspawn":
        return None
    for i, a in enumerate(argv):
        if a in ("-D", "--directory") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--directory="):
            return a.split("=", 1)[1]
    return None


def find_nspawn(under: Path) -> dict[int, str]:
    """pid -> root dir of every systemd-nspawn whose root lies under ``under``."""
    prefix = str(under).rstrip("/") + "/"
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        root = nspawn_root(cmdline(int(entry.name)))
        if root is not None and root.startswith(prefix):
            found[int(entry.name)] = root
    return found


def netns_inode(path: str | os.PathLike[str]) -> int | None:
    """Inode of a network namespace file (/run/netns/NAME), as in ``net:[INODE]``."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_netns(inodes: Iterable[int]) -> set[int]:
    """Every live process whose network namespace is one of ``inodes`` (never the caller's own)."""
    wanted = {f"net:[{i}]" for i in inodes}
    try:
        wanted.discard(os.readlink("/proc/self/ns/net"))
    except OSError:
        pass
    found: set[int] = set()
    if not wanted:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns/net") in wanted:
                found.add(int(entry.name))
        except OSError:
            continue
    return {p for p in found if pid_alive(p)}


def mounts_under(path: Path) -> list[str]:
    """Mount points (in our mount namespace) at or below ``path``."""
    prefix = str(path).rstrip("/")
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            mp = fields[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                found.append(mp)
    return found


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Atomic write with the given mode (temp file in the same dir, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
#: Each booted host's systemd takes inotify instances; at the kernel's default of 128, about the 20th host
#: dies at boot ("Failed to allocate manager object"). 4096 was measured to boot 30 and more.
INOTIFY_INSTANCES_PER_HOST = 32
INOTIFY_INSTANCES_FLOOR = 4096


def inotify_instances_needed(hosts: int) -> int:
    return max(INOTIFY_INSTANCES_FLOOR, INOTIFY_INSTANCES_PER_HOST * hosts)


def ensure_inotify_instances(hosts: int, path: Path = INOTIFY_INSTANCES) -> tuple[int, int] | None:
    """Raise fs.inotify.max_user_instances for ``hosts`` booted hosts; (old, new) when raised, else None."""
    if hosts < 16:
        return None
    current = int(path.read_text().strip())
    wanted = inotify_instances_needed(hosts)
    if current >= wanted:
        return None
    try:
        path.write_text(f"{wanted}\n")
    except OSError as e:
        raise LabError(
            f"{hosts} lab hosts need fs.inotify.max_user_instances >= {wanted} (it is {current}) and it could "
            f"not be raised: {e}; run `sysctl -w fs.inotify.max_user_instances={wanted}` as root"
        ) from e
    return current, wanted
