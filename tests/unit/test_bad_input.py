"""Issue 8 acceptance: every bad input is refused in one line, before any host is touched.

Each case of the table is one careless, malformed or hostile input: an
inventory, a credentials file, a command-line argument or an ssh config. It is
run through the real CLI (invoke's Program with the project's tasks) and must
give exit status 1, exactly one line of output naming the file, host or key,
no traceback, and no connection attempt: the guard of tests/guard/noconnect.py
(an audit hook) refuses and records every socket connect, name lookup, program
start and the transport's own "open" event. Time and memory are bounded: a
SIGALRM timer and RLIMIT_AS around each case.

Every case runs in this process (fast); the cases marked ``cli`` also run as a
real ``python -m invoke`` subprocess whose sitecustomize installs the guard in
its hard form (the process ends with status 97 at the first attempt). Two
control tests prove that the guard trips when a valid inventory reaches the
transport.
"""

from __future__ import annotations

import copy
import os
import resource
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GUARD = REPO / "tests" / "guard"
sys.path.insert(0, str(GUARD))
sys.path.insert(0, str(REPO))

import noconnect  # noqa: E402

CASE_SECONDS = 20
CASE_MEMORY = 512 << 20  # bytes of address space a case may add
CLI_MEMORY = 1 << 30  # address space of a CLI subprocess

BASE = {
    "defaults": {
        "key": "id_ed25519",
        "known_hosts": "known_hosts",
        "ssh_config": "ssh_config",
        "vars": {"mydomain": "example.com", "verify_credentials_file": "creds.yaml"},
    },
    "groups": {"mail": {"hosts": ["mail1"], "vars": {"mail_users": ["alice"]}}},
    "hosts": {"mail1": {"address": "192.0.2.25", "vars": {"myhostname": "mail1.example.com"}}},
}
CREDS = 'mail1: {user: alice, password: "s3cret-pw", outsider_user: bob, outsider_password: "other-pw"}\n'
FILES: dict[str, tuple[str | bytes, int]] = {
    "id_ed25519": ("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n-----END OPENSSH PRIVATE KEY-----\n", 0o600),
    "known_hosts": ("", 0o644),
    "ssh_config": ("", 0o644),
    "creds.yaml": (CREDS, 0o600),
}
PROVISION = ("provision", "-i", "{inv}", "--host", "mail1")
BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([prev] * 9)}]\n"
    for name, prev in zip("abcdefghi", ['"lol"', "*a", "*b", "*c", "*d", "*e", "*f", "*g", "*h"])
) + "hosts: *i\n"


