"""What only Debian 13 needs, checked on the converged trixie host of the mission (lab4) with testinfra.

The mission test already proves plan fidelity, verify, the zero-change rerun and
drift repair there; these are the trixie-specific files and behaviours behind
them (docs/notes/debian13-by-hand.md, section 9).
"""

from __future__ import annotations

import subprocess

import pytest
import testinfra

from conftest import ensure_provisioned, host as lab_host

SOCKET_DIR = "/var/spool/postfix/var/run/saslauthd"
DROPIN = "/etc/systemd/system/saslauthd.service.d/provisioner.conf"


@pytest.fixture(scope="module")
def trixie(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trixie")
    ensure_provisioned(lab, "lab4", tmp)  # a dry run only, when the mission ran first
    entry = lab_host(lab, "lab4")
    assert entry.suite == "trixie"
    config = tmp / "ssh_config"
    config.write_text(
        f"Host lab4\n  HostName {entry.address}\n  User root\n  IdentityFile {lab.key_path}\n"
        f"  UserKnownHostsFile {lab.known_hosts_path}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel error\n"
    )
    return testinfra.get_host("ssh://lab4", ssh_config=str(config))


def test_it_is_debian_13_with_postfix_3_10(trixie):
    assert trixie.system_info.release.startswith("13")
    assert trixie.package("postfix").version.startswith("3.10.")


def test_saslauthd_runs_from_the_drop_in_with_its_pid_file_in_the_chroot(trixie):
    assert trixie.file(DROPIN).contains(f"^PIDFile={SOCKET_DIR}/saslauthd.pid$")
    shown = trixie.check_output("systemctl show -p PIDFile -p MainPID -p ActiveState saslauthd")
    values = dict(line.split("=", 1) for line in shown.splitlines())
    assert values["PIDFile"] == f"{SOCKET_DIR}/saslauthd.pid" and values["ActiveState"] == "active"
    assert values["MainPID"] == trixie.file(f"{SOCKET_DIR}/saslauthd.pid").content_string.strip()
    socket_dir = trixie.file(SOCKET_DIR)
    assert (socket_dir.user, socket_dir.group, socket_dir.mode) == ("root", "sasl", 0o710)
    assert trixie.socket(f"unix://{SOCKET_DIR}/mux").is_listening
    assert trixie.service("saslauthd").is_enabled


def test_saslauthd_restarts_cleanly(trixie):
    """The restart the pam step triggers: with the drop-in and a cgroup per lab host it returns at once, active."""
    assert trixie.run("systemctl restart saslauthd").rc == 0
    assert trixie.check_output("systemctl is-active saslauthd") == "active"


def test_settings_have_no_start_line(trixie):
    defaults = trixie.file("/etc/default/saslauthd")
    assert defaults.contains(f'^OPTIONS="-c -m {SOCKET_DIR}"$') and defaults.contains('^MECHANISMS="pam"$')
    assert not defaults.contains("^START=")


def test_main_cf_for_postfix_3_10_and_a_silent_postfix_check(trixie):
    postconf = trixie.check_output("postconf -n").splitlines()
    assert "cyrus_sasl_config_path = /etc/postfix/sasl" in postconf
    assert "compatibility_level = 3.6" in postconf
    assert not any(line.startswith("smtpd_tls_dh1024_param_file") for line in postconf)
    assert not trixie.file("/etc/postfix/tls/ffdhe2048.pem").exists
    check = trixie.run("postfix check")
    assert (check.rc, check.stdout, check.stderr) == (0, "", "")  # no deprecation warning left


def test_aliases_created_by_the_tool(trixie):
    assert trixie.file("/etc/aliases").contains("^postmaster:")
    assert trixie.file("/etc/aliases").contains("^root:[[:space:]]*mailuser$")
    assert trixie.file("/etc/aliases.db").mtime >= trixie.file("/etc/aliases").mtime


def test_postfix_service_is_the_daemon(trixie):
    assert trixie.service("postfix").is_running and trixie.service("postfix").is_enabled
    assert trixie.process.filter(comm="master")


def test_dhe_still_negotiates_a_2048_bit_group_without_the_parameter_file(lab):
    entry = lab_host(lab, "lab4")
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{entry.address}:587", "-starttls", "smtp", "-tls1_2",
         "-cipher", "DHE-RSA-AES256-GCM-SHA384"],
        input="QUIT\n", capture_output=True, text=True, timeout=60,
    )
    assert "Server Temp Key: DH, 2048 bits" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
