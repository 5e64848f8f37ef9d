"""Hosts of several Debian suites, their images and their own cgroups (no root, no network)."""

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from tooling.lab import LabError, LabHost, cgroups, image
from tooling.lab.config import CACHE_DIR
from tooling.lab.core import host_suites
from tooling.lab.inventory import render_inventory
from tooling.lab.naming import plan_hosts

SECRETS = Path("/work/main/inventories/lab-secrets.yaml")


def test_host_suites():
    assert host_suites(2) == ["bookworm", "bookworm"]
    assert host_suites(["bookworm", "trixie"]) == ["bookworm", "trixie"]
    with pytest.raises(LabError, match="unknown Debian suite 'sid'"):
        host_suites(["bookworm", "sid"])
    with pytest.raises(LabError, match="not 'trixie'"):
        host_suites("trixie")
    with pytest.raises(LabError):
        host_suites(0)


def test_bookworm_keeps_its_cache_and_its_hashes():
    """Caches built before suites existed stay valid: same place, same inputs, same hashes."""
    assert image.suite_dir("bookworm") == CACHE_DIR
    assert image.suite_dir("trixie") == CACHE_DIR / "trixie"
    assert image.rootfs_hash(suite="bookworm") == "1b12d92e35303328276f7dabe4f84847bf466178cf42a6821749d874a23a3d51"
    assert image.repo_hash(suite="bookworm") == "ea67dbafb2fa9e332cbf5728c4d2ae748b7e0330773f79e74709123da859b384"
    assert image.rootfs_hash(suite="trixie") != image.rootfs_hash(suite="bookworm")
    with pytest.raises(LabError, match="unknown Debian suite"):
        image.suite_dir("sid")


def test_private_apt_config_names_only_its_own_places(tmp_path):
    conf, sources = image.apt_config("trixie", tmp_path)
    assert [line.split()[-2] for line in sources.splitlines()] == ["trixie", "trixie-updates", "trixie-security"]
    paths = [value for line in conf.splitlines() for value in line.split('"')[1::2] if value.startswith("/")]
    assert paths and all(p.startswith(str(tmp_path)) or p == "/dev/null" for p in paths)
    assert 'Dir::Etc::Parts "' + str(tmp_path) in conf  # this machine's apt.conf.d takes no part


def test_inventory_has_a_group_per_suite(tmp_path):
    hosts = [
        LabHost(name=p.name, address=p.address, control_address=p.control_address,
                outsider_address=p.outsider_address, netns=p.netns, root=Path("/r"), suite=suite)
        for p, suite in zip(plan_hosts(3), ["bookworm", "bookworm", "trixie"])
    ]
    key, known = tmp_path / "id_ed25519", tmp_path / "known_hosts"  # the loader checks that both exist
    key.write_text("")
    key.chmod(0o600)
    known.write_text("")
    text = render_inventory(hosts, secrets_path=SECRETS, key_path=key, known_hosts_path=known)
    groups = yaml.safe_load(text)["groups"]
    assert groups["bookworm"] == {"hosts": ["lab1", "lab2"]} and groups["trixie"] == {"hosts": ["lab3"]}
    from provisioner.inventory import load

    path = tmp_path / "lab.yaml"
    path.write_text(text)
    assert [h.name for h in load(path).select(group="trixie")] == ["lab3"]


MOUNTS = """\
sysfs /sys sysfs rw 0 0
tmpfs /sys/fs/cgroup tmpfs ro 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0
"""


def test_hierarchies_are_cgroup2_and_named_systemd():
    assert cgroups.hierarchies(MOUNTS) == [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd")]
    assert cgroups.hierarchies("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n") == [Path("/sys/fs/cgroup")]


def test_wrapped_command_enters_its_cgroups_then_runs(tmp_path):
    """A directory stands in for each hierarchy: the wrapper writes its own pid, then execs with that pid."""
    roots = [tmp_path / "unified", tmp_path / "systemd"]
    argv = cgroups.wrap(["/bin/sh", "-c", "echo $$"], "lab4", roots)
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    pid = int(result.stdout)
    for root in roots:
        assert (root / "provisioner-lab" / "lab4" / "cgroup.procs").read_text().split() == [str(pid)]
    assert cgroups.pids("lab4", roots) == {pid}
    assert cgroups.pids("lab5", roots) == set()


def test_a_cgroup_that_cannot_be_entered_does_not_stop_the_host(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    result = subprocess.run(cgroups.wrap(["/bin/echo", "booted"], "lab1", [blocked]), capture_output=True, text=True)
    assert result.stdout == "booted\n" and "could not enter cgroup" in result.stderr


def test_remove_goes_deepest_first_and_reports_what_stays(tmp_path):
    root = tmp_path / "systemd"
    (root / "provisioner-lab" / "lab1" / "payload" / "system.slice").mkdir(parents=True)
    assert cgroups.remove("lab1", [root]) == []
    assert not (root / "provisioner-lab" / "lab1").exists()
    (root / "provisioner-lab" / "lab2").mkdir()
    (root / "provisioner-lab" / "lab2" / "cgroup.procs").write_text("1\n")  # a regular file: rmdir fails
    assert len(cgroups.remove("lab2", [root])) == 1
    cgroups.remove_parent([root])
    assert (root / "provisioner-lab").exists()  # lab2 is still there


def test_lab_host_says_its_suite():
    fields = {f.name: f.default for f in dataclasses.fields(LabHost)}
    assert fields["suite"] == "bookworm"
