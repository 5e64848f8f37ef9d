"""What a drift catalogue entry is, the paths it names, and when two entries conflict.

Everything here is Debian 12 (the lab); paths are Debian's.
"""

from __future__ import annotations

from dataclasses import dataclass

MAIN_CF = "/etc/postfix/main.cf"
MASTER_CF = "/etc/postfix/master.cf"
SASL_CONF = "/etc/postfix/sasl/smtpd.conf"
SASLAUTHD = "/etc/default/saslauthd"
PAM_SMTP = "/etc/pam.d/smtp"
ALLOW = "/etc/pam.d/mail_auth_group.allow"
ALIASES = "/etc/aliases"
VIRTUAL = "/etc/postfix/virtual_users"
TLS_DIR = "/etc/postfix/tls"
CERT = f"{TLS_DIR}/cert.pem"
KEY = f"{TLS_DIR}/key.pem"
DH = f"{TLS_DIR}/ffdhe2048.pem"
MARKER = "/var/lib/provisioner/verified"
OUTSIDE = "/srv/drift"  # where "outside /etc" symlinks point

# Every path the tool manages on Debian, in the order the harness snapshots them.
MANAGED_FILES = (MAIN_CF, MASTER_CF, SASL_CONF, SASLAUTHD, PAM_SMTP, ALLOW, ALIASES, ALIASES + ".db",
                 VIRTUAL, VIRTUAL + ".db", TLS_DIR, CERT, KEY, DH, MARKER)

RELOAD = ("services", "reload postfix (its configuration changed)")
RESTART = ("services", "restart postfix (its configuration changed)")
RESTART_SASLAUTHD = ("services", "restart saslauthd (its configuration changed)")
LISTFILE_FIRST = ("pam", f"put the pam_listfile group restriction first in {PAM_SMTP}")
ENABLE_SUBMISSION = ("master_cf", f"enable submission (port 587) in {MASTER_CF}")
REBUILD_ALIASES = ("aliases", f"rebuild {ALIASES}.db (its source changed)")
REBUILD_VIRTUAL = ("aliases", f"rebuild {VIRTUAL}.db (its source changed)")
SELF_SIGNED = "the self-signed certificate for {myhostname} (valid 825 days)"

# Today's failure kinds (drift.harness.KINDS says what each means).
NOT_DETECTED = "not-detected"
FALSE_DRIFT = "false-drift"
WRONG_PLAN = "wrong-plan"
PLAN_DIFFERS = "plan-differs"
TWO_RUNS = "two-runs"
NEVER = "never-converges"
RUN_FAILED = "run-failed"
VERIFY_FAILED = "verify-failed"
CRASH = "crash"
HOST_DIFFERS = "host-differs"
NOT_REFUSED = "not-refused"
CHECK_FAILED = "check-failed"


@dataclass(frozen=True)
class Plant:
    """Unmanaged content put on the converged host; the tool must keep it."""

    name: str
    file: str
    shell: str  # plants it (run once, after the first converge)
    check: str  # succeeds while it is intact


@dataclass(frozen=True)
class Mutation:
    id: str
    area: str  # the file or subsystem, for the docs
    kind: str  # delete, truncate, comment, ...: the words
    shell: str  # run as root on the converged host; may use {myhostname} and {control}
    outcome: str  # repair | tolerate | refuse
    does: str  # what the tool does about it (or must do), one sentence for docs/drift.md
    plan: tuple[tuple[str, str], ...] | None = None  # exact dry-run plan, alone on a converged host
    mentions: tuple[tuple[str, str], ...] = ()  # (step, regex) any plan holding it must list
    touches: tuple[str, ...] = ()
    destroys: tuple[str, ...] = ()  # plants that go with the file (re-planted by the harness)
    check: str | None = None  # shell that must succeed once the host converged again
    cleanup: str | None = None  # by hand, after the checks: take back what the mutation added on purpose
    undo: str | None = None  # refused (or failed) cases: by hand, before the files are restored
    restore: tuple[str, ...] = ()  # files put back from the converged snapshot after a refusal
    error: str | None = None  # refuse: regex the host's error must match
    known: tuple[str, str] | None = None  # (kind, diagnosis): how it fails today
    solo: bool = False  # never grouped with other mutations in `make test`

    def __post_init__(self):
        assert self.outcome in ("repair", "tolerate", "refuse"), self.id
        assert self.outcome != "repair" or self.plan or self.mentions, self.id
        assert self.outcome != "refuse" or self.error, self.id


def written_again(step: str, path: str, *then: tuple[str, str]) -> dict:
    """A mutation's plan and mentions when ``step`` writes ``path`` again whole, then ``then`` (a handler)."""
    write = (step, f"write {path}")
    return {"plan": (write, *then), "mentions": (write,)}


def attributes_set_back(step: str, path: str) -> tuple[str, str]:
    """What any plan repairing ``path``'s owner and mode mentions."""
    return (step, f"owner root:root and mode 644 on {path}")


def conflict(a: Mutation, b: Mutation) -> bool:
    """Two mutations that cannot be applied together (same thing, or a whole and its part)."""
    for x in a.touches:
        for y in b.touches:
            if x == y or y.startswith(x + "/") or x.startswith(y + "/"):
                return True
    return False
