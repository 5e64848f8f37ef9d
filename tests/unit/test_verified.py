"""--verify auto: the digest of the managed state (what changes it, what does not), the record, the decision."""

from __future__ import annotations

import dataclasses

import pytest

from provisioner.arguments import parse_verify_mode
from provisioner.desired import MAIN_CF, TLS_KEY, VERIFIED_MARKER
from provisioner.engine.verified import (
    VerifyRecord,
    decide,
    parse_record,
    record_script,
    render_record,
    state_digest,
)
from provisioner.model import FileState, ServiceState
from provisioner.steps.firewall.state import PROBE as FIREWALL
from provisioner.validation import InputError

from .conftest import lab_vars, recorded_host

SCOPE = {"address": "10.200.1.2", "ports": [25, 587], "myhostname": "lab1.example.test", "user": "mailuser",
         "outsider_user": "outsider", "foreign_recipient": "relay-test@example.invalid", "local_delivery": None}


@pytest.fixture(scope="module")
def converged():
    return recorded_host("debian12-converged.json", lab_vars())


def digest(facts, platform="debian12", scope=SCOPE):
    return state_digest(facts, platform, scope, ignore_probes=("run_in_progress",))


def with_file(facts, path, **changes):
    return facts.with_file(dataclasses.replace(facts.file(path), **changes))


def test_the_digest_is_stable_for_the_same_state(converged):
    assert digest(converged) == digest(converged)
    assert len(digest(converged)) == 64


@pytest.mark.parametrize("drift", [
    pytest.param(lambda f: with_file(f, MAIN_CF, sha256="0" * 64, content="x"), id="main.cf content"),
    pytest.param(lambda f: with_file(f, MAIN_CF, mode="666"), id="main.cf mode"),
    pytest.param(lambda f: with_file(f, MAIN_CF, owner="nobody"), id="main.cf owner"),
    pytest.param(lambda f: with_file(f, TLS_KEY, sha256="1" * 64), id="the key's digest"),
    pytest.param(lambda f: with_file(f, "/etc/pam.d/smtp", exists=False, sha256=None), id="a managed file gone"),
    pytest.param(lambda f: f.replace(packages={**f.packages, "postfix": "9.9.9-1"}), id="a package upgraded"),
    pytest.param(lambda f: f.replace(postfix_version="3.99.0"), id="the postfix version"),
    pytest.param(lambda f: f.replace(services={**f.services, "saslauthd": ServiceState("saslauthd", True, False)}),
                 id="saslauthd stopped"),
    pytest.param(lambda f: f.replace(services={**f.services, "postfix": ServiceState("postfix", False, True)}),
                 id="postfix disabled at boot"),
    pytest.param(lambda f: f.replace(groups={**f.groups, "mail_login": ("mailuser", "intruder")}),
                 id="a member added to the mail group"),
    pytest.param(lambda f: f.replace(extra={**f.extra, "services_processes": frozenset({"master"})}),
                 id="saslauthd's daemon gone"),
    pytest.param(lambda f: f.replace(extra={**f.extra, FIREWALL: dataclasses.replace(
        f.extra[FIREWALL], tools=f.extra[FIREWALL].tools | {"firewall-cmd"})}), id="the firewall state"),
    pytest.param(lambda f: f.replace(os=dataclasses.replace(f.os, version_id="13")), id="the release"),
])
def test_drift_that_could_break_mail_changes_the_digest(converged, drift):
    assert digest(drift(converged)) != digest(converged)


@pytest.mark.parametrize("scope_change", [
    {"address": "10.200.9.2"}, {"ports": [25, 587, 465]}, {"myhostname": "other.example.test"},
    {"user": "someone"}, {"outsider_user": "someone"}, {"local_delivery": "root@lab1.example.test"},
])
def test_what_verify_checks_changes_the_digest(converged, scope_change):
    assert digest(converged, scope={**SCOPE, **scope_change}) != digest(converged)


def test_the_platform_changes_the_digest(converged):
    assert digest(converged, platform="debian13") != digest(converged)


def test_what_cannot_change_mail_leaves_the_digest_alone(converged):
    same = with_file(converged, MAIN_CF, mtime=12345)  # a touch
    same = same.replace(ssh_client_address="10.9.9.9")  # another control node
    same = with_file(same, VERIFIED_MARKER, content=render_record(VerifyRecord("a" * 64, "2026-01-01T00:00:00Z")),
                     sha256="f" * 64, mode="600")  # the record itself
    same = same.replace(extra={**same.extra, "run_in_progress": {"run_id": "x"}})
    assert digest(same) == digest(converged)


def test_sets_are_digested_in_any_order(converged):
    a = converged.replace(commands=frozenset(["postconf", "nft", "script"]))
    b = converged.replace(commands=frozenset(["script", "postconf", "nft"]))
    assert digest(a) == digest(b)


def test_the_record_round_trips_and_holds_no_secret():
    record = VerifyRecord("ab" * 32, "2026-12-01T14:30:00Z", "20261201T143000Z-1a2b3c")
    text = render_record(record)
    assert parse_record(text) == record
    assert text.startswith("verified by provisioner\n")
    script = record_script(record)
    assert "chmod 600" in script and "umask 077" in script
    assert "mv -f" in script  # written whole


@pytest.mark.parametrize("content", [None, "", "verified by provisioner\n", "state=short\nverified_at=x\n",
                                     "verified_at=2026-01-01T00:00:00Z\n", f"state={'g' * 64}\nverified_at=x\n"])
def test_a_marker_without_a_valid_record_is_no_record(content):
    assert parse_record(content) is None


RECORD = VerifyRecord("ab" * 32, "2026-12-01T14:30:00Z")


@pytest.mark.parametrize("mode,enabled,changed,record,digest_now,runs,reason", [
    ("auto", True, False, RECORD, "ab" * 32, False, "verified 2026-12-01T14:30:00Z, unchanged since"),
    ("auto", True, True, RECORD, "ab" * 32, True, "this run changed the host"),
    ("auto", True, False, None, "ab" * 32, True, "no passed verify is recorded on the host"),
    ("auto", True, False, RECORD, "cd" * 32, True, "the host changed since its last passed verify"),
    ("always", True, False, RECORD, "ab" * 32, True, "--verify always"),
    ("never", False, True, None, "ab" * 32, False, "--verify never"),
    ("auto", False, True, None, "ab" * 32, False, "verify: false in the inventory"),
    ("always", False, True, None, "ab" * 32, False, "verify: false in the inventory"),
])
def test_the_auto_decision(mode, enabled, changed, record, digest_now, runs, reason):
    decision = decide(mode, enabled, changed, record, digest_now)
    assert decision.run is runs
    assert decision.reason.startswith(reason)
    assert (decision.verified_at is not None) == (not runs and record is not None and enabled and mode == "auto")


@pytest.mark.parametrize("value,no_verify,mode", [
    ("auto", False, "auto"), ("always", False, "always"), ("never", False, "never"), ("AUTO", False, "auto"),
    ("auto", True, "never"), ("never", True, "never"), (True, False, "auto"), (False, False, "never"),
])
def test_verify_modes_from_the_command_line(value, no_verify, mode):
    assert parse_verify_mode(value, no_verify) == mode


@pytest.mark.parametrize("value,no_verify", [("sometimes", False), ("", False), ("always", True)])
def test_bad_verify_modes_are_one_line_errors(value, no_verify):
    with pytest.raises(InputError, match="--verify"):
        parse_verify_mode(value, no_verify)
