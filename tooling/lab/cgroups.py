"""One cgroup per lab host, so that no two hosts share a unit's cgroup.

systemd-nspawn puts its container in ``<its own cgroup>/payload``. Started from one
process, every host would be in the same ``/payload``, and a unit of the same name in
two hosts (saslauthd.service) would be one cgroup: Debian 13's native saslauthd unit
then waits on stop for the other host's processes and a restart took 90 s
(docs/notes/debian13-by-hand.md, section 10). Each nspawn is therefore started in
``provisioner-lab/<host>`` of the cgroup2 hierarchy and of systemd's named v1
hierarchy (those this machine mounts), and ``down`` removes those cgroups once the
container is gone.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

log = logging.getLogger("tooling.lab")

LAB_CGROUP = "provisioner-lab"
MOUNTS = Path("/proc/self/mounts")


def hierarchies(mounts: str | None = None) -> list[Path]:
    """Mount points of the cgroup2 hierarchy and of the named ``systemd`` v1 one, as mounted here."""
    if mounts is None:
        try:
            mounts = MOUNTS.read_text()
        except OSError:
            return []
    found = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point, fstype, options = fields[1], fields[2], fields[3].split(",")
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options):
            found.append(Path(point.encode().decode("unicode_escape")))
    return found


def host_cgroups(name: str, roots: list[Path] | None = None) -> list[Path]:
    return [root / LAB_CGROUP / name for root in (hierarchies() if roots is None else roots)]


def wrap(argv: list[str], name: str, roots: list[Path] | None = None) -> list[str]:
    """``argv`` run by a shell that first moves itself into the host's cgroups, then execs it.

    The exec keeps the pid, so the caller's pid is nspawn's. A cgroup that cannot be
    entered is reported on stderr (the boot log) and the host boots anyway.
    """
    enter = "".join(
        f"mkdir -p {shlex.quote(str(d))} 2>/dev/null && echo $$ > {shlex.quote(str(d / 'cgroup.procs'))} "
        f"|| echo 'lab: could not enter cgroup {d}' >&2; "
        for d in host_cgroups(name, roots)
    )
    return ["/bin/sh", "-c", enter + 'exec "$@"', "sh", *argv]


def pids(name: str, roots: list[Path] | None = None) -> set[int]:
    """Every process left in the host's cgroups (the container's, once nspawn is gone)."""
    found: set[int] = set()
    for top in host_cgroups(name, roots):
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            try:
                found |= {int(pid) for pid in procs.read_text().split()}
            except (OSError, ValueError):
                continue
    return found


def remove(name: str, roots: list[Path] | None = None) -> list[str]:
    """Remove the host's cgroups, deepest first; the directories that could not be removed."""
    left = []
    for top in host_cgroups(name, roots):
        if not top.is_dir():
            continue
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError as e:
                left.append(f"{directory}: {e.strerror}")
    if left:
        log.warning("cgroups of %s not removed: %s", name, "; ".join(left))
    return left


def remove_parent(roots: list[Path] | None = None) -> None:
    """The lab's own parent cgroup, once no host is left in it."""
    for root in hierarchies() if roots is None else roots:
        try:
            (root / LAB_CGROUP).rmdir()
        except OSError:
            pass
