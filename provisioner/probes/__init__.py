"""Facts: what a host is, gathered in one batched remote script.

A Probe is one shell fragment plus a pure parser of its output, as in
pyinfra. All probes of a run are joined into one script with a random
boundary between their outputs, so the no-op run costs one round trip.
Parsers are unit-tested on recorded output (tests/data/facts/).
"""

from __future__ import annotations

import base64
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from provisioner.model import Facts, FileState, OsRelease, ServiceState, UserState

PREAMBLE = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH\n"
    "LC_ALL=C; export LC_ALL\n"
)


@dataclass(frozen=True)
class Probe:
    name: str
    script: str
    parse: Callable[[str], Any]


@dataclass(frozen=True)
class FactSpec:
    """What to ask a host: everything a plan may look at, for every family."""

    packages: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    secret_files: tuple[str, ...] = ()  # digest and attributes only, never content
    services: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    extra: tuple[Probe, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------ parsers


def parse_os_release(text: str) -> OsRelease:
    """/etc/os-release, or /etc/redhat-release on EL6 (after a '---' line)."""
    os_part, _, redhat = text.partition("---\n")
    values: dict[str, str] = {}
    for line in os_part.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    if values.get("ID"):
        return OsRelease(
            id=values["ID"].lower(),
            version_id=values.get("VERSION_ID", ""),
            id_like=tuple(values.get("ID_LIKE", "").lower().split()),
        )
    redhat = redhat.strip()
    if redhat:
        # "CentOS release 6.10 (Final)", "Red Hat Enterprise Linux Server release 6.9 (Santiago)"
        words = redhat.split()
        version = next((w for w in words if w[:1].isdigit()), "")
        lowered = redhat.lower()
        os_id = "centos" if "centos" in lowered else "rhel" if "red hat" in lowered else words[0].lower()
        return OsRelease(id=os_id, version_id=version, id_like=("rhel",))
    return OsRelease()


def parse_packages(text: str) -> dict[str, str]:
    """Lines of ``name<TAB>status<TAB>version`` from dpkg-query or rpm."""
    installed: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        name, status, version = parts
        if status.strip() == "ii":
            installed[name] = version
    return installed


def parse_files(text: str, secret: Iterable[str] = ()) -> dict[str, FileState]:
    secret = set(secret)
    files: dict[str, FileState] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if parts[0] == "A" and len(parts) >= 2:
            files[parts[1]] = FileState(path=parts[1])
        elif parts[0] == "F" and len(parts) >= 8:
            _, path, mode, owner, group, mtime, digest, payload = parts[:8]
            link = parts[8] if len(parts) > 8 and parts[8] else None
            content = None
            if path not in secret:
                content = base64.b64decode(payload).decode("utf-8", errors="surrogateescape")
            files[path] = FileState(
                path=path,
                exists=True,
                content=content,
                sha256=digest,
                mode=mode,
                owner=owner,
                group=group,
                mtime=int(mtime) if mtime.isdigit() else None,
                link_target=link,
            )
    return files


ENABLED_STATES = {"enabled", "enabled-runtime", "alias"}
MASKED_STATES = {"masked", "masked-runtime"}


def parse_services(text: str) -> dict[str, ServiceState]:
    """Lines of ``name<TAB>is-enabled<TAB>is-active<TAB>rc-link`` (systemd or sysv)."""
    services: dict[str, ServiceState] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4:
            continue
        name, enabled, active, rc_link = (p.strip() for p in parts)
        exists = not (enabled in ("", "not-found") and rc_link != "sysv" and active in ("", "inactive", "unknown"))
        is_enabled = enabled in ENABLED_STATES or (enabled in ("generated", "") and rc_link in ("S", "on"))
        services[name] = ServiceState(
            name=name, enabled=is_enabled, active=active == "active", exists=exists or enabled not in ("", "not-found"),
            masked=enabled in MASKED_STATES,
        )
    return services


def parse_accounts(text: str) -> tuple[dict[str, UserState], dict[str, tuple[str, ...]]]:
    """``U<TAB>user<TAB>groups...`` lines (from ``id -nG``) and getent group lines."""
    users: dict[str, UserState] = {}
    groups: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if line.startswith("U\t"):
            _, name, *rest = line.split("\t")
            users[name] = UserState(name=name, groups=tuple((rest[0] if rest else "").split()))
        elif line.startswith("G\t"):
            entry = line[2:]
            fields = entry.split(":")
            if len(fields) >= 4:
                members = tuple(m for m in fields[3].split(",") if m)
                groups[fields[0]] = members
    return users, groups


def parse_lines(text: str) -> frozenset[str]:
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def parse_first_line(text: str) -> str | None:
    stripped = text.strip()
    return stripped.splitlines()[0].strip() if stripped else None


# ------------------------------------------------------------------ probes


def _q(values: Iterable[str]) -> str:
    return " ".join(shlex.quote(v) for v in values)


def core_probes(spec: FactSpec) -> list[Probe]:
    secret = set(spec.secret_files)
    file_calls = "\n".join(
        f"_pf {shlex.quote(path)} {0 if path in secret else 1}" for path in (*spec.files, *spec.secret_files)
    )
    probes = [
        Probe(
            "os",
            "cat /etc/os-release 2>/dev/null; echo ---; cat /etc/redhat-release 2>/dev/null; true",
            parse_os_release,
        ),
        Probe(
            "packages",
            "if command -v dpkg-query >/dev/null 2>&1; then "
            f"dpkg-query -W -f='${{Package}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' {_q(spec.packages)} 2>/dev/null; "
            "elif command -v rpm >/dev/null 2>&1; then "
            f"rpm -q --qf '%{{NAME}}\\tii\\t%{{VERSION}}-%{{RELEASE}}\\n' {_q(spec.packages)} 2>/dev/null; fi; true",
            parse_packages,
        ),
        Probe(
            "files",
            # Through a symlink: the file it ends at (stat -L), and where that is (readlink -f).
            "_pf() { if [ -f \"$1\" ]; then "
            "printf 'F\\t%s\\t%s\\t' \"$1\" \"$(stat -L -c '%a\t%U\t%G\t%Y' \"$1\")\"; "
            "printf '%s\\t' \"$(sha256sum < \"$1\" | cut -d' ' -f1)\"; "
            "if [ \"$2\" = 1 ]; then base64 < \"$1\" | tr -d '\\n'; fi; "
            "if [ -L \"$1\" ]; then printf '\\t%s' \"$(readlink -f \"$1\")\"; fi; printf '\\n'; "
            "else printf 'A\\t%s\\n' \"$1\"; fi; }\n" + file_calls,
            lambda text: parse_files(text, secret),
        ),
        Probe(
            "services",
            # One is-active for every service (one line each, in order); no tail, no ls: on a converged host
            # this probe was most of the fact script's time, which the host pays on every run.
            "_nl=$(printf '\\n_'); _nl=${_nl%_}; _sd=; "
            "if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then _sd=1; "
            f"set -- $(systemctl is-active {_q(spec.services)} 2>/dev/null); fi; "
            f"for _s in {_q(spec.services)}; do "
            "if [ -n \"$_sd\" ]; then "
            "_a=${1:-}; if [ $# -gt 0 ]; then shift; fi; "
            "_e=$(systemctl is-enabled \"$_s\" 2>/dev/null); _e=${_e##*\"$_nl\"}; "
            "_l=-; for _f in /etc/rc2.d/S*\"$_s\"; do if [ -e \"$_f\" ]; then _l=S; fi; break; done; "
            "else "
            "_e=; _l=-; if [ -x \"/etc/init.d/$_s\" ]; then _l=sysv; "
            "chkconfig --list \"$_s\" 2>/dev/null | grep -q '3:on' && _l=on; fi; "
            "if [ -x \"/etc/init.d/$_s\" ] && \"/etc/init.d/$_s\" status >/dev/null 2>&1; then _a=active; else _a=inactive; fi; "
            "fi; printf '%s\\t%s\\t%s\\t%s\\n' \"$_s\" \"$_e\" \"$_a\" \"$_l\"; done",
            parse_services,
        ),
        Probe(
            "accounts",
            f"for _u in {_q(spec.users)}; do if id \"$_u\" >/dev/null 2>&1; then "
            "printf 'U\\t%s\\t%s\\n' \"$_u\" \"$(id -nG \"$_u\")\"; fi; done; "
            f"for _g in {_q(spec.groups)}; do _l=$(getent group \"$_g\") && printf 'G\\t%s\\n' \"$_l\"; done; true",
            parse_accounts,
        ),
        Probe(
            "commands",
            f"for _c in {_q(spec.commands)}; do command -v \"$_c\" >/dev/null 2>&1 && echo \"$_c\"; done; true",
            parse_lines,
        ),
        Probe("ssh_client", "printf '%s\\n' \"${SSH_CONNECTION%% *}\"", parse_first_line),
        Probe(
            "postfix_version",
            "command -v postconf >/dev/null 2>&1 && postconf -d -h mail_version 2>/dev/null; true",
            parse_first_line,
        ),
    ]
    return probes


# The output leaves the host in one write: sshd sends what each small write of the probes gives as an SSH
# packet of its own (about 110 for 18 KB), and paramiko's Python handles each one (0.12 ms of control-node
# CPU a packet, most of a fleet dry run's CPU per host). GNU dd (coreutils, on every supported platform)
# with iflag=fullblock reads to the end of the output, or 8 MiB, before it writes. Where dd cannot (another
# dd refuses the flag before it reads a byte), cat passes the output on as it comes: an unsupported host
# still gets its facts read, and the error that names its platform.
ONE_WRITE = "{ dd bs=8M iflag=fullblock 2>/dev/null || cat; }"


def build_script(probes: Iterable[Probe], boundary: str) -> str:
    parts = [PREAMBLE, "{\n"]
    for probe in probes:
        parts.append(f"printf '\\n{boundary} %s\\n' {shlex.quote(probe.name)}\n( {probe.script}\n) 2>/dev/null\n")
    parts.append(f"printf '\\n{boundary} end\\n'\n")
    parts.append(f"}} | {ONE_WRITE}\n")
    return "".join(parts)


class FactError(Exception):
    pass


def split_output(output: str, boundary: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    marker = f"\n{boundary} "
    chunks = ("\n" + output).split(marker)
    for chunk in chunks[1:]:
        name, _, body = chunk.partition("\n")
        sections[name.strip()] = body
    if "end" not in sections:
        raise FactError("fact gathering was cut short: the script did not run to its end")
    return sections


def parse_all(spec: FactSpec, sections: dict[str, str]) -> Facts:
    extra_probes = {p.name: p for p in spec.extra}
    core = {p.name: p for p in core_probes(spec)}
    parsed = {name: probe.parse(sections.get(name, "")) for name, probe in core.items()}
    users, groups = parsed["accounts"]
    return Facts(
        os=parsed["os"],
        packages=parsed["packages"],
        files=parsed["files"],
        services=parsed["services"],
        users=users,
        groups=groups,
        commands=parsed["commands"],
        ssh_client_address=parsed["ssh_client"],
        postfix_version=parsed["postfix_version"],
        extra={name: probe.parse(sections.get(name, "")) for name, probe in extra_probes.items()},
    )


def new_boundary() -> str:
    return "@@provisioner-" + secrets.token_hex(8)


def spec_script(spec: FactSpec, boundary: str) -> str:
    """The one remote script that gathers every fact of ``spec``."""
    return build_script([*core_probes(spec), *spec.extra], boundary)


def gather_with_raw(run_script: Callable[[str], str], spec: FactSpec) -> tuple[Facts, dict[str, str]]:
    """Gather every fact of ``spec`` in one call of ``run_script`` (one round trip).

    Also returns the raw output of each probe, which is what recorded cases store.
    """
    boundary = new_boundary()
    output = run_script(spec_script(spec, boundary))
    sections = split_output(output, boundary)
    return parse_all(spec, sections), sections


def gather(run_script: Callable[[str], str], spec: FactSpec) -> Facts:
    return gather_with_raw(run_script, spec)[0]
