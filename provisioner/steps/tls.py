"""TLS material for smtpd: certificate and key, optional CA, and strong DH parameters.

Two ways to get a certificate:

* uploaded: the inventory names local files (tls_cert + tls_key, or
  tls_combined, each with an optional tls_ca). They are compared by sha256
  with the host's copies; the private key (and the combined file, which holds
  it) is gathered as a secret (digest and attributes only) and written with
  ``secret=True``: no summary, diff or describe() ever shows it.
* self-signed: with no material, a certificate for ``myhostname`` is made ON
  THE HOST with openssl, so the key never leaves it. It is made once and
  renewed only when the certificate or key is missing or unreadable, names
  another host, expires within ``renew_before_days``, or no longer matches
  its key (the key's public half comes from a probe: public data only).

DH parameters: the RFC 7919 ffdhe2048 group as a constant (Logjam), where
main.cf names the file (Postfix < 3.9; from 3.9 the parameter is deprecated
and the built-in tls_ffdhe_auto_groups negotiate ffdhe2048 or ffdhe3072). A
file left by an earlier run on an upgraded host is left alone: nothing reads it.

New certificate files reach smtpd processes started after a ``postfix reload``
(smtpd loads them at process start), so file changes notify postfix:reload.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from provisioner.certs import FFDHE2048_PEM, CertError, cert_info, names_host, public_key_pem_sha256
from provisioner.desired import DH_PARAMS, TLS_CA, TLS_CERT, TLS_COMBINED, TLS_DIR, TLS_KEY, dh_params_file
from provisioner.probes import FactSpec, Probe
from provisioner.vars import MailVars
from provisioner.model import Change, Facts, FileState, MakeDirectory, SelfSignedCertificate
from provisioner.platforms import Platform
from provisioner.steps.base import Context, Step, StepError
from provisioner.steps.files import attributes_change, text_sha256, write_change

RELOAD = frozenset({"postfix:reload"})
DIR_PROBE_NAME = "tls_dir"
KEY_PROBE_NAME = "tls_key_public"


# ------------------------------------------------------------------ probes


def parse_dir(text: str) -> dict[str, str] | None:
    """``stat -c '%a %U %G'`` of TLS_DIR, or nothing when it is not a directory."""
    parts = text.split()
    if len(parts) != 3:
        return None
    return {"mode": parts[0], "owner": parts[1], "group": parts[2]}


def parse_key_public(text: str) -> str | None:
    """The probe prints the key's public half (PEM), ``unreadable``, or nothing.

    Returns the sha256 of the SubjectPublicKeyInfo, "unreadable", or None
    (no key, or no openssl to ask: then the match is not checked).
    """
    digest = public_key_pem_sha256(text)
    if digest:
        return digest
    if "unreadable" in text.split():
        return "unreadable"
    return None


DIR_PROBE = Probe(
    DIR_PROBE_NAME,
    f"if [ -d {shlex.quote(TLS_DIR)} ]; then stat -c '%a %U %G' {shlex.quote(TLS_DIR)}; fi; true",
    parse_dir,
)
KEY_PROBE = Probe(
    KEY_PROBE_NAME,
    f"if [ -f {shlex.quote(TLS_KEY)} ] && command -v openssl >/dev/null 2>&1; then "
    f"if _p=$(openssl pkey -in {shlex.quote(TLS_KEY)} -pubout 2>/dev/null); then printf '%s\\n' \"$_p\"; "
    "else echo unreadable; fi; fi; true",
    parse_key_public,
)


# ------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class Material:
    """One file of uploaded TLS material, as it must be on the host."""

    path: str
    content: str
    secret: bool
    what: str  # "certificate", "private key"...

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()

    @property
    def mode(self) -> str:
        return "600" if self.secret else "644"


class MaterialError(StepError):
    """A local TLS file of the inventory cannot be used."""


def read_material(vars: MailVars) -> tuple[Material, ...]:
    """Read the inventory's local TLS files (validated to exist when it was loaded)."""
    wanted: list[tuple[str | None, str, bool, str]] = []
    if vars.tls_combined:
        wanted.append((vars.tls_combined, TLS_COMBINED, True, "certificate and private key"))
    elif vars.tls_cert:
        wanted.append((vars.tls_cert, TLS_CERT, False, "certificate"))
        wanted.append((vars.tls_key, TLS_KEY, True, "private key"))
    if wanted and vars.tls_ca:
        wanted.append((vars.tls_ca, TLS_CA, False, "CA certificate"))
    materials = []
    for local, path, secret, what in wanted:
        assert local is not None
        try:
            content = Path(local).read_bytes().decode("ascii")
        except OSError as exc:
            raise MaterialError(f"cannot read the {what} {local}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise MaterialError(f"the {what} {local} is not a PEM file (it is not plain ASCII)") from None
        materials.append(Material(path, content, secret, what))
    return tuple(materials)


def file_digest(state: FileState) -> str | None:
    if state.sha256:
        return state.sha256
    if state.content is not None:
        return text_sha256(state.content)
    return None


def generate_action(hostname: str, days: int, platform: Platform, key: str = TLS_KEY,
                    cert: str = TLS_CERT) -> SelfSignedCertificate:
    """openssl req on the host, into a private temporary directory, then moved in place (see the action).

    ``key``, ``cert``: where the files really are (a symlink inside /etc is written through).
    """
    return SelfSignedCertificate(
        directory=TLS_DIR, key=key, cert=cert, subject=f"/CN={hostname}", days=days,
        san=f"subjectAltName=DNS:{hostname}" if platform.openssl_has_addext else None,
    )


def renewal_reason(cert: FileState, key: FileState, key_public: str | None, hostname: str,
                   now: datetime, renew_before_days: int) -> str | None:
    """Why the self-signed pair must be made again ("" for a first one), or None to keep it."""
    if not cert.exists:
        return ""
    if cert.content is None:
        return None  # made earlier in this (dry) run
    try:
        info = cert_info(cert.content)
    except CertError:
        return f"{cert.path} cannot be read"
    if not key.exists:
        return f"its key {key.path} is missing"
    if not names_host(info.names, hostname):
        return f"it names {', '.join(info.names) or 'no host'}, not {hostname}"
    if info.not_after <= now:
        return f"it expired on {info.not_after.date().isoformat()}"
    if info.not_after - now < timedelta(days=renew_before_days):
        return f"it expires on {info.not_after.date().isoformat()}"
    if key_public == "unreadable":
        return f"its key {key.path} cannot be read"
    if key_public and key_public != info.public_key_sha256:
        return f"its key {key.path} does not match it"
    return None


# ------------------------------------------------------------------ step


class Tls(Step):
    name = "tls"

    def needs(self, vars: MailVars) -> FactSpec:
        return FactSpec(
            files=(TLS_CERT, TLS_CA, DH_PARAMS),
            secret_files=(TLS_KEY, TLS_COMBINED),
            extra=(DIR_PROBE, KEY_PROBE),
        )

    def check(self, ctx: Context) -> list[Change]:
        try:
            materials = read_material(ctx.vars)
        except MaterialError as exc:
            raise MaterialError(f"{ctx.host}: {exc}") from None
        return tls_changes(ctx.vars, ctx.platform, ctx.facts, materials, ctx.options.clock(), self.name)


def tls_changes(vars: MailVars, platform: Platform, facts: Facts, materials: tuple[Material, ...],
         now: datetime, step: str = "tls") -> list[Change]:
    """Pure: the changes that bring the TLS files to the desired state."""
    changes: list[Change] = []
    changes.extend(_directory(facts, step))
    if materials:
        changes.extend(_uploaded(facts, materials, step))
    else:
        changes.extend(_self_signed(vars, platform, facts, now, step))
    if dh_params_file(vars, platform):
        changes.extend(_dh_params(facts, step))
    return changes


def _directory(facts: Facts, step: str) -> list[Change]:
    state = facts.extra.get(DIR_PROBE_NAME)
    wanted = {"mode": "755", "owner": "root", "group": "root"}

    def effect(f: Facts) -> Facts:
        return f.replace(extra={**f.extra, DIR_PROBE_NAME: dict(wanted)})

    if not state:
        return [Change(
            step=step,
            summary=f"create directory {TLS_DIR} (mode 755, root:root)",
            actions=(MakeDirectory(TLS_DIR),),
            effect=effect,
        )]
    dir_state = FileState(TLS_DIR, exists=True, mode=state["mode"], owner=state["owner"], group=state["group"])
    change = attributes_change(step, dir_state, "755")
    if change is None:
        return []
    return [Change(step=step, summary=change.summary, actions=change.actions, effect=effect)]


def _uploaded(facts: Facts, materials: tuple[Material, ...], step: str) -> list[Change]:
    changes: list[Change] = []
    for item in materials:
        state = facts.file(item.path)
        if state.exists and file_digest(state) == item.sha256:
            change = attributes_change(step, state, item.mode)
            if change:
                changes.append(change)
            continue
        verb = "replace" if state.exists else "install"
        changes.append(write_change(
            step, f"{verb} the {item.what} {item.path} from the inventory", state, item.content,
            mode=item.mode, secret=item.secret, digest=True, notify=RELOAD,
        ))
    return changes


def _self_signed(vars: MailVars, platform: Platform, facts: Facts, now: datetime, step: str) -> list[Change]:
    cert, key = facts.file(TLS_CERT), facts.file(TLS_KEY)
    hostname, days = vars.myhostname, vars.self_signed_days
    reason = renewal_reason(cert, key, facts.extra.get(KEY_PROBE_NAME), hostname, now, vars.renew_before_days)
    if reason is None:
        return [c for c in (attributes_change(step, key, "600"), attributes_change(step, cert, "644")) if c]
    if reason == "":
        summary = f"generate a self-signed certificate for {hostname} (valid {days} days)"
    else:
        summary = f"renew the self-signed certificate for {hostname} (valid {days} days): {reason}"

    def effect(f: Facts) -> Facts:
        f = f.with_file(FileState(TLS_KEY, exists=True, mode="600", owner="root", group="root",
                                  link_target=key.link_target))
        f = f.with_file(FileState(TLS_CERT, exists=True, mode="644", owner="root", group="root",
                                  link_target=cert.link_target))
        return f.replace(extra={**f.extra, KEY_PROBE_NAME: None})

    # Links inside /etc are followed (a dangling one is not a file: the probe says absent, and mv replaces it).
    key_path, cert_path = key.link_target or TLS_KEY, cert.link_target or TLS_CERT
    return [Change(
        step=step,
        summary=summary,
        actions=(generate_action(hostname, days, platform, key_path, cert_path),),
        notify=RELOAD,
        writes=(key_path, cert_path),
        effect=effect,
    )]


def _dh_params(facts: Facts, step: str) -> list[Change]:
    state = facts.file(DH_PARAMS)
    if state.exists and (state.content == FFDHE2048_PEM or (state.content is None and file_digest(state) == _DH_SHA)):
        change = attributes_change(step, state, "644")
        return [change] if change else []
    verb = "replace" if state.exists else "write"
    summary = f"{verb} {DH_PARAMS} (RFC 7919 ffdhe2048 DH parameters)"
    return [write_change(step, summary, state, FFDHE2048_PEM, digest=True, notify=RELOAD)]


_DH_SHA = hashlib.sha256(FFDHE2048_PEM.encode()).hexdigest()
