"""The product as a wheel: built from the package alone, installed in a fresh venv, planning a lab host.

The wheel is built from a copy of pyproject.toml, README.md and provisioner/
only, so it cannot lean on anything else in the checkout; it is installed in a
new venv in a temporary directory (its dependencies from pip's cache or PyPI)
and run from there, outside the repository. Its dry run must be the checkout's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv

import pytest

from conftest import REPO, invoke

HOST = "lab1"


def run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The ``bin`` directory of a fresh venv with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    assert not tmp.resolve().is_relative_to(REPO)
    source = tmp / "source"
    shutil.copytree(REPO / "provisioner", source / "provisioner", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(source)])
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("provisioner-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    bin_dir = tmp / "venv" / "bin"
    pip = run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return bin_dir


def test_the_wheel_holds_the_product_and_nothing_of_the_checkout(installed, tmp_path):
    probe = run([str(installed / "python"), "-c",
                 "import importlib.util, provisioner; print(provisioner.__file__); "
                 "print(importlib.util.find_spec('tooling'))"], cwd=tmp_path)
    where, tooling = probe.stdout.split()
    assert where.startswith(str(installed.parent)) and tooling == "None", probe.stdout + probe.stderr
    listed = run([str(installed / "provisioner"), "--list"], cwd=tmp_path)
    assert listed.returncode == 0 and {"provision", "verify", "facts", "check-inventory"} <= set(listed.stdout.split())


def test_a_dry_run_from_the_installed_command_is_the_checkout_s(lab, installed, tmp_path):
    inventory = str(lab.inventory_path)
    report = tmp_path / "wheel.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheel = run([str(installed / "provisioner"), "provision", "--inventory", inventory, "--host", HOST,
                 "--dry-run", "--json", str(report)], cwd=tmp_path, env=env)
    assert wheel.returncode in (0, 2), wheel.stdout + wheel.stderr
    assert "recap (dry run)" in wheel.stdout and HOST in wheel.stdout
    planned = json.loads(report.read_text())["hosts"][HOST]
    if wheel.returncode == 2:
        assert planned["status"] == "pending" and planned["changes"]
        assert "changes this run would make" in wheel.stdout
    else:
        assert planned["status"] == "ok" and "no change: the host is as desired" in wheel.stdout

    checkout = invoke("provision", "--inventory", inventory, "--host", HOST, "--dry-run", tmp=tmp_path)
    assert checkout.code == wheel.returncode, checkout.out
    assert checkout.summaries(HOST) == [(c["step"], c["summary"]) for c in planned["changes"]]
