"""Lab helpers that need neither root nor a host: messages, files, state, boot timeout."""

import os
import shutil
import socket
import stat
import time

import pytest

from tooling.lab import LabError, hosts, state, system
from tooling.lab.naming import plan_host


def test_missing_command_names_package_and_bootstrap(monkeypatch):
    real = shutil.which

    def which(name, path=None):
        return None if name == "systemd-nspawn" else real(name, path=path)

    monkeypatch.setattr(shutil, "which", which)
    with pytest.raises(LabError, match=r"systemd-nspawn missing .*systemd-container.*run make bootstrap"):
        system.require_commands(["systemd-nspawn", "tar"])
    with pytest.raises(LabError, match="systemd-nspawn missing"):
        system.tool("systemd-nspawn")


def test_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="^not root"):
        system.require_root()


def test_run_reports_failure_with_stderr():
    with pytest.raises(LabError, match=r"exit 3.*\n.*oops"):
        system.run(["sh", "-c", "echo oops >&2; exit 3"])
    assert system.run(["sh", "-c", "exit 3"], check=False).returncode == 3


def test_write_file_is_atomic_with_mode(tmp_path):
    p = tmp_path / "sub" / "secret.yaml"
    system.write_file(p, "a: 1\n", 0o600)
    assert p.read_text() == "a: 1\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    system.write_file(p, "a: 2\n", 0o600)
    assert p.read_text() == "a: 2\n"
    assert [x.name for x in p.parent.iterdir()] == ["secret.yaml"]


def test_state_roundtrip_and_garbage(tmp_path):
    f = tmp_path / "state.json"
    assert state.load(f) == state.empty()
    data = state.empty()
    data["hosts"]["lab1"] = {"pid": 123}
    state.save(data, f)
    assert state.load(f) == data
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    f.write_text("{not json")
    assert state.load(f) == state.empty()


def test_pid_helpers_on_self():
    assert system.pid_alive(os.getpid())
    assert system.start_time(os.getpid()) is not None
    assert system.cmdline(os.getpid())
    assert not system.pid_alive(2**22 + 12345)


def test_boot_timeout_names_host_and_shows_log_tail(monkeypatch, tmp_path):
    log = tmp_path / "boot.log"
    log.write_text("line 1\nFailed to start OpenBSD Secure Shell server.\n")
    monkeypatch.setattr(hosts, "boot_log", lambda name: log)

    def refuse(*a, **kw):
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(LabError) as e:
        hosts.wait_for_sshd(plan_host(1), os.getpid(), time.monotonic() + 0.3, 0.3)
    msg = str(e.value)
    assert "lab1: sshd at 10.200.1.2:22 did not answer" in msg
    assert "Failed to start OpenBSD Secure Shell server." in msg


def test_inotify_instances_raised_only_when_many_hosts_need_more(tmp_path):
    from tooling.lab.system import ensure_inotify_instances, inotify_instances_needed

    knob = tmp_path / "max_user_instances"
    knob.write_text("128\n")
    assert ensure_inotify_instances(10, knob) is None and knob.read_text() == "128\n"
    assert ensure_inotify_instances(50, knob) == (128, inotify_instances_needed(50))
    assert int(knob.read_text()) >= 4096
    assert ensure_inotify_instances(50, knob) is None  # already high enough
    assert inotify_instances_needed(200) == 6400
