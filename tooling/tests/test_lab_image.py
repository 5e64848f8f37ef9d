"""Image cache: dependency list parsing, stamps, atomic builds (no root, no network)."""

import json

import pytest

from tooling.lab import LabError, image
from tooling.lab.config import REPO_PACKAGES, ROOTFS_INCLUDE

APT_CACHE_OUTPUT = """\
postfix
  PreDepends: init-system-helpers
  Depends: libc6
  Depends: <mail-transport-agent>
    postfix
    sendmail-bin
  Depends: debconf
  Depends: <debconf-2.0>
init-system-helpers
  Depends: perl-base
libc6
  Depends: libgcc-s1
<debconf-2.0>
<perl:any>
debconf
libc6:i386
perl-base
libgcc-s1
postfix
"""


def test_parse_depends_keeps_real_top_level_packages_only():
    assert image.parse_depends(APT_CACHE_OUTPUT) == [
        "debconf",
        "init-system-helpers",
        "libc6",
        "libgcc-s1",
        "perl-base",
        "postfix",
    ]


def test_parse_depends_empty():
    assert image.parse_depends("") == []


def test_parse_packages_index():
    text = "Package: postfix\nVersion: 3.7\n\nPackage: libc6\nDepends: x\n"
    assert image.parse_packages_index(text) == {"postfix", "libc6"}


def test_required_packages_are_listed():
    for pkg in ("systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "iproute2"):
        assert pkg in ROOTFS_INCLUDE
    assert "python3-minimal" not in ROOTFS_INCLUDE
    for pkg in (
        "postfix sasl2-bin libsasl2-modules openssl ca-certificates nftables iptables "
        "sendmail-bin sendmail-base sendmail-cf libpam-modules"
    ).split():
        assert pkg in REPO_PACKAGES


def test_hashes_stable_order_independent_and_sensitive():
    assert image.rootfs_hash() == image.rootfs_hash()
    assert image.repo_hash(packages=["a", "b"]) == image.repo_hash(packages=["b", "a", "a"])
    assert image.repo_hash(packages=["a", "b"]) != image.repo_hash(packages=["a", "c"])
    assert image.rootfs_hash(include=["x"]) != image.rootfs_hash(include=["x", "y"])
    assert image.rootfs_hash(include=["x"]) != image.repo_hash(packages=["x"])


def _builder(calls, fail=False):
    def build(out):
        calls.append(out)
        (out / "payload").write_text("data")
        if fail:
            raise LabError("boom")

    return build


def test_ensure_part_builds_once_atomically(tmp_path):
    final = tmp_path / "repo"
    calls = []
    h = image._ensure_part(final, {"k": 1}, _builder(calls), ["payload"])
    assert (final / "payload").read_text() == "data"
    assert json.loads((final / image.STAMP_NAME).read_text())["hash"] == h == image.read_stamp(final)
    image._ensure_part(final, {"k": 1}, _builder(calls), ["payload"])
    assert len(calls) == 1  # cached
    image._ensure_part(final, {"k": 2}, _builder(calls), ["payload"])
    assert len(calls) == 2  # inputs changed -> rebuilt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no tmp/old dirs left


def test_failed_build_keeps_previous_and_leaves_no_temp(tmp_path):
    final = tmp_path / "rootfs"
    calls = []
    h = image._ensure_part(final, {"k": 1}, _builder(calls), ["payload"])
    with pytest.raises(LabError):
        image._ensure_part(final, {"k": 2}, _builder(calls, fail=True), ["payload"])
    assert image.read_stamp(final) == h
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs"]


def test_build_missing_output_is_an_error(tmp_path):
    with pytest.raises(LabError, match="not produced"):
        image._ensure_part(tmp_path / "x", {"k": 1}, lambda out: None, ["rootfs.tar"])
    assert list(tmp_path.iterdir()) == []


def test_unstamped_or_interrupted_part_is_not_reused(tmp_path):
    final = tmp_path / "repo"
    final.mkdir()
    (final / "payload").write_text("half")  # no stamp: an interrupted/foreign dir
    calls = []
    image._ensure_part(final, {"k": 1}, _builder(calls), ["payload"])
    assert len(calls) == 1 and (final / "payload").read_text() == "data"


def test_stale_temp_dirs_removed(tmp_path):
    (tmp_path / "rootfs.tmp-abc").mkdir()
    (tmp_path / "repo.old-123").mkdir()
    (tmp_path / "repo").mkdir()
    image._remove_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
