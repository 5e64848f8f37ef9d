"""Leftovers of older versions and of interrupted installs, removed before anything else is changed.

- ``<file>.provisioner.bak``: older versions kept the previous copy of each
  file they wrote beside it, forever, private keys included and with
  whatever mode they had drifted to; and their rollback moved back any such
  file it found, an earlier run's too (which once put back a stock
  /etc/pam.d/smtp without the group restriction). Backups now live in each
  run's own root-only journal (provisioner/journal.py). These files go;
  a rollback never brings them back.
- ``/usr/sbin/policy-rc.d``: a Debian install refuses service starts with a
  policy-rc.d of its own, journaled and removed right after. One left
  behind (the host went down mid-install) is known by its marker line and
  removed, so apt can start services again. An older version set the
  admin's own aside as ``policy-rc.d.provisioner-saved``: it is put back.
"""

from __future__ import annotations

import shlex
from posixpath import dirname

from provisioner.desired import (
    ALIASES,
    DH_PARAMS,
    MAIN_CF,
    MASTER_CF,
    PAM_ALLOW_FILE,
    PAM_SMTP,
    STATE_DIR,
    TLS_KEY,
    VIRTUAL_MAP,
)
from provisioner.model import Change, Command, Facts, FileState, RemoveFile
from provisioner.platforms import union_paths
from provisioner.platforms.debian import POLICY_RC_D, POLICY_RC_D_OURS, POLICY_RC_D_SAVED_BY_OLD_VERSION
from provisioner.probes import FactSpec, Probe, parse_lines
from provisioner.steps.base import Context, Step
from provisioner.vars import MailVars

OLD_BACKUP_SUFFIX = ".provisioner.bak"
PROBE = "old_backups"


def backup_dirs() -> tuple[str, ...]:
    """Every directory an older version wrote backups into: those of the files it managed."""
    paths = (MAIN_CF, MASTER_CF, DH_PARAMS, TLS_KEY, PAM_SMTP, PAM_ALLOW_FILE, VIRTUAL_MAP, ALIASES, f"{STATE_DIR}/x",
             *union_paths("smtpd_sasl_conf"), *union_paths("saslauthd_defaults"), *union_paths("pam_smtp_link_target"))
    return tuple(dict.fromkeys(dirname(path) for path in paths))


BACKUP_PROBE = Probe(
    PROBE,
    f"for _d in {' '.join(shlex.quote(d) for d in backup_dirs())}; do "
    f"for _f in \"$_d\"/*{OLD_BACKUP_SUFFIX}; do "
    "if [ -e \"$_f\" ] || [ -L \"$_f\" ]; then printf '%s\\n' \"$_f\"; fi; done; done; true",
    parse_lines,
)


class Leftovers(Step):
    name = "leftovers"

    def needs(self, vars: MailVars) -> FactSpec:
        return FactSpec(files=(POLICY_RC_D, POLICY_RC_D_SAVED_BY_OLD_VERSION), extra=(BACKUP_PROBE,))

    def check(self, ctx: Context) -> list[Change]:
        facts = ctx.facts
        changes: list[Change] = []
        backups = sorted(facts.extra.get(PROBE) or ())
        if backups:
            count = len(backups)
            changes.append(Change(
                step=self.name,
                summary=f"remove {count} backup file{'s' if count != 1 else ''} an older version left beside the "
                        f"live ones: {', '.join(backups)}",
                actions=tuple(RemoveFile(path, journal=False) for path in backups),
                effect=lambda f, gone=tuple(backups): f.replace(
                    extra={**f.extra, PROBE: frozenset(f.extra.get(PROBE, ())) - set(gone)}),
            ))
        saved = facts.file(POLICY_RC_D_SAVED_BY_OLD_VERSION)
        if saved.exists:
            changes.append(Change(
                step=self.name,
                summary=f"put back {POLICY_RC_D}, which an install an older version did not finish set aside "
                        f"as {POLICY_RC_D_SAVED_BY_OLD_VERSION}",
                actions=(Command(("mv", "-f", POLICY_RC_D_SAVED_BY_OLD_VERSION, POLICY_RC_D)),),
                effect=lambda f: _moved(f, POLICY_RC_D_SAVED_BY_OLD_VERSION, POLICY_RC_D),
            ))
        elif facts.file(POLICY_RC_D).content == POLICY_RC_D_OURS:
            changes.append(Change(
                step=self.name,
                summary=f"remove {POLICY_RC_D}, left by an install that did not finish (it refuses every service start)",
                actions=(RemoveFile(POLICY_RC_D, journal=False),),
                effect=lambda f: f.with_file(FileState(POLICY_RC_D)),
            ))
        return changes


def _moved(facts: Facts, source: str, target: str) -> Facts:
    moved = facts.file(source)
    return facts.with_file(FileState(source)).with_file(
        FileState(target, exists=True, content=moved.content, sha256=moved.sha256, mode=moved.mode,
                  owner=moved.owner, group=moved.group, mtime=moved.mtime))
