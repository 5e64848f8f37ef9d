"""Every main.cf key and master.cf ``-o`` option the desired state writes fits the platform's Postfix.

A parameter that a Postfix version does not know is ignored by it (2.6 does not
even warn), so a setting that looks applied may do nothing: on EL6 there is no
``tls_preempt_cipherlist``. A value in syntax that came later is worse: Postfix
2.6.6 before Red Hat's 2.6.6-8.el6 disables TLS on ``!TLSv1.1`` (an unknown
protocol name), Postfix < 3.6 rejects ``>=TLSv1.2``, and Postfix 3.5 refuses to
start on ``compatibility_level = 3.6`` (an integer parameter there). A key a
newer Postfix deprecated warns on every start (``smtpd_tls_dh1024_param_file``
from 3.9).

What each platform ships is the platforms' own data: ``Platform.postfix`` lists
every Postfix build of the platform's releases, with the TLS protocol names and
map types it knows (provisioner/platforms). Parameter names:
tests/data/postfix-params/<version>.txt (see the README there).

The desired state is computed for each platform with the default vars, the
lab's vars, and variants that switch on every optional key (an uploaded CA,
smtps). EL6 hosts with a Postfix older than 2.6.6-8.el6 are the platform's
package floor: the recorded cases packages/el6-postfix-before-tls12 and
main_cf/el6-postfix-before-tls12 hold what happens there.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

from provisioner.desired import KEY_RELEASES, main_cf_settings
from provisioner.platforms import ALL, EL6, Platform
from provisioner.platforms.postfix import PostfixBuild, version_tuple
from provisioner.steps.master_cf import desired_tokens
from provisioner.vars import MailVars
from tooling.lab.inventory import LAB_GROUP_VARS

PARAMS = Path(__file__).resolve().parent.parent / "data" / "postfix-params"
# Builds whose own list is not stored, and the list that holds their names: 3.5.8's
# mail_params.h has the names of 3.5.9's but dnssec_probe, which nothing here writes.
LIST_OF = {"3.5.8": "3.5.9"}
# Deprecated parameters a version still lists (postconf -d) but warns about.
DEPRECATED = {key: since for key, (_, since) in KEY_RELEASES.items() if since is not None}

SHIPPED = [(platform, build) for platform in ALL for build in platform.postfix]


def label(platform: Platform, build: PostfixBuild) -> str:
    return f"{platform.name} ({build.version})"


BASE = {"myhostname": "mail.example.com", "mydomain": "example.com"}
VARS = {
    "default vars": BASE,
    "lab vars": {**LAB_GROUP_VARS, "verify_credentials_file": "/nonexistent", "myhostname": "lab1.example.test"},
    "uploaded certificate with CA": {**BASE, "tls_cert": "c.pem", "tls_key": "k.pem", "tls_ca": "ca.pem"},
    "combined file with CA, smtps": {**BASE, "tls_combined": "all.pem", "tls_ca": "ca.pem", "smtps": True},
}


@lru_cache(maxsize=None)
def known_parameters(version: str) -> frozenset[str]:
    """The header-derived list plus its capitalised names, or a postconf-derived list (which has both)."""
    version = LIST_OF.get(version, version)
    names = set((PARAMS / f"{version}.txt").read_text().split())
    mixed = PARAMS / f"{version}.mixed-case.txt"
    if mixed.exists():
        names |= set(mixed.read_text().split())
    return frozenset(names)


def written_settings(platform: Platform, vars: dict) -> dict[str, str]:
    """main.cf keys the desired state writes (None means 'removed': not written), then master.cf -o options."""
    mail_vars = MailVars.model_validate(vars)
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


def syntax_problems(build: PostfixBuild, key: str, value: str) -> list[str]:
    """Values whose syntax or names that Postfix cannot read, and keys it deprecated."""
    problems = []
    version = build.number
    if key.endswith("_protocols"):
        for token in (t for t in re.split(r"[\s,:]+", value) if t):
            if token[:2] in (">=", "<="):
                if version < (3, 6):
                    problems.append(f"{key} = {value}: '{token}' needs Postfix 3.6 or later")
                token = token[2:]
            name = token.lstrip("!")
            if not re.fullmatch(r"0x[0-9a-fA-F]+", name) and name not in build.tls_protocols:
                problems.append(f"{key} = {value}: protocol {name!r} unknown to this Postfix (TLS gets disabled)")
    if key == "compatibility_level":
        if version < (3, 0):
            problems.append("compatibility_level needs Postfix 3.0 or later")
        elif "." in value and version < (3, 6):
            problems.append(f"compatibility_level = {value}: a release-style level needs Postfix 3.6 or later")
        elif "." not in value and not value.isdigit():
            problems.append(f"compatibility_level = {value}: not a level")
    for map_type in re.findall(r"(?<![\w$])([a-z]+):/", value):
        if map_type not in build.map_types:
            problems.append(f"{key} = {value}: map type {map_type!r} not built into this Postfix")
    if key in DEPRECATED and version >= DEPRECATED[key]:
        problems.append(f"{key} is deprecated in Postfix {build.version} (a warning at every start)")
    return problems


ROWS = [
    pytest.param(platform, build, vars, id=f"{label(platform, build)}, {vars_label}")
    for platform, build in SHIPPED
    for vars_label, vars in VARS.items()
]


@pytest.mark.parametrize("platform, build, vars", ROWS)
def test_every_key_is_known_to_the_platforms_postfix(platform: Platform, build: PostfixBuild, vars: dict) -> None:
    known = known_parameters(build.version)
    unknown = [name for name in written_settings(platform, vars) if key_of(name) not in known]
    assert unknown == [], f"unknown to Postfix {build.version}"


@pytest.mark.parametrize("platform, build, vars", ROWS)
def test_every_value_is_in_syntax_the_platforms_postfix_reads(platform: Platform, build: PostfixBuild,
                                                             vars: dict) -> None:
    problems = [
        problem
        for name, value in written_settings(platform, vars).items()
        for problem in syntax_problems(build, key_of(name), value)
    ]
    assert problems == []


@pytest.mark.parametrize("platform, build", [pytest.param(p, b, id=label(p, b)) for p, b in SHIPPED])
def test_every_build_has_its_parameter_list(platform: Platform, build: PostfixBuild) -> None:
    assert (PARAMS / f"{LIST_OF.get(build.version, build.version)}.txt").exists()
    assert build.origin, "a build says where its facts come from"


def test_key_releases_agree_with_the_parameter_lists():
    """The introduced-in releases the desired state relies on are where the lists put them."""
    lists = sorted({LIST_OF.get(b.version, b.version) for _, b in SHIPPED}, key=version_tuple)
    for key, (first, _) in KEY_RELEASES.items():
        for version in lists:
            assert (key in known_parameters(version)) == (version_tuple(version) >= first), (key, version)


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
    build = next(b for _, b in SHIPPED if b.version == version)
    problems = syntax_problems(build, key, value)
    assert len(problems) == 1 and problem in problems[0]


def test_syntax_check_catches_a_deprecated_key():
    trixie = next(b for _, b in SHIPPED if b.version == "3.10.13")
    assert "deprecated" in syntax_problems(trixie, "smtpd_tls_dh1024_param_file", "/etc/postfix/tls/ffdhe2048.pem")[0]


def test_syntax_check_accepts_what_each_version_reads():
    debian = next(b for _, b in SHIPPED if b.version == "3.7.11")
    el6 = EL6.postfix[0]
    assert syntax_problems(debian, "smtpd_tls_protocols", ">=TLSv1.2") == []
    assert syntax_problems(debian, "compatibility_level", "3.6") == []
    assert syntax_problems(debian, "smtpd_tls_dh1024_param_file", "/etc/postfix/tls/ffdhe2048.pem") == []
    assert syntax_problems(el6, "smtpd_tls_mandatory_protocols", "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1") == []
    assert syntax_problems(el6, "virtual_alias_maps", "hash:/etc/postfix/virtual_users") == []
    assert syntax_problems(el6, "smtpd_recipient_restrictions", "permit_sasl_authenticated, reject") == []
