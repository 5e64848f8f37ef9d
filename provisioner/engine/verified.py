"""``--verify auto``: verify when it can find something new, else say when the host last passed.

A passed verify is recorded on the host, in the verified marker the lift
writes (``/var/lib/provisioner/verified``, root-only), with a digest of the
managed state it passed in. A later real run that changes nothing, on a host
whose state still has that digest, has nothing new for verify to find: it
skips verify and reports "verified <when>, unchanged since".

The digest is computed from the facts the one fact script gathers (no round
trip of its own). It covers what could make mail work differently:

- the platform (and its release) and the Postfix version;
- the installed version of every package the steps look at;
- every file the steps look at, the marker excepted: existence, sha256,
  mode, owner and group (not the mtime: a ``touch`` changes no behaviour);
  secret files (the TLS key, the ``.db`` maps) by the digest the facts
  already hold, never by content;
- each service's existence, boot state and running state, and the running
  daemons (``master``, ``saslauthd``);
- the users and groups the steps look at (the mail group's members);
- the commands found on PATH;
- the step probes: the firewall state (our lockdown, firewalld's zone, the
  host's own INPUT rules on the mail ports), the PAM link, the TLS directory,
  the key's public half, leftover backups, the mta alternative;
- what verify itself checks: the address it connects to, the ports,
  ``myhostname``, the foreign recipient of the relay test, the local-delivery
  address, and the names (never the passwords) of its two accounts.

Left out, on purpose: the mtime, the control node's address, a run in
progress, and anything the fact script does not read (the accounts'
passwords, DNS, the network between this machine and the host, firewall
tables other than those above). ``--verify always`` checks those too.

No secret goes into the record: the digest is over digests the host itself
holds, the record is mode 0600, and verify's passwords never enter it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from provisioner.desired import STATE_DIR, VERIFIED_MARKER
from provisioner.model import Facts, Shell

MODES = ("auto", "always", "never")
FORMAT = 1  # bump when what goes into the digest changes: older records then no longer match
HEADER = "verified by provisioner\n"


def canonical(value: Any) -> Any:
    """A JSON-ready form of a fact that is the same whenever the fact is (sets sorted, dataclasses as dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda item: str(item[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def state_digest(facts: Facts, platform: str, verify_scope: Mapping[str, Any],
                 ignore_probes: Iterable[str] = ()) -> str:
    """The digest of a host's managed state, as verify would meet it (see the module docstring)."""
    ignored = set(ignore_probes)
    state = {
        "format": FORMAT,
        "platform": platform,
        "os": [facts.os.id, facts.os.version_id],
        "postfix_version": facts.postfix_version,
        "packages": dict(facts.packages),
        "files": {
            path: [f.exists, f.sha256, f.mode, f.owner, f.group]
            for path, f in facts.files.items() if path != VERIFIED_MARKER
        },
        "services": {name: [s.exists, s.enabled, s.active] for name, s in facts.services.items()},
        "users": {name: sorted(u.groups) for name, u in facts.users.items()},
        "groups": {name: sorted(members) for name, members in facts.groups.items()},
        "commands": sorted(facts.commands),
        "probes": {name: value for name, value in facts.extra.items() if name not in ignored},
        "verify": dict(verify_scope),
    }
    text = json.dumps(canonical(state), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class VerifyRecord:
    """What the marker says about the last passed verify."""

    state: str  # the digest
    at: str  # when it passed, UTC, ISO 8601
    run_id: str | None = None


def parse_record(content: str | None) -> VerifyRecord | None:
    """The record in the marker's text; None for a marker without one (written before records, or by a lift)."""
    if not content:
        return None
    fields = dict(line.split("=", 1) for line in content.splitlines() if "=" in line)
    state, at = fields.get("state", ""), fields.get("verified_at", "")
    if len(state) != 64 or any(c not in "0123456789abcdef" for c in state) or not at:
        return None
    return VerifyRecord(state=state, at=at, run_id=fields.get("run_id") or None)


def render_record(record: VerifyRecord) -> str:
    lines = [HEADER.rstrip("\n"), f"verified_at={record.at}", f"state={record.state}"]
    if record.run_id:
        lines.append(f"run_id={record.run_id}")
    return "\n".join(lines) + "\n"


def record_script(record: VerifyRecord) -> str:
    """Write the record whole (a temporary name, then mv), root-only."""
    return Shell(
        "umask 077 && install -d -m 755 {0} && printf '%s' {1} > {2}.tmp && chmod 600 {2}.tmp && mv -f {2}.tmp {2}",
        (STATE_DIR, render_record(record), VERIFIED_MARKER),
    ).render()


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str  # why verify runs, or why not
    verified_at: str | None = None  # the last passed verify, when it is skipped for it


def decide(mode: str, enabled: bool, changed: bool, record: VerifyRecord | None, digest: str) -> Decision:
    """Whether a real run verifies. ``enabled``: the inventory's ``verify`` var; ``changed``: this run changed the host."""
    if mode == "never":
        return Decision(False, "--verify never")
    if not enabled:
        return Decision(False, "verify: false in the inventory")
    if mode == "always":
        return Decision(True, "--verify always")
    if changed:
        return Decision(True, "this run changed the host")
    if record is None:
        return Decision(True, "no passed verify is recorded on the host")
    if record.state != digest:
        return Decision(True, f"the host changed since its last passed verify ({record.at})")
    return Decision(False, f"verified {record.at}, unchanged since", verified_at=record.at)
