"""Fact parsers on recorded output (tests/data/facts)."""

import os
import subprocess
from pathlib import Path

import pytest

from provisioner.probes import (
    FactError,
    FactSpec,
    Probe,
    build_script,
    core_probes,
    parse_accounts,
    parse_all,
    parse_files,
    parse_os_release,
    parse_packages,
    parse_services,
    split_output,
)
from provisioner.platforms import DEBIAN12, DEBIAN13, EL6, EL7, EL8, EL9, UnsupportedPlatform, detect
from provisioner.model import OsRelease

DATA = Path(__file__).resolve().parent.parent / "data" / "facts"
SPEC = FactSpec(secret_files=("/etc/shadow",))


def sections(name: str) -> dict[str, str]:
    return split_output((DATA / name).read_text(), "@@B")


def test_debian_recorded_output_parses_into_facts():
    facts = parse_all(SPEC, sections("debian12-configured.txt"))
    assert facts.os == OsRelease(id="debian", version_id="12", id_like=())
    assert detect(facts.os) is DEBIAN12
    assert facts.packages == {"postfix": "3.7.11-0+deb12u1", "sasl2-bin": "2.1.28+dfsg-10+deb12u1"}
    allow = facts.files["/etc/pam.d/mail_auth_group.allow"]
    assert (allow.exists, allow.content, allow.mode, allow.owner) == (True, "mail_login\n", "644", "root")
    assert not facts.files["/etc/nope"].exists
    shadow = facts.files["/etc/shadow"]
    assert shadow.exists and shadow.content is None and shadow.sha256  # secret: digest only
    assert facts.services["saslauthd"].enabled and facts.services["saslauthd"].active
    assert facts.services["postfix@-"].enabled
    assert not facts.services["nope"].exists
    assert facts.users["postfix"].groups == ("postfix", "sasl")
    assert "nobodyx" not in facts.users
    assert facts.groups == {"sasl": ("postfix",), "mail_login": ("mailuser",)}
    assert facts.commands == {"postconf", "systemctl"}
    assert facts.ssh_client_address == "10.77.1.1"
    assert facts.postfix_version == "3.7.11"


def test_el6_without_os_release_is_detected_from_redhat_release():
    facts = parse_all(SPEC, sections("el6-redhat-release.txt"))
    assert facts.os.id == "centos" and facts.os.version_id == "6.10"
    assert detect(facts.os) is EL6
    assert facts.services["postfix"].enabled and facts.services["postfix"].active
    assert not facts.services["saslauthd"].enabled and facts.services["saslauthd"].exists
    assert not facts.services["sendmail"].exists


@pytest.mark.parametrize(
    "text,platform",
    [
        ('ID="rocky"\nVERSION_ID="9.3"\nID_LIKE="rhel centos fedora"\n---\n', EL9),
        ('ID=debian\nVERSION_ID="13"\n---\n', DEBIAN13),
        ('ID=debian\nVERSION_ID="12"\n---\n', DEBIAN12),
        ('ID="centos"\nVERSION_ID="7"\nID_LIKE="rhel fedora"\n---\n', EL7),
        ('ID=ubuntu\nVERSION_ID="22.04"\nID_LIKE=debian\n---\n', DEBIAN12),
        ('ID="almalinux"\nVERSION_ID="8.9"\nID_LIKE="rhel centos fedora"\n---\n', EL8),
    ],
)
def test_platform_detection(text, platform):
    assert detect(parse_os_release(text)) is platform


def test_unknown_os_is_refused_with_its_name():
    with pytest.raises(UnsupportedPlatform, match="'arch'"):
        detect(OsRelease(id="arch"))


def test_removed_but_not_purged_package_is_not_installed():
    assert parse_packages("sendmail-bin\trc \t8.17\npostfix\tii \t3.7\n") == {"postfix": "3.7"}


def test_rpm_not_installed_lines_are_ignored():
    assert parse_packages("package sendmail is not installed\npostfix\tii\t2.10.1-9.el7\n") == {"postfix": "2.10.1-9.el7"}


