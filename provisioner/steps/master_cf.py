"""master.cf: the submission service (port 587) and, optionally, smtps (port 465).

master.cf is edited in place with a small parser of master(5) syntax: a
service entry starts at column 0 (8 or more fields), a line starting with
whitespace continues it, and blank and comment lines are ignored (also
between continuation lines: Postfix's logical lines, ``keyedit.logical_lines``).
Our entry replaces, where it stands, an active entry for the same port, else
the commented-out example that both Debian's and the EL family's stock files
carry (``#submission inet n ...`` followed by ``#  -o ...`` lines, and any
uncommented ``-o`` lines left after it), else it goes after the ``smtp inet``
entry. Everything
else is kept byte for byte. Turning a service off comments our entry out, so
the file goes back to the stock shape and turning it on again is a replace.

The submission policy is self-contained: TLS required, AUTH required, and only
authenticated clients may send (relay and recipient restrictions both
``permit_sasl_authenticated,reject``, so main.cf's ``permit_mynetworks`` does
not open port 587 to unauthenticated local clients). EL6's Postfix 2.6 has no
``smtpd_relay_restrictions`` (2.10+): there the recipient restriction alone
does it.

master(8) re-reads master.cf on ``postfix reload`` and opens or closes
listeners then, without dropping sessions in progress: changes notify
postfix:reload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provisioner.desired import MASTER_CF, has_relay_restrictions
from provisioner.keyedit import logical_lines, orphan_lines
from provisioner.probes import FactSpec
from provisioner.vars import MailVars
from provisioner.model import Change, FileState
from provisioner.platforms import ALL, Platform
from provisioner.steps.base import Context, Step, StepError
from provisioner.steps.files import attributes_change, write_change

RELOAD = frozenset({"postfix:reload"})
COLUMNS = ("service", "type", "private", "unpriv", "chroot", "wakeup", "maxproc")
# Service names that mean one port (as in /etc/services on both families).
PORT_NAMES = {
    "587": ("submission", "587"),
    "465": ("smtps", "submissions", "ssmtp", "465"),
}
# Where the stock files start each column ("smtp      inet  n       -       y ...").
STOCK_COLUMNS = (0, 10, 16, 24, 32, 40, 48, 56)
COMMENTED_RE = re.compile(r"^#\s*(\S+)\s+(inet|unix|unix-dgram|fifo|pass)\s")
COMMENTED_CONTINUATION_RE = re.compile(r"^#[ \t]{2,}\S")


@dataclass(frozen=True)
class Service:
    """One logical master.cf entry: lines [start, end) of the file."""

    start: int
    end: int
    tokens: tuple[str, ...]  # the 7 columns, then the command and its arguments

    @property
    def name(self) -> str:
        return self.tokens[0]

    @property
    def type(self) -> str:
        return self.tokens[1]


def _is_entry(line: str) -> bool:
    return bool(line) and line[0] not in " \t#\r\n" and len(line.split()) >= 8


def parse(text: str) -> tuple[list[str], list[Service]]:
    """Lines of master.cf and its active service entries, read as master(8) reads them (``logical_lines``)."""
    lines = text.splitlines(keepends=True)
    services = [
        Service(own[0], own[-1] + 1, tuple(token for index in own for token in lines[index].split()))
        for own in logical_lines(lines)
        if _is_entry(lines[own[0]])
    ]
    return lines, services


def commented_entries(lines: list[str]) -> list[Service]:
    """Commented-out entries (``#name type ...`` and their ``#  -o ...`` lines)."""
    found: list[Service] = []
    i = 0
    while i < len(lines):
        match = COMMENTED_RE.match(lines[i])
        if not match or len(lines[i][1:].split()) < 8:
            i += 1
            continue
        tokens = lines[i][1:].split()
        j = i + 1
        while j < len(lines) and COMMENTED_CONTINUATION_RE.match(lines[j]) and not COMMENTED_RE.match(lines[j]):
            tokens.extend(lines[j][1:].split())
            j += 1
        found.append(Service(i, j, tuple(tokens)))
        i = j
    return found


def port_of(name: str) -> str | None:
    """The port a service name stands for; a host prefix (``127.0.0.1:``) is ignored."""
    bare = name.rsplit(":", 1)[-1]
    for port, names in PORT_NAMES.items():
        if bare in names:
            return port
    return None


def service_name(port: str, platform: Platform) -> str:
    """The name the platform's stock master.cf uses for the port."""
    if port == "587":
        return "submission"
    return platform.smtps_service


def desired_tokens(port: str, platform: Platform) -> tuple[str, ...]:
    name = service_name(port, platform)
    options = [f"syslog_name=postfix/{name}"]
    if port == "465":
        options.append("smtpd_tls_wrappermode=yes")
    options += ["smtpd_tls_security_level=encrypt", "smtpd_sasl_auth_enable=yes", "smtpd_tls_auth_only=yes"]
    if has_relay_restrictions(platform):
        options.append("smtpd_relay_restrictions=permit_sasl_authenticated,reject")
    options.append("smtpd_recipient_restrictions=permit_sasl_authenticated,reject")
    chroot = "y" if platform.postfix_chroot else "n"
    tokens = [name, "inet", "n", "-", chroot, "-", "-", "smtpd"]
    for option in options:
        tokens += ["-o", option]
    return tuple(tokens)


def render(tokens: tuple[str, ...]) -> list[str]:
    """An entry in the stock column layout, one ``-o`` option per continuation line."""
    head = ""
    for column, token in zip(STOCK_COLUMNS, tokens[:8]):
        head += " " * max(column - len(head), 1 if head else 0) + token
    lines = [head + "\n"]
    rest = list(tokens[8:])
    i = 0
    while i < len(rest):
        if rest[i] == "-o" and i + 1 < len(rest):
            lines.append(f"  -o {rest[i + 1]}\n")
            i += 2
        else:
            lines.append(f"  {rest[i]}\n")
            i += 1
    return lines


def _options(tokens: tuple[str, ...]) -> list[str]:
    args = list(tokens[8:])
    out = []
    i = 0
    while i < len(args):
        if args[i] == "-o" and i + 1 < len(args):
            out.append(args[i + 1])
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def differences(old: tuple[str, ...], new: tuple[str, ...]) -> list[str]:
    notes = []
    if old[0] != new[0]:
        notes.append(f"rename {old[0]} to {new[0]}")
    for index in range(1, 8):
        was = old[index] if index < len(old) else ""
        if was != new[index]:
            column = COLUMNS[index] if index < len(COLUMNS) else "command"
            notes.append(f"set {column} {new[index]} (was {was})")
    old_opts, new_opts = _options(old), _options(new)
    added = [o for o in new_opts if o not in old_opts]
    removed = [o for o in old_opts if o not in new_opts]
    notes += [f"add -o {o}" for o in added]
    notes += [f"remove -o {o}" for o in removed]
    if not notes:
        notes.append("reorder its options")
    return notes


def _splice(lines: list[str], start: int, end: int, new: list[str]) -> list[str]:
    return lines[:start] + new + lines[end:]


Note = tuple[str, str]  # (what was done, details or "")


def edit_port(text: str, port: str, enabled: bool, platform: Platform) -> tuple[str, Note | None]:
    """Apply one port's desired state; return (new text, what was done or None)."""
    lines, services = parse(text)
    ours = [s for s in services if s.type == "inet" and port_of(s.name) == port]
    if not enabled:
        if not ours:
            return text, None
        for service in reversed(ours):
            commented = ["#" + line for line in lines[service.start:service.end]]
            lines = _splice(lines, service.start, service.end, commented)
        names = ", ".join(dict.fromkeys(s.name for s in ours))
        return "".join(lines), (f"disable {names} (port {port}, commented out)", "")
    wanted = desired_tokens(port, platform)
    name = wanted[0]
    new_lines = render(wanted)
    if ours:
        first, *extra = ours
        if first.tokens == wanted and not extra:
            return text, None
        notes = differences(first.tokens, wanted) if first.tokens != wanted else []
        if extra:
            notes.append(f"remove {len(extra)} more entr{'y' if len(extra) == 1 else 'ies'} for port {port}")
        for service in reversed(extra):
            lines = _splice(lines, service.start, service.end, [])
        lines = _splice(lines, first.start, first.end, new_lines)
        return "".join(lines), (f"update {name} (port {port})", ", ".join(notes))
    templates = [
        c for c in commented_entries(lines)
        if c.type == "inet" and ":" not in c.name and port_of(c.name) == port
    ]
    if templates:
        template = templates[0]
        # Its uncommented "-o" lines, which master(8) reads as options of the entry above, go with it.
        gone = set(orphan_lines(lines, template.start, COMMENTED_RE))
        rest = [line for index, line in enumerate(lines[template.end:], template.end) if index not in gone]
        lines = lines[:template.start] + new_lines + rest
    else:
        anchor = _anchor(services, port)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        at = anchor if anchor is not None else len(lines)
        lines = _splice(lines, at, at, new_lines)
    return "".join(lines), (f"enable {name} (port {port})", "")


def _anchor(services: list[Service], port: str) -> int | None:
    """Where a new entry goes when there is no example to replace: after smtp (or submission)."""
    order = ["587", "smtp"] if port == "465" else ["smtp"]
    for wanted in order:
        for service in services:
            if service.type != "inet":
                continue
            if (wanted == "smtp" and service.name.rsplit(":", 1)[-1] in ("smtp", "25")) or port_of(service.name) == wanted:
                return service.end
    return None


def edit(text: str, wanted: dict[str, bool], platform: Platform) -> tuple[str, list[Note]]:
    notes = []
    for port in ("587", "465"):
        text, note = edit_port(text, port, wanted[port], platform)
        if note:
            notes.append(note)
    return text, notes


def wanted_ports(vars: MailVars) -> dict[str, bool]:
    return {"587": vars.submission, "465": vars.smtps}


def has_stock_services(text: str) -> bool:
    """Whether master.cf still runs Postfix: it defines the smtp listener or the pickup service."""
    _, services = parse(text)
    return any(s.name == "pickup" or (s.type == "inet" and s.name.rsplit(":", 1)[-1] in ("smtp", "25"))
               for s in services)


class MasterCf(Step):
    name = "master_cf"

    def needs(self, vars: MailVars) -> FactSpec:
        # The stock copy of every platform: a file that lost its services is rebuilt from it.
        return FactSpec(files=(MASTER_CF, *dict.fromkeys(p.master_cf_stock for p in ALL)))

    def check(self, ctx: Context) -> list[Change]:
        platform, state = ctx.platform, ctx.facts.file(MASTER_CF)
        wanted = wanted_ports(ctx.vars)
        enabled = [f"{service_name(port, platform)} (port {port})" for port, on in wanted.items() if on]
        shipped_summary = f"enable {' and '.join(enabled)} in {MASTER_CF} (file as shipped by {state.from_package})"
        if state.exists and state.content is None:
            # Shipped by a package the plan installs first: the stock file has
            # no active submission/smtps entry, so only enabling changes it.
            if not enabled:
                return []
            return [Change(
                step=self.name,
                summary=shipped_summary,
                notify=RELOAD,
                effect=lambda f: f.with_file(FileState(MASTER_CF, exists=True, from_package=state.from_package)),
            )]
        if not state.exists or not has_stock_services(state.content or ""):
            return [self._rebuild(ctx, state, wanted, enabled)]
        old = state.content or ""
        new, notes = edit(old, wanted, platform)
        if new == old:
            change = attributes_change(self.name, state, "644")
            return [change] if change else []
        if state.from_package and enabled:
            summary = shipped_summary
        else:
            summary = "; ".join(f"{head} in {MASTER_CF}" + (f": {detail}" if detail else "") for head, detail in notes)
        return [write_change(self.name, summary, state, new, notify=RELOAD)]

    def _rebuild(self, ctx: Context, state: FileState, wanted: dict[str, bool], enabled: list[str]) -> Change:
        """master.cf missing, or without Postfix's own services: the stock copy, with the managed entries.

        master(8) cannot run without them (an empty master.cf leaves nothing listening), so
        Postfix is restarted, not reloaded.
        """
        stock_path = ctx.platform.master_cf_stock
        stock = ctx.facts.file(stock_path)
        what = "missing" if not state.exists else "without Postfix's services"
        if not stock.exists or stock.content is None:
            raise StepError(
                f"{ctx.host}: {MASTER_CF} is {what} and the stock copy {stock_path} is missing too: "
                "reinstall postfix (its package ships both)"
            )
        new, _ = edit(stock.content, wanted, ctx.platform)
        summary = f"rebuild {MASTER_CF} ({what}) from the stock {stock_path}"
        if enabled:
            summary += f" and enable {' and '.join(enabled)}"
        return write_change(self.name, summary, state, new, notify=frozenset({"postfix:restart"}))