@dataclass(frozen=True)
class Case:
    name: str
    expect: tuple[str, ...]  # in the error line; {inv}: the inventory's path, {dir}: the case's directory
    inventory: Callable[[dict], None] | str | bytes | None = None  # mutates BASE, or the raw file
    args: tuple[str, ...] = PROVISION
    files: dict[str, tuple[str | bytes, int]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    cli: bool = False  # also through a real CLI subprocess


def _host(data: dict) -> dict:
    return data["hosts"]["mail1"]


def _vars(data: dict) -> dict:
    return data["hosts"]["mail1"]["vars"]


def inv(name: str, mutate: Callable[[dict], None], *expect: str, **kw) -> Case:
    return Case(name, ("{inv}", *expect), inventory=mutate, **kw)


def raw(name: str, text: str | bytes, *expect: str, **kw) -> Case:
    return Case(name, ("{inv}", *expect), inventory=text, **kw)


def var(name: str, key: str, value, *expect: str, **kw) -> Case:
    return inv(name, lambda d: _vars(d).__setitem__(key, value), *expect, **kw)


def creds(name: str, text: str | bytes, *expect: str, mode: int = 0o600, **kw) -> Case:
    return Case(name, ("{dir}/creds.yaml", *expect), files={"creds.yaml": (text, mode)}, **kw)


def ssh(name: str, config: str | bytes, *expect: str, mutate: Callable[[dict], None] | None = None, **kw) -> Case:
    return Case(name, expect, inventory=mutate, files={"ssh_config": (config, 0o644)}, **kw)


def cli(name: str, args: tuple[str, ...], *expect: str, **kw) -> Case:
    return Case(name, expect, args=args, **kw)


def _set(path: tuple, value) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value

    return mutate


def _delete(path: tuple) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


def _base_text(replace: tuple[str, str] | None = None) -> str:
    text = yaml.safe_dump(BASE, sort_keys=False)
    return text.replace(*replace) if replace else text


def _both(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        for m in mutations:
            m(data)

    return mutate


CASES = [
    # ---------------------------------------------------------------- inventory file
    Case("inventory missing", ("{dir}/nope.yaml", "inventory file not found"),
         args=("provision", "-i", "{dir}/nope.yaml", "--host", "mail1"), cli=True),
    Case("inventory is a directory", ("{dir}/inv.d", "is a directory"),
         args=("provision", "-i", "{dir}/inv.d", "--host", "mail1"), prepare=lambda d: (d / "inv.d").mkdir()),
    Case("inventory is a FIFO", ("{dir}/fifo.yaml", "not a regular file"),
         args=("check-inventory", "-i", "{dir}/fifo.yaml"), prepare=lambda d: os.mkfifo(d / "fifo.yaml")),
    Case("inventory unreadable", ("/proc/self/clear_refs", "cannot read the inventory"),
         args=("check-inventory", "-i", "/proc/self/clear_refs")),
    Case("inventory path through a file", ("{dir}/known_hosts/x.yaml", "cannot read the inventory"),
         args=("check-inventory", "-i", "{dir}/known_hosts/x.yaml")),
    raw("inventory not UTF-8", _base_text().encode().replace(b"example.com", b"exampl\xe9.com", 1), "not UTF-8", cli=True),
    raw("inventory larger than 1 MiB", "# padding\n" * 110_000 + _base_text(), "larger than 1024 KiB"),
    raw("inventory empty", "", "must be a mapping"),
    raw("inventory a list", "- mail1\n- mail2\n", "must be a mapping"),
    raw("malformed YAML", "hosts:\n  mail1:\n    address: [192.0.2.25\n", "malformed YAML"),
    raw("two YAML documents", _base_text() + "---\nhosts: {}\n", "single document"),
    raw("billion laughs", BILLION_LAUGHS, "more than 100000 YAML nodes", cli=True),
    raw("nested 100,000 levels", "hosts: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than 32 levels", cli=True),
    raw("recursive alias", "hosts: &h {mail1: *h}\n", "recursive alias"),
    raw("host defined twice", _base_text() + "  mail1:\n    address: 192.0.2.99\n", "duplicate key 'mail1'", cli=True),
    raw("hosts key twice", _base_text() + "hosts: {}\n", "duplicate key 'hosts'"),
    raw("var given twice", _base_text(("myhostname: mail1.example.com", "myhostname: a.example.com\n      myhostname: b.example.com")),
        "duplicate key 'myhostname'"),
    raw("python object tag", "hosts: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
    raw("NUL byte", _base_text().replace("mail1.example.com", "mail1\0.example.com"), "U+0000"),
    raw("escape sequence in a value", _base_text().replace("myhostname: mail1.example.com", 'myhostname: "\\e[31mmail1"'),
        "hosts.mail1.vars.myhostname", "U+001B"),
    raw("bidi override in a value", _base_text().replace("myhostname: mail1.example.com", 'myhostname: "mail1\\u202e.com"'),
        "U+202E"),
    # ---------------------------------------------------------------- names and structure
    raw("host name ending in a newline", _base_text().replace("  mail1:\n    address", '  "mail1\\n":\n    address'),
        "hosts.'mail1\\n'", "U+000A", cli=True),
    inv("host name with a space", lambda d: d["hosts"].__setitem__("mail 1", d["hosts"].pop("mail1")), "'mail 1'", "not a valid name"),
    inv("host name of 65 characters", lambda d: d["hosts"].__setitem__("m" * 65, d["hosts"].pop("mail1")), "not a valid name"),
    inv("host name starting with a dash", lambda d: d["hosts"].__setitem__("-mail1", d["hosts"].pop("mail1")), "'-mail1'"),
    inv("group name invalid", lambda d: d["groups"].__setitem__("mail/x", d["groups"].pop("mail")), "groups.'mail/x'"),
    inv("group named like a host", lambda d: d["groups"].__setitem__("mail1", {"hosts": []}), "groups.mail1", "share a host's name"),
    inv("group lists an unknown host", lambda d: d["groups"]["mail"]["hosts"].append("mail9"), "groups.mail.hosts", "'mail9'"),
    inv("group lists a host twice", lambda d: d["groups"]["mail"]["hosts"].append("mail1"), "groups.mail.hosts", "listed twice"),
    inv("unknown top-level key", _set(("hostz",), {}), "hostz: unknown key"),
    inv("unknown host key", _set(("hosts", "mail1", "prot"), 22), "hosts.mail1.prot: unknown key"),
    inv("address in defaults", _set(("defaults", "address"), "192.0.2.1"), "defaults.address: unknown key"),
    inv("hosts not a mapping", _set(("hosts",), ["mail1"]), "hosts: Input should be a valid dictionary"),
    inv("missing address", _delete(("hosts", "mail1", "address")), "hosts.mail1.address: required key is missing"),
    # ---------------------------------------------------------------- addresses, users, ports
    inv("address user conflicts with user:", _both(_set(("hosts", "mail1", "address"), "deploy@192.0.2.25"),
                                                    _set(("hosts", "mail1", "user"), "root")),
        "hosts.mail1.address", "gives user deploy", cli=True),
    inv("address port conflicts with port:", _both(_set(("hosts", "mail1", "address"), "192.0.2.25:2222"),
                                                    _set(("hosts", "mail1", "port"), 22)),
        "hosts.mail1.address", "gives port 2222"),
    inv("address with a space", _set(("hosts", "mail1", "address"), "mail 1.example.com"), "hosts.mail1.address", "not an IP address"),
    inv("address with an underscore", _set(("hosts", "mail1", "address"), "mail_1.example.com"), "hosts.mail1.address"),
    inv("address that resolvers read as IPv4", _set(("hosts", "mail1", "address"), "10.1"), "'10.1'", "not an IP address"),
    inv("address with a zone index", _set(("hosts", "mail1", "address"), "fe80::1%eth0"), "hosts.mail1.address"),
    inv("IPv4 address in brackets", _set(("hosts", "mail1", "address"), "[192.0.2.25]:22"), "only an IPv6 address"),
    inv("address port 0", _set(("hosts", "mail1", "address"), "192.0.2.25:0"), "port must be a number"),
    inv("address port 99999", _set(("hosts", "mail1", "address"), "192.0.2.25:99999"), "port must be a number"),
    inv("address port not a number", _set(("hosts", "mail1", "address"), "192.0.2.25:ssh"), "port must be a number"),
    inv("address empty", _set(("hosts", "mail1", "address"), ""), "hosts.mail1.address", "has no host"),
    inv("address user is an ssh option", _set(("hosts", "mail1", "address"), "-oProxyCommand=sh@192.0.2.25"),
        "hosts.mail1.address", "not a valid SSH user name"),
    inv("address a list", _set(("hosts", "mail1", "address"), ["192.0.2.25"]), "hosts.mail1.address", "valid string"),
    inv("user is an ssh option", _set(("hosts", "mail1", "user"), "-oProxyCommand=sh"), "hosts.mail1.user", "SSH user"),
    inv("user with a space", _set(("defaults", "user"), "de ploy"), "defaults.user", "SSH user"),
    inv("user empty", _set(("hosts", "mail1", "user"), ""), "hosts.mail1.user"),
    inv("port 0", _set(("hosts", "mail1", "port"), 0), "hosts.mail1.port"),
    inv("port 70000", _set(("hosts", "mail1", "port"), 70000), "hosts.mail1.port"),
    inv("port as a string", _set(("hosts", "mail1", "port"), "22"), "hosts.mail1.port", "valid integer"),
    inv("port as a boolean", _set(("hosts", "mail1", "port"), True), "hosts.mail1.port"),
    inv("sudo as a string", _set(("hosts", "mail1", "sudo"), "yes"), "hosts.mail1.sudo", "valid boolean"),
    inv("connect_timeout 0", _set(("defaults", "connect_timeout"), 0), "defaults.connect_timeout"),
    raw("connect_timeout infinite", _base_text().replace("defaults:\n", "defaults:\n  connect_timeout: .inf\n"),
        "defaults.connect_timeout"),
    raw("connect_timeout not a number", _base_text().replace("defaults:\n", "defaults:\n  connect_timeout: .nan\n"),
        "defaults.connect_timeout"),
    inv("command_timeout of 30 years", _set(("defaults", "command_timeout"), 1e9), "defaults.command_timeout"),
    # ---------------------------------------------------------------- local files the connection needs
    inv("key file missing", _set(("defaults", "key"), "nokey"), "defaults.key", "nokey does not exist", cli=True),
    inv("key file is a directory", _set(("hosts", "mail1", "key"), "."), "hosts.mail1.key", "is a directory"),
    Case("key file readable by others", ("{inv}", "defaults.key", "readable by others", "chmod 600"),
         files={"id_ed25519": ("key\n", 0o644)}),
    inv("known_hosts missing", _set(("defaults", "known_hosts"), "nothere"), "defaults.known_hosts", "does not exist"),
    inv("known_hosts is a directory", _set(("defaults", "known_hosts"), "."), "defaults.known_hosts", "is a directory"),
    # ---------------------------------------------------------------- vars
    inv("myhostname missing", lambda d: _vars(d).pop("myhostname"), "hosts.mail1.vars.myhostname: required key is missing"),
    var("myhostname with an underscore", "myhostname", "mail_1.example.com", "hosts.mail1.vars.myhostname", "DNS name"),
    var("myhostname numeric", "myhostname", "192.0.2.25", "hosts.mail1.vars.myhostname"),
    inv("mydomain with a space", _set(("defaults", "vars", "mydomain"), "example .com"), "defaults.vars.mydomain"),
    var("control_address not an IP", "control_address", "control.example.com", "hosts.mail1.vars.control_address"),
    var("unknown var", "mian_cf", {}, "hosts.mail1.vars.mian_cf: unknown key"),
    var("submission as a string", "submission", "yes", "hosts.mail1.vars.submission", "valid boolean"),
    var("self_signed_days 0", "self_signed_days", 0, "hosts.mail1.vars.self_signed_days"),
    var("firewall_when_missing unknown", "firewall_when_missing", "maybe", "hosts.mail1.vars.firewall_when_missing"),
    raw("main.cf key ending in a newline", _base_text().replace("myhostname: mail1.example.com",
                                                                 "myhostname: mail1.example.com\n      main_cf: {\"relayhost\\n\": x}"),
        "main_cf.'relayhost\\n'", "U+000A", cli=True),
    var("main.cf key with a space", "main_cf", {"smtpd tls": "x"}, "hosts.mail1.vars.main_cf", "'smtpd tls'"),
    var("main.cf key starting with a dash", "main_cf", {"-e": "x"}, "hosts.mail1.vars.main_cf", "Postfix parameter"),
    raw("main.cf value on two lines", _base_text().replace(
        "myhostname: mail1.example.com", "myhostname: mail1.example.com\n      main_cf:\n        relayhost: |\n          a\n          b"),
        "main_cf.relayhost", "U+000A"),
    var("main.cf value a number", "main_cf", {"smtpd_tls_loglevel": 1}, "hosts.mail1.vars.main_cf.smtpd_tls_loglevel"),
    var("main.cf secret not a string", "main_cf", {"relayhost": {"secret": 5}}, "hosts.mail1.vars.main_cf.relayhost"),
    var("main.cf secret with another key", "main_cf", {"relayhost": {"secret": "x", "note": "y"}},
        "hosts.mail1.vars.main_cf.relayhost", "one key is secret"),
    inv("mail_group sudo, exclusive", _both(_set(("hosts", "mail1", "vars", "mail_group"), "sudo"),
                                            _set(("hosts", "mail1", "vars", "exclusive_membership"), True)),
        "hosts.mail1.vars.mail_group", "'sudo' grants sudo", cli=True),
    var("mail_group wheel with mail_users", "mail_group", "wheel", "hosts.mail1.vars.mail_group", "'wheel'"),
    inv("mail_group adm, exclusive, from defaults", _both(_set(("defaults", "vars", "mail_group"), "adm"),
                                                          _set(("defaults", "vars", "exclusive_membership"), True)),
        "defaults.vars.mail_group", "'adm'"),
    var("mail_group systemd-journal", "mail_group", "systemd-journal", "'systemd-journal' reads the journal"),
    var("mail_group invalid name", "mail_group", "Mail Group", "hosts.mail1.vars.mail_group", "account name"),
    inv("mail_users with an option", _set(("groups", "mail", "vars", "mail_users"), ["-rf"]), "groups.mail.vars.mail_users"),
    var("root_alias a command", "root_alias", "|/bin/sh", "hosts.mail1.vars.root_alias"),
    var("alias key starting with #", "virtual_aliases", {"#info@example.com": "alice"},
        "hosts.mail1.vars.virtual_aliases", "'#info@example.com'", cli=True),
    var("alias key with a space", "virtual_aliases", {"in fo@example.com": "alice"}, "hosts.mail1.vars.virtual_aliases"),
    var("alias target a command", "virtual_aliases", {"info@example.com": "|/usr/bin/evil"}, "'|/usr/bin/evil'"),
    var("alias target empty", "virtual_aliases", {"info@example.com": " "}, "info@example.com has no destination"),
    raw("verify recipient with CRLF", _base_text().replace(
        "myhostname: mail1.example.com", 'myhostname: mail1.example.com\n      verify_foreign_recipient: "a@example.org\\r\\nRSET"'),
        "verify_foreign_recipient", "U+000D", cli=True),
    var("verify recipient with angle brackets", "verify_foreign_recipient", "a@example.org> NOTIFY=x <b@c.org",
        "hosts.mail1.vars.verify_foreign_recipient"),
    var("local delivery to a path", "verify_local_delivery", "../../etc/shadow@example.com",
        "hosts.mail1.vars.verify_local_delivery", "not a mail address", cli=True),
    inv("local delivery aliased to a path", _both(
        _set(("hosts", "mail1", "vars", "verify_local_delivery"), "info@example.com"),
        _set(("hosts", "mail1", "vars", "virtual_aliases"), {"info@example.com": "../../etc/shadow"})),
        "hosts.mail1.vars.virtual_aliases", "'../../etc/shadow'"),
    inv("local delivery to two mailboxes", _both(
        _set(("hosts", "mail1", "vars", "verify_local_delivery"), "info@example.com"),
        _set(("hosts", "mail1", "vars", "virtual_aliases"), {"info@example.com": "alice, bob"})),
        "verify_local_delivery", "2 destinations"),
    inv("local delivery to a mailbox that is no account", _set(("hosts", "mail1", "vars", "verify_local_delivery"),
                                                               "Info+tag@example.com"),
        "verify_local_delivery", "not a local account name"),
    inv("tls_cert missing", _both(_set(("hosts", "mail1", "vars", "tls_cert"), "nocert.pem"),
                                  _set(("hosts", "mail1", "vars", "tls_key"), "id_ed25519")),
        "hosts.mail1.vars.tls_cert", "nocert.pem does not exist"),
    inv("tls_cert a directory", _both(_set(("hosts", "mail1", "vars", "tls_cert"), "."),
                                      _set(("hosts", "mail1", "vars", "tls_key"), "id_ed25519")),
        "hosts.mail1.vars.tls_cert", "is a directory"),
    var("tls_cert without tls_key", "tls_cert", "known_hosts", "tls_cert and tls_key go together"),
    # ---------------------------------------------------------------- verify credentials
    creds("credentials missing", "", "not found", prepare=lambda d: (d / "creds.yaml").unlink(), cli=True),
    Case("credentials a directory", ("{dir}/creds.d", "is a directory"),
         inventory=_set(("defaults", "vars", "verify_credentials_file"), "creds.d"), prepare=lambda d: (d / "creds.d").mkdir(),
         cli=True),
    creds("credentials readable by others", CREDS, "readable by others", mode=0o644),
    creds("credentials not UTF-8", CREDS.encode().replace(b"alice", b"al\xffce"), "not UTF-8", cli=True),
    creds("credentials malformed", "mail1: {user: alice\n", "malformed YAML"),
    creds("credentials key twice", "user: a\nuser: b\n", "duplicate key 'user'"),
    creds("credentials unknown key", "mail1: {user: alice, pasword: x}\n", "mail1: unknown key 'pasword'"),
    creds("credentials password a number", "mail1: {user: alice, password: 0123, outsider_user: bob, outsider_password: x}\n",
          "mail1.password must be a string"),
    creds("credentials password a boolean", "mail1: {user: alice, password: yes, outsider_user: bob, outsider_password: x}\n",
          "mail1.password must be a string"),
    creds("credentials user with a space", 'mail1: {user: "al ice", password: x}\n', "mail1.user", "white space"),
    creds("credentials password with CRLF", 'mail1: {user: alice, password: "x\\r\\nQUIT"}\n', "mail1.password", "U+000D"),
    creds("credentials without the outsider", 'user: alice\npassword: "s3cret-pw"\n', "mail1", "no outsider_user"),
    creds("credentials a list", "- alice\n", "expected a mapping"),
    creds("credentials host entry a string", "mail1: alice\n", "mail1: expected a mapping"),
    creds("credentials billion laughs", BILLION_LAUGHS, "more than 100000 YAML nodes"),
    Case("credentials password from the environment with LF", ("PROVISIONER_VERIFY_PASSWORD", "U+000A"),
         env={"PROVISIONER_VERIFY_PASSWORD": "pw\nQUIT"}),
    # ---------------------------------------------------------------- command line
    cli("--forks abc", (*PROVISION, "--forks", "abc"), "--forks", "'abc'", cli=True),
    cli("--forks 0", (*PROVISION, "--forks", "0"), "--forks", "'0'"),
    cli("--forks -3", (*PROVISION, "--forks=-3"), "--forks", "'-3'"),
    cli("--forks 100000", (*PROVISION, "--forks", "100000"), "--forks", "1 to 256"),
    cli("--forks without a value", (*PROVISION, "--forks"), "forks", "needed value"),
    cli("--verify sometimes", (*PROVISION, "--verify", "sometimes"), "--verify", "auto, always, never"),
    cli("--verify always --no-verify", (*PROVISION, "--verify", "always", "--no-verify"), "--verify always",
        "contradict"),
    cli("--serial 0", (*PROVISION, "--serial", "0"), "--serial", "'0'"),
    cli("--serial 150%", (*PROVISION, "--serial", "150%"), "--serial", "1% to 100%"),
    cli("--max-fail -1", (*PROVISION, "--max-fail=-1"), "--max-fail", "'-1'"),
    cli("--json into a missing directory", (*PROVISION, "--json", "{dir}/no/report.json"), "{dir}/no/report.json", "does not exist",
        cli=True),
    cli("--json names a directory", (*PROVISION, "--json", "{dir}"), "--json names a directory"),
    cli("--json empty", (*PROVISION, "--json", ""), "--json: the path is empty"),
    cli("--json where nothing can be written", (*PROVISION, "--json", "/proc/report.json"), "/proc/report.json", "cannot write"),
    cli("--json under a file", (*PROVISION, "--json", "{dir}/known_hosts/report.json"), "is not a directory"),
    cli("facts --out names a directory", ("facts", "-i", "{inv}", "--host", "mail1", "--out", "{dir}"), "--out names a directory",
        cli=True),
    cli("facts --out into a missing directory", ("facts", "-i", "{inv}", "--host", "mail1", "--out", "{dir}/x/y.json"),
        "{dir}/x/y.json"),
    cli("unknown host", ("provision", "-i", "{inv}", "--host", "mail9"), "{inv}", "no host named 'mail9'"),
    cli("host name with a newline", ("provision", "-i", "{inv}", "--host", "mail1\n"), "no host named 'mail1\\n'"),
    cli("unknown group", ("provision", "-i", "{inv}", "--group", "web"), "no group named 'web'"),
    cli("no host chosen", ("provision", "-i", "{inv}"), "choose hosts with --host"),
    cli("unknown option", (*PROVISION, "--frks", "3"), "--frks"),
    cli("facts without --host", ("facts", "-i", "{inv}"), "'host'"),
    cli("verify with an unknown host", ("verify", "-i", "{inv}", "--host", "mail9"), "no host named 'mail9'"),
    cli("--inventory empty", ("provision", "-i", "", "--host", "mail1"), "--inventory: the path is empty"),
    # ---------------------------------------------------------------- ssh config
    Case("ssh config missing", ("{dir}/nossh", "ssh config file not found"),
         inventory=_set(("defaults", "ssh_config"), "nossh"), cli=True),
    Case("ssh config a directory", ("{dir}/sshd", "is a directory"),
         inventory=_set(("defaults", "ssh_config"), "sshd"), prepare=lambda d: (d / "sshd").mkdir()),
    ssh("ssh config not UTF-8", b"Host *\n  User \xff\n", "{dir}/ssh_config:2", "not UTF-8"),
    ssh("ssh config unparsable line", "Host *\n  ProxyJump\n", "{dir}/ssh_config:2", "cannot parse"),
    ssh("ssh config unbalanced quotes", 'Host "mail\n', "{dir}/ssh_config:1", "unbalanced quotes"),
    ssh("ProxyJump not a destination", "Host 192.0.2.25\n  ProxyJump user@@bastion\n", "{dir}/ssh_config:2",
        "'user@@bastion'", "mail1", cli=True),
    ssh("ProxyJump user is an option", "Host 192.0.2.25\n  ProxyJump -oProxyCommand=sh@bastion\n", "{dir}/ssh_config:2"),
    ssh("ProxyJump port 99999", "Host 192.0.2.25\n  ProxyJump bastion:99999\n", "{dir}/ssh_config:2", "99999"),
    ssh("ProxyJump loop", "Host *\n  ProxyJump bastion\n", "{dir}/ssh_config:2", "ProxyJump loop", "Host * !bastion", cli=True),
    ssh("ProxyJump hosts loop", "Host 192.0.2.25\n  ProxyJump a\nHost a\n  ProxyJump b\nHost b\n  ProxyJump a\n",
        "ProxyJump loop: 192.0.2.25 -> a -> b -> a"),
    ssh("ProxyCommand for the target", "Host 192.0.2.25\n  ProxyCommand nc %h %p\n", "{dir}/ssh_config:2",
        "ProxyCommand for 192.0.2.25 is not supported"),
    ssh("jump host HostName invalid", "Host 192.0.2.25\n  ProxyJump bastion\nHost bastion\n  HostName bad_name\n",
        "{dir}/ssh_config:4", "jump host bastion"),
    ssh("jump host Port invalid", "Host 192.0.2.25\n  ProxyJump bastion\nHost bastion\n  Port ssh\n", "{dir}/ssh_config:4",
        "jump host bastion"),
    ssh("Match exec deciding a route", "Match host 192.0.2.25 exec \"true\"\n  ProxyJump bastion\n",
        "{dir}/ssh_config:1", "Match exec"),
    ssh("Include nested without end", "Include {dir}/ssh_config\n", "Include nested deeper"),
    ssh("Include of a file that is not UTF-8", "Include {dir}/inc.conf\n", "{dir}/inc.conf", "not UTF-8",
        prepare=lambda d: (d / "inc.conf").write_bytes(b"Host \xff\n")),
    Case("proxy_jump in the inventory invalid", ("{inv}", "hosts.mail1.proxy_jump", "'bastion:0'"),
         inventory=_set(("hosts", "mail1", "proxy_jump"), "bastion:0")),
    Case("~/.ssh/config read by default, broken", ("{dir}/.ssh/config:1", "cannot parse"),
         inventory=_delete(("defaults", "ssh_config")), files={".ssh/config": ("=bad\n", 0o600)}, cli=True),
]


# ---------------------------------------------------------------------------- running a case


def _materialize(case: Case, tmp: Path) -> tuple[list[str], list[str]]:
    """Write the case's files into ``tmp``; return its argv and the texts its error line must hold."""
    for name, (content, mode) in {**FILES, **case.files}.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.replace("{dir}", str(tmp))
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        path.chmod(mode)
    if isinstance(case.inventory, (str, bytes)):
        text = case.inventory
    else:
        data = copy.deepcopy(BASE)
        if case.inventory is not None:
            case.inventory(data)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    (tmp / "hosts.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    if case.prepare:
        case.prepare(tmp)
    subst = {"{inv}": str(tmp / "hosts.yaml"), "{dir}": str(tmp)}

    def fill(text: str) -> str:
        for key, value in subst.items():
            text = text.replace(key, value)
        return text

    return [fill(a) for a in case.args], [fill(e) for e in case.expect]


def _environment(tmp: Path, case: Case) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_VERIFY_")}
    env.update({"HOME": str(tmp), **case.env})
    return env


class CaseTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise CaseTimeout(f"the case ran longer than {CASE_SECONDS}s")


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


def run_in_process(argv: list[str]) -> int:
    """The real CLI (invoke's Program and the project's tasks), in this process, bounded and guarded."""
    from invoke import Program

    import tasks

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + CASE_MEMORY
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        Program(namespace=tasks.ns, name="provisioner", binary="invoke").run(["invoke", *argv])
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _check(name: str, code: int, output: str, expect: list[str], attempts: list[str]) -> list[str]:
    problems = []
    lines = [line for line in output.splitlines() if line.strip()]
    if attempts:
        problems.append(f"connection attempted: {attempts}")
    if code != 1:
        problems.append(f"exit status {code}, not 1")
    if "Traceback" in output:
        problems.append("a traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines of output, not 1")
    elif missing := [e for e in expect if e not in lines[0]]:
        problems.append(f"the line does not name {missing}")
    return [f"{name}: {p}\n  output: {output[:500]!r}" for p in problems]


def test_the_table_is_big_enough():
    assert len(CASES) >= 80
    assert len({case.name for case in CASES}) == len(CASES)
    assert sum(case.cli for case in CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_in_one_line_before_any_host_is_touched(case, tmp_path, monkeypatch, capsys):
    args, expect = _materialize(case, tmp_path)
    for key in [k for k in os.environ if k.startswith("PROVISIONER_VERIFY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    attempts = noconnect.arm()
    try:
        code = run_in_process(args)
    except noconnect.ConnectionAttempted:
        code = -1
    finally:
        noconnect.disarm()
    out, err = capsys.readouterr()
    problems = _check(case.name, code, out + err, expect, list(attempts))
    assert not problems, "\n".join(problems)
    assert not (tmp_path / "no").exists()


def _run_cli(case: Case, tmp: Path) -> list[str]:
    args, expect = _materialize(case, tmp)
    record = tmp / "connection-attempts"
    env = _environment(tmp, case)
    env.update({"PYTHONPATH": str(GUARD), "NOCONNECT_RECORD": str(record)})

    def bound():
        resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))

    try:
        proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=CASE_SECONDS * 2, preexec_fn=bound)
    except subprocess.TimeoutExpired:
        return [f"{case.name}: no answer within {CASE_SECONDS * 2}s"]
    attempts = record.read_text().splitlines() if record.exists() else []
    return _check(case.name, proc.returncode, proc.stdout + proc.stderr, expect, attempts)


def test_the_real_cli_refuses_a_representative_set(tmp_path):
    """The cases marked cli, through ``python -m invoke`` with the guard in its hard form (exit 97)."""
    chosen = [case for case in CASES if case.cli]
    dirs = []
    for index, _ in enumerate(chosen):
        dirs.append(tmp_path / f"case{index}")
        dirs[-1].mkdir()
    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for found in pool.map(_run_cli, chosen, dirs) for p in found]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------- the guard itself


def test_the_guard_trips_in_process_when_a_valid_inventory_reaches_the_transport(tmp_path, monkeypatch, capsys):
    case = Case("valid", ())
    args, _ = _materialize(case, tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    attempts = noconnect.arm()
    try:
        with pytest.raises(noconnect.ConnectionAttempted):
            run_in_process([*args, "--dry-run"])
    finally:
        noconnect.disarm()
    assert attempts and attempts[0].startswith("provisioner.transport.open")
    capsys.readouterr()


def test_the_guard_refuses_a_raw_socket_connect():
    import socket

    attempts = noconnect.arm()
    try:
        with socket.socket() as sock, pytest.raises(noconnect.ConnectionAttempted):
            sock.connect(("127.0.0.1", 9))
    finally:
        noconnect.disarm()
    assert attempts and attempts[0].startswith("socket.connect")


def test_the_guard_ends_the_real_cli_when_a_valid_inventory_reaches_the_transport(tmp_path):
    case = Case("valid", ("never",), args=(*PROVISION, "--dry-run"))
    problems = _run_cli(case, tmp_path)
    assert any("connection attempted" in p and "provisioner.transport.open ('mail1',)" in p for p in problems), problems
    assert any("exit status 97" in p for p in problems), problems