def test_sysv_generated_service_is_enabled_only_with_its_start_link():
    services = parse_services("saslauthd\tgenerated\tinactive\t-\nother\tgenerated\tactive\tS\n")
    assert not services["saslauthd"].enabled
    assert services["other"].enabled and services["other"].active


def test_file_content_round_trips_bytes_exactly():
    import base64

    content = "a = b\n\ttab continuation\n# ünïcode\n"
    line = "F\t/x\t600\troot\troot\t1\tdead\t" + base64.b64encode(content.encode()).decode()
    assert parse_files(line)["/x"].content == content


def test_accounts_parse_members_and_supplementary_groups():
    users, groups = parse_accounts("U\talice\talice mail_login\nG\tmail_login:x:1001:alice,bob\nG\tempty:x:1002:\n")
    assert users["alice"].groups == ("alice", "mail_login")
    assert groups == {"mail_login": ("alice", "bob"), "empty": ()}


def test_script_quotes_every_name_and_output_is_split_by_boundary():
    spec = FactSpec(files=("/etc/it's here",), users=("a;rm -rf /",))
    script = build_script(core_probes(spec), "@@X")
    assert "'/etc/it'\"'\"'s here'" in script
    assert "'a;rm -rf /'" in script
    with pytest.raises(FactError):
        split_output("@@X os\nID=debian\n", "@@X")  # cut short: no end marker


def test_extra_probe_output_goes_to_its_parser():
    probe = Probe("x_probe", "echo hi", lambda text: text.strip().upper())
    spec = FactSpec(extra=(probe,))
    out = "\n@@B x_probe\nhi\n\n@@B end\n"
    assert parse_all(spec, split_output(out, "@@B")).extra == {"x_probe": "HI"}


@pytest.mark.parametrize("os_id,version", [("debian", "11"), ("ubuntu", "20.04"), ("debian", "14")])
def test_debian_family_releases_no_platform_models_are_refused(os_id, version):
    with pytest.raises(UnsupportedPlatform, match=f"{os_id} {version}: the Debian family needs Debian 12 or 13"):
        detect(OsRelease(id=os_id, version_id=version))


@pytest.mark.parametrize(
    "os, reason",
    [
        (OsRelease("rocky", "10.0", ("rhel", "centos", "fedora")), "built without Berkeley DB"),
        (OsRelease("almalinux", "10", ("rhel", "centos", "fedora")), "built without Berkeley DB"),
        (OsRelease("ubuntu", "24.04", ("debian",)), "no platform models Ubuntu after 22.04"),
        (OsRelease("fedora", "40"), "supported are Debian 12 and 13"),
    ],
)
def test_releases_known_to_differ_are_refused_with_the_reason(os, reason):
    with pytest.raises(UnsupportedPlatform, match=f"{os.id}.*{reason}"):
        detect(os)


def test_the_fact_script_output_leaves_in_one_write():
    # Probes that print a little at a time, with pauses: sshd would send each piece as a packet of its own.
    slow = [Probe(f"p{i}", f"printf 'line {i}\\n'; sleep 0.05; printf 'more {i}\\n'", str) for i in range(4)]
    script = build_script(slow, "BOUNDARY")
    proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE)
    reads = []
    while chunk := os.read(proc.stdout.fileno(), 1 << 20):
        reads.append(chunk)
    assert proc.wait() == 0
    assert len(reads) == 1
    sections = split_output(b"".join(reads).decode(), "BOUNDARY")
    assert sections["p2"] == "line 2\nmore 2\n" and "end" in sections


@pytest.mark.parametrize("dd", ["dd() { return 1; }", "dd() { return 127; }"])
def test_without_a_dd_that_can_the_output_still_comes_whole(dd):
    # A dd that refuses iflag=fullblock (or none at all): cat passes the output on as it comes.
    script = build_script([Probe("p", "printf 'a\\nb\\n'", str)], "BOUNDARY")
    out = subprocess.run(["sh", "-c", f"{dd}\n{script}"], capture_output=True, text=True, check=True).stdout
    assert split_output(out, "BOUNDARY")["p"] == "a\nb\n"
