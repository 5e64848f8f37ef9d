"""Every main.cf key and master.cf ``-o`` option the desired state writes fits the platform's Postfix.

A parameter that a Postfix version does not know is ignored by it (2.6 does not
even warn), so a setting that looks applied may do nothing: on EL6 there is no
``tls_preempt_cipherlist``. A value in syntax that came later is worse: Postfix
2.6.6 before Red Hat's 2.6.6-8.el6 disables TLS on ``!TLSv1.1`` (an unknown
protocol name), Postfix < 3.6 rejects ``>=TLSv1.2``, and Postfix 3.5 refuses to
start on ``compatibility_level = 3.6`` (an integer parameter there).

Parameter names: tests/data/postfix-params/<version>.txt (every ``#define VAR_*``
name of that version's mail_params.h, copied from /work/shared/reference/el/postfix-params)
plus <version>.mixed-case.txt (the names with capitals, such as smtpd_tls_CAfile,
that the reference extraction dropped; from the same header). See the README there.

The desired state is computed for each platform as the product detects it from
os-release, with the default vars, the lab's vars, and variants that switch on
every optional key (an uploaded CA, smtps).

EL6 hosts with a Postfix older than 2.6.6-8.el6 are out of this test's reach: the
desired state does not depend on the package release; the recorded cases
packages/el6-postfix-before-tls12 and main_cf/el6-postfix-before-tls12 hold what must
happen there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

from provisioner.desired import main_cf_settings
from tooling.lab.inventory import LAB_GROUP_VARS
from provisioner.model import OsRelease
from provisioner.platforms import detect
from provisioner.steps.master_cf import desired_tokens
from provisioner.vars import MailVars

PARAMS = Path(__file__).resolve().parent.parent / "data" / "postfix-params"


@dataclass(frozen=True)
class Shipped:
    """One platform and the Postfix it ships."""

    label: str
    os: OsRelease
    version: str  # the postfix-params list that holds its parameter names
    protocols: frozenset[str]  # TLS protocol names its tls_protocol_mask() knows
    map_types: frozenset[str]  # lookup table types built in (postconf -m)


OLD_NAMES = frozenset({"SSLv2", "SSLv3", "TLSv1"})
TLS12_NAMES = OLD_NAMES | {"TLSv1.1", "TLSv1.2"}
TLS13_NAMES = TLS12_NAMES | {"TLSv1.3"}
BERKELEY_DB = frozenset({"hash", "btree"})

# The Postfix each platform ships.
# TODO(platforms): this table belongs in provisioner/platforms (the Postfix version,
# protocol names and map types of each platform, as data); move it there when the
# platforms carry it, and read it from there in this test.
SHIPPED = (
    # Debian 12 bookworm: postfix 3.7.11 (tests/data/hosts: postconf mail_version on the lab hosts).
    Shipped("debian12 (3.7.11)", OsRelease("debian", "12", ()), "3.7.11", TLS13_NAMES, BERKELEY_DB),
    # postfix-2.6.6-8.el6: el6/postfix/postfix.spec; TLSv1.1/TLSv1.2 from postfix-2.6.6-add-tlsv11-2.patch.
    Shipped("el6 (2.6.6-8.el6)", OsRelease("centos", "6.10", ("rhel",)), "2.6.6", TLS12_NAMES, BERKELEY_DB),
    # postfix-2.10.1-7.el7: el7/postfix/postfix.spec; upstream 2.10 knows TLSv1.1/TLSv1.2 (tls_misc.c).
    Shipped("el7 (2.10.1)", OsRelease("centos", "7", ("rhel", "fedora")), "2.10.1", TLS12_NAMES, BERKELEY_DB),
    # EL8 shipped 3.3.1 first (el8/postfix/postfix.spec), 3.5.8 in later minor releases: the 3.5.9
    # list is 3.5.8's plus dnssec_probe, which nothing here writes.
    Shipped("el8 (3.3.1)", OsRelease("rocky", "8.4", ("rhel", "centos", "fedora")), "3.3.1", TLS13_NAMES,
            BERKELEY_DB),
    Shipped("el8 (3.5.8)", OsRelease("rocky", "8.9", ("rhel", "centos", "fedora")), "3.5.9", TLS13_NAMES,
            BERKELEY_DB),
    # postfix-3.5.9: el9/postfix/postfix.spec.
    Shipped("el9 (3.5.9)", OsRelease("rocky", "9.3", ("rhel", "centos", "fedora")), "3.5.9", TLS13_NAMES,
            BERKELEY_DB),
)

BASE = {"myhostname": "mail.example.com", "mydomain": "example.com"}
VARS = {
    "default vars": BASE,
    "lab vars": {**LAB_GROUP_VARS, "verify_credentials_file": "/nonexistent", "myhostname": "lab1.example.test"},
    "uploaded certificate with CA": {**BASE, "tls_cert": "c.pem", "tls_key": "k.pem", "tls_ca": "ca.pem"},
    "combined file with CA, smtps": {**BASE, "tls_combined": "all.pem", "tls_ca": "ca.pem", "smtps": True},
}


@lru_cache(maxsize=None)
def known_parameters(version: str) -> frozenset[str]:
    names = set((PARAMS / f"{version}.txt").read_text().split())
    names |= set((PARAMS / f"{version}.mixed-case.txt").read_text().split())
    return frozenset(names)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def written_settings(shipped: Shipped, vars: dict) -> dict[str, str]:
    """main.cf keys the desired state writes (None means 'removed': not written), then master.cf -o options."""
    mail_vars = MailVars.model_validate(vars)
    platform = detect(shipped.os)
    settings = {k: v for k, v in main_cf_settings(mail_vars, platform).items() if v is not None}
    for port, on in (("587", mail_vars.submission), ("465", mail_vars.smtps)):
        if not on:
            continue
        tokens = desired_tokens(port, platform)
        for flag, option in zip(tokens[8:], tokens[9:]):
            if flag == "-o":
                key, _, value = option.partition("=")
                settings[f"master.cf {port} -o {key}"] = value
    return settings


def key_of(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def syntax_problems(shipped: Shipped, key: str, value: str) -> list[str]:
    """Values whose syntax or names that Postfix cannot read."""
    problems = []
    version = version_tuple(shipped.version)
    if key.endswith("_protocols"):
        for token in (t for t in re.split(r"[\s,:]+", value) if t):
            if token[:2] in (">=", "<="):
                if version < (3, 6):
                    problems.append(f"{key} = {value}: '{token}' needs Postfix 3.6 or later")
                token = token[2:]
            name = token.lstrip("!")
            if not re.fullmatch(r"0x[0-9a-fA-F]+", name) and name not in shipped.protocols:
                problems.append(f"{key} = {value}: protocol {name!r} unknown to this Postfix (TLS gets disabled)")
    if key == "compatibility_level":
        if version < (3, 0):
            problems.append("compatibility_level needs Postfix 3.0 or later")
        elif "." in value and version < (3, 6):
            problems.append(f"compatibility_level = {value}: a release-style level needs Postfix 3.6 or later")
        elif "." not in value and not value.isdigit():
            problems.append(f"compatibility_level = {value}: not a level")
    for map_type in re.findall(r"(?<![\w$])([a-z]+):/", value):
        if map_type not in shipped.map_types:
            problems.append(f"{key} = {value}: map type {map_type!r} not built into this Postfix")
    return problems


KNOWN_KEY_BUGS = {
    "el6 (2.6.6-8.el6)": "the desired state writes tls_preempt_cipherlist, which Postfix 2.6 does not know "
    "(postfix-params/2.6.6.txt): it has no effect there",
}


def _rows(bugs: dict[str, str]):
    for shipped in SHIPPED:
        for vars_label, vars in VARS.items():
            marks = [pytest.mark.xfail(reason=bugs[shipped.label], strict=True)] if shipped.label in bugs else []
            yield pytest.param(shipped, vars, marks=marks, id=f"{shipped.label}, {vars_label}")


@pytest.mark.parametrize("shipped, vars", list(_rows(KNOWN_KEY_BUGS)))
def test_every_key_is_known_to_the_platforms_postfix(shipped: Shipped, vars: dict) -> None:
    known = known_parameters(shipped.version)
    unknown = [name for name in written_settings(shipped, vars) if key_of(name) not in known]
    assert unknown == [], f"unknown to Postfix {shipped.version}"


@pytest.mark.parametrize("shipped, vars", list(_rows({})))
def test_every_value_is_in_syntax_the_platforms_postfix_reads(shipped: Shipped, vars: dict) -> None:
    problems = [
        problem
        for name, value in written_settings(shipped, vars).items()
        for problem in syntax_problems(shipped, key_of(name), value)
    ]
    assert problems == []


# ------------------------------------------------------------------ the checks themselves


def test_parameter_lists_hold_what_each_version_introduced():
    """The lists are the versions they claim to be (landmarks from the Postfix release notes)."""
    assert "smtpd_relay_restrictions" not in known_parameters("2.6.6")  # 2.10
    assert "smtpd_relay_restrictions" in known_parameters("2.10.1")
    assert "tls_preempt_cipherlist" not in known_parameters("2.6.6")  # 2.8
    assert "tls_preempt_cipherlist" in known_parameters("2.10.1")
    assert "compatibility_level" not in known_parameters("2.10.1")  # 3.0
    assert "compatibility_level" in known_parameters("3.3.1")
    assert "smtpd_forbid_bare_newline" not in known_parameters("3.5.9")  # 3.7.10 (smuggling fix)
    assert "smtpd_forbid_bare_newline" in known_parameters("3.7.11")
    assert {"smtpd_tls_CAfile", "smtpd_tls_CApath"} <= known_parameters("2.6.6")


@pytest.mark.parametrize(
    "version, key, value, problem",
    [
        ("3.5.9", "smtpd_tls_protocols", ">=TLSv1.2", "needs Postfix 3.6"),
        ("2.6.6", "smtpd_tls_protocols", "!SSLv2, !TLSv1.3", "'TLSv1.3' unknown"),
        ("2.10.1", "compatibility_level", "2", "needs Postfix 3.0"),
        ("3.5.9", "compatibility_level", "3.6", "needs Postfix 3.6"),
        ("3.7.11", "alias_maps", "lmdb:/etc/aliases", "map type 'lmdb'"),
    ],
)
def test_syntax_check_catches(version, key, value, problem):
    shipped = next(s for s in SHIPPED if s.version == version)
    problems = syntax_problems(shipped, key, value)
    assert len(problems) == 1 and problem in problems[0]


def test_syntax_check_accepts_what_each_version_reads():
    debian = SHIPPED[0]
    el6 = SHIPPED[1]
    assert syntax_problems(debian, "smtpd_tls_protocols", ">=TLSv1.2") == []
    assert syntax_problems(debian, "compatibility_level", "3.6") == []
    assert syntax_problems(el6, "smtpd_tls_mandatory_protocols", "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1") == []
    assert syntax_problems(el6, "virtual_alias_maps", "hash:/etc/postfix/virtual_users") == []
    assert syntax_problems(el6, "smtpd_recipient_restrictions", "permit_sasl_authenticated, reject") == []
