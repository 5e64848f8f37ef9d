"""Platforms as data: steps never ask a platform's name, and what the platform modules hold is sound.

The first test reads the source (never imports it): no step module and no
desired-state module may compare a platform's name or family, or spell out a
platform's name. Adding a platform must be one module entry plus its recorded
cases, never an ``if platform.name == ...`` somewhere else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from provisioner.model import OsRelease
from provisioner.platforms import ALL, DEBIAN12, DEBIAN13, EL6, EL7, EL8, EL9, FAMILIES, detect, union_paths
from provisioner.platforms.debian import dpkg_version_compare
from provisioner.platforms.el import rpm_version_compare

from .recorded_cases import case_paths

ROOT = Path(__file__).resolve().parents[2]
DECIDING = sorted([*(ROOT / "provisioner" / "steps").rglob("*.py"), ROOT / "provisioner" / "desired.py"])
NAMES = {p.name for p in ALL} | {f.name for f in FAMILIES}


def _spelled(node: ast.AST) -> str:
    return ast.unparse(node)


def name_tests(path: Path) -> list[str]:
    """Every place in ``path`` that reads a platform's name or family, or writes a platform name as a literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("name", "family") and "platform" in _spelled(node.value):
            found.append(f"{path.name}:{node.lineno}: {_spelled(node)}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES:
            found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    return found


@pytest.mark.parametrize("path", DECIDING, ids=lambda p: str(p.relative_to(ROOT)))
def test_steps_and_the_desired_state_never_ask_a_platform_s_name(path: Path):
    assert name_tests(path) == []


def test_the_check_finds_a_name_test(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(ctx):\n    if ctx.platform.name == 'el6':\n        return ctx.platform.family\n")
    assert len(name_tests(bad)) == 3


@pytest.mark.parametrize("platform", ALL, ids=lambda p: p.name)
def test_every_platform_has_recorded_cases(platform):
    """A platform is its module entry plus its recorded cases: at least a fresh and a converged plan per step."""
    steps = {path.parent.name for path in case_paths(pattern=f"{platform.name}-*.json")}
    assert {"packages", "main_cf", "sasl", "pam", "tls", "master_cf", "aliases", "services"} <= steps


@pytest.mark.parametrize(
    "os, platform",
    [
        (OsRelease("debian", "12"), DEBIAN12),
        (OsRelease("debian", "13"), DEBIAN13),
        (OsRelease("ubuntu", "22.04", ("debian",)), DEBIAN12),
        (OsRelease("centos", "6.10", ("rhel",)), EL6),
        (OsRelease("centos", "7", ("rhel", "fedora")), EL7),
        (OsRelease("rocky", "8.9", ("rhel", "centos", "fedora")), EL8),
        (OsRelease("rocky", "9.3", ("rhel", "centos", "fedora")), EL9),
        (OsRelease("ol", "9.4", ()), EL9),
    ],
)
def test_detection(os, platform):
    assert detect(os) is platform


def test_builds_are_oldest_first_and_the_desired_state_uses_the_oldest():
    for platform in ALL:
        numbers = [build.number for build in platform.postfix]
        assert numbers == sorted(numbers), platform.name
        assert platform.postfix_version == numbers[0]
    assert DEBIAN12.postfix_version == (3, 6, 4) and DEBIAN13.postfix_version == (3, 10, 13)


@pytest.mark.parametrize(
    "a, b, order",
    [
        ("2.6.6-7.el6", "2.6.6-8.el6", -1),
        ("2.6.6-8.el6", "2.6.6-8.el6", 0),
        ("2.6.6-10.el6", "2.6.6-8.el6", 1),  # numbers, not text
        ("2.6.6-8.el6_9.1", "2.6.6-8.el6", 1),  # an update of -8 is newer
        ("2.6.6-8.el6", "2.6.6-8", 1),
        ("2.6.6a", "2.6.6", 1),
        ("2.6.6-8.1", "2.6.6-8.el6", 1),  # a number beats letters
    ],
)
def test_rpm_version_compare(a, b, order):
    assert rpm_version_compare(a, b) == order
    assert rpm_version_compare(b, a) == -order


@pytest.mark.parametrize(
    "a, b, order",
    [
        ("3.10.13-0+deb13u1", "3.7.11-0+deb12u1", 1),
        ("1.0~rc1", "1.0", -1),
        ("1:1.0", "2.0", 1),
        ("2.1.28+dfsg1-9", "2.1.28+dfsg-11", 1),
        ("3.7.11-0+deb12u1", "3.7.11-0+deb12u1", 0),
        ("1.0-1", "1.0-1.1", -1),
    ],
)
def test_dpkg_version_compare(a, b, order):
    assert dpkg_version_compare(a, b) == order
    assert dpkg_version_compare(b, a) == -order


def test_below_floor_only_for_a_known_older_release():
    assert EL6.below_floor("postfix", "2.6.6-7.el6").release == "2.6.6-8.el6"
    for installed in ("2.6.6-8.el6", "2.6.6-8.el6_9.1", None, "(to be installed)", "(to be updated)"):
        assert EL6.below_floor("postfix", installed) is None
    assert EL7.below_floor("postfix", "2.10.1-7.el7") is None


def test_union_paths_takes_every_form():
    assert union_paths("smtpd_sasl_conf") == ("/etc/postfix/sasl/smtpd.conf", "/etc/sasl2/smtpd.conf")
    assert union_paths("smtpd_sasl_conf_shadows") == ("/usr/lib64/sasl2/smtpd.conf",)
    assert union_paths("saslauthd_unit_dropin") == ("/etc/systemd/system/saslauthd.service.d/provisioner.conf",)
