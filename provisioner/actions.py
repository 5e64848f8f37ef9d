"""Actions: what a change does on the host, rendered as plain shell commands that journal themselves.

Each action has two faces. ``describe()`` is the command as a reader knows
it (what the plan and the recorded cases show). ``render()`` is what the
host runs: one plain command per line, so that ``set -e`` stops the script
at the first failing one (no ``a && b`` chain, whose failing head would not
stop it), preceded by the journal call that records how to undo it (the
functions of ``provisioner.journal.LIBRARY`` (provisioner/journal.sh), sourced by every step script).

- a file is copied into the run's journal before it is replaced or removed;
  a new one is written to a temporary file beside it, which is removed if
  the script fails, and moved into place only once owner and mode are set:
  a failed write leaves the old file byte for byte in place;
- owner and mode are recorded before they change;
- group membership is recorded when it changes (who was added or removed);
- a service's boot and running state are recorded before the run first
  touches them (``KeepService``), and come back after the files on rollback.

Package installs and removals and the firewall lockdown are not undone (see
docs/reliability.md): the lockdown is the fail-closed state, and packages
cannot be put back as they were.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass, field
from typing import Union

q = shlex.quote


def file_bytes(text: str) -> bytes:
    """A file's text back to its bytes: the facts decode with surrogateescape, so a byte that is not UTF-8 survives."""
    return text.encode("utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class Command:
    """One remote command, built from arguments that are quoted one by one."""

    argv: tuple[str, ...]

    def render(self) -> str:
        return shlex.join(self.argv)

    def describe(self) -> str:
        return self.render()


@dataclass(frozen=True)
class Shell:
    """A fixed shell fragment for what argv cannot say (a condition, a pipe, a redirection).

    Only code, never input, goes in ``text``; inputs are passed through
    ``args`` and quoted into the numbered positions ``{0}``, ``{1}``...
    """

    text: str
    args: tuple[str, ...] = ()

    def render(self) -> str:
        return self.text.format(*(q(a) for a in self.args))

    def describe(self) -> str:
        return self.render()


@dataclass(frozen=True)
class WriteFile:
    """Write a whole file atomically; the journal keeps the previous one (``journal=False``: never undone)."""

    path: str
    content: str = field(repr=False)
    mode: str = "644"
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    journal: bool = True
    # Postfix's commands read a main.cf changed in the last 2 s again until it is not (its file loader's guard
    # against a file caught mid-write): on the lab, `touch main.cf; postconf` took 1.8-2.4 s, 6 ms with the
    # mtime 2 s back. The write is a rename of a whole file, so there is nothing to wait for.
    settled: bool = False

    def render(self) -> str:
        payload = base64.b64encode(file_bytes(self.content)).decode()
        lines = [f"_pv_keep {q(self.path)}"] if self.journal else []
        lines += [
            f"_pv_tmp {q(self.path)}",
            f'printf %s {q(payload)} | base64 -d > "$_pv_t"',
            f'chown {q(self.owner + ":" + self.group)} "$_pv_t"',
            f'chmod {q(self.mode)} "$_pv_t"',
        ]
        if self.settled:
            lines.append('touch -m -d "2 seconds ago" "$_pv_t"')
        lines.append(f'mv -f "$_pv_t" {q(self.path)}')
        return "\n".join(lines)

    def describe(self) -> str:
        return f"write {self.path} (mode {self.mode}, {self.owner}:{self.group})"


@dataclass(frozen=True)
class SetAttributes:
    path: str
    mode: str | None = None
    owner: str | None = None
    group: str | None = None

    def _commands(self) -> list[str]:
        parts = []
        if self.owner or self.group:
            parts.append(Command(("chown", f"{self.owner or ''}:{self.group or ''}", self.path)).render())
        if self.mode:
            parts.append(Command(("chmod", self.mode, self.path)).render())
        return parts

    def render(self) -> str:
        return "\n".join([f"_pv_keep_attrs {q(self.path)}", *self._commands()])

    def describe(self) -> str:
        return "; ".join(self._commands())


@dataclass(frozen=True)
class MakeDirectory:
    """``install -d``: a directory with this mode and owner (removed on rollback if this run made it)."""

    path: str
    mode: str = "755"
    owner: str = "root"
    group: str = "root"

    def describe(self) -> str:
        return Command(("install", "-d", "-m", self.mode, "-o", self.owner, "-g", self.group, self.path)).render()

    def render(self) -> str:
        return f"_pv_keep_dir {q(self.path)}\n" + self.describe()


@dataclass(frozen=True)
class RemoveFile:
    """Remove a file; the journal keeps it (``journal=False``: garbage, never put back)."""

    path: str
    journal: bool = True

    def describe(self) -> str:
        return Command(("rm", "-f", self.path)).render()

    def render(self) -> str:
        return (f"_pv_keep {q(self.path)}\n" if self.journal else "") + self.describe()


@dataclass(frozen=True)
class Keep:
    """Journal a file that the next command rewrites by itself (``postmap``'s .db): a rollback puts it back."""

    path: str

    def describe(self) -> str:
        return f"keep a copy of {self.path} for a rollback"

    def render(self) -> str:
        return f"_pv_keep {q(self.path)}"


@dataclass(frozen=True)
class RevertFile:
    """Put a file back, now, as it was before this run (after a temporary change, e.g. policy-rc.d)."""

    path: str

    def describe(self) -> str:
        return f"put back {self.path} as it was before this run"

    def render(self) -> str:
        return f"_pv_revert {q(self.path)}"


@dataclass(frozen=True)
class SelfSignedCertificate:
    """A key and self-signed certificate made ON THE HOST, in a private temporary directory, then moved in.

    The key is made under umask 077 and never leaves the host; a failed
    openssl leaves the old pair in place; the journal keeps the old pair.
    """

    directory: str
    key: str
    cert: str
    subject: str
    days: int
    san: str | None = None  # subjectAltName (openssl 1.1.1+ only)

    def _openssl(self, key: str, cert: str) -> str:
        argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(self.days),
                "-subj", self.subject]
        if self.san:
            argv += ["-addext", self.san]
        return shlex.join(argv) + f" -keyout {key} -out {cert}"

    def describe(self) -> str:
        return (self._openssl(q(self.key), q(self.cert))
                + " (made in a private temporary directory, then moved in: key 600, certificate 644)")

    def render(self) -> str:
        made = self._openssl('"$_pv_t/key.pem"', '"$_pv_t/cert.pem"')
        return "\n".join([
            f"_pv_tmpdir {q(self.directory)}",
            f'if ! (umask 077; {made} 2>"$_pv_t/log"); then cat "$_pv_t/log" >&2; exit 1; fi',
            'chown root:root "$_pv_t/key.pem" "$_pv_t/cert.pem"',
            'chmod 600 "$_pv_t/key.pem"',
            'chmod 644 "$_pv_t/cert.pem"',
            f"_pv_keep {q(self.key)}",
            f"_pv_keep {q(self.cert)}",
            f'mv -f "$_pv_t/key.pem" {q(self.key)}',
            f'mv -f "$_pv_t/cert.pem" {q(self.cert)}',
            'rm -rf "$_pv_t"',
        ])


def _in_group(user: str, group: str) -> str:
    return f"id -nG {q(user)} 2>/dev/null | tr ' ' '\\n' | grep -qx -e {q(group)}"


@dataclass(frozen=True)
class JoinGroup:
    user: str
    group: str

    def describe(self) -> str:
        return Command(("usermod", "-a", "-G", self.group, self.user)).render()

    def render(self) -> str:
        undo = f"if {_in_group(self.user, self.group)}; then gpasswd -d {q(self.user)} {q(self.group)} >/dev/null; fi"
        return (
            f"if ! {_in_group(self.user, self.group)}; then "
            f"_pv_undo {q(f'remove {self.user} from group {self.group} (added in this run)')} {q(undo)}; fi\n"
            + self.describe()
        )


@dataclass(frozen=True)
class LeaveGroup:
    user: str
    group: str

    def describe(self) -> str:
        return Command(("gpasswd", "-d", self.user, self.group)).render()

    def render(self) -> str:
        undo = f"usermod -a -G {q(self.group)} {q(self.user)}"
        return (
            f"if {_in_group(self.user, self.group)}; then "
            f"_pv_undo {q(f'put {self.user} back in group {self.group} (removed in this run)')} {q(undo)}; fi\n"
            + self.describe() + " >/dev/null"
        )


@dataclass(frozen=True)
class CreateGroup:
    group: str

    def describe(self) -> str:
        return Command(("groupadd", self.group)).render()

    def render(self) -> str:
        exists = f"getent group {q(self.group)} >/dev/null"
        undo = f"if {exists}; then groupdel {q(self.group)}; fi"
        return (
            f"if ! {exists}; then "
            f"_pv_undo {q(f'remove group {self.group} (new in this run)')} {q(undo)}; fi\n"
            + self.describe()
        )


@dataclass(frozen=True)
class KeepService:
    """Before a run first touches a service's boot or running state: record how to bring it back.

    Rendered from the platform's own commands (``Platform.keep_service``).
    ``what`` is ``boot`` (enabled at boot or not) or ``run`` (running or
    not). The record is written once per run and service, so it holds the
    state from before the run. A rollback stops a service that did not run
    first, while the run's configuration is still there to stop it with
    (Postfix cannot stop without its main.cf), then puts the files back,
    disables what was not enabled at boot, and brings back what ran with the
    restored configuration (restarted, or reloaded: ``back_running``).
    """

    service: str
    what: str  # "boot" | "run"
    daemon: str
    enabled_test: str  # shell condition, true when enabled at boot
    enable: str
    disable: str
    stop: str
    back_running: str  # code that brings a running service back with the restored configuration

    def describe(self) -> str:
        return f"record the {self.what} state of {self.service} (a rollback returns it there)"

    def render(self) -> str:
        records = f'"$_pv_run/services/{self.service}.{self.what}"'
        if self.what == "boot":
            test = self.enabled_test
            unset = f"[ ! -e {records} ]"
            kept = (f"{self.service}.boot", q(f"enable {self.service} at boot (it was enabled before this run)"),
                    q(self.enable))
            back = (f"{self.service}.boot", q(f"disable {self.service} at boot (it was not enabled before this run)"),
                    q(f"if {test}; then {self.disable}; fi"))
        else:
            test = f"pgrep -x {q(self.daemon)} >/dev/null 2>&1"
            unset = (f'[ ! -e "$_pv_run/services/{self.service}.run" ] && '
                     f'[ ! -e "$_pv_run/services/{self.service}.stop" ]')
            # A service that ran comes back after the files (.run); one that did not is stopped before them
            # (.stop), while the configuration it runs with is still there to stop it with.
            gone = (f"_i=0; while {test}; do _i=$((_i+1)); if [ $_i -gt 100 ]; then "
                    f"echo {q(f'{self.service} still runs after stop')} >&2; exit 1; fi; sleep 0.1; done")
            kept = (f"{self.service}.run", q(f"bring {self.service} back with the restored configuration"),
                    q(self.back_running))
            back = (f"{self.service}.stop", q(f"stop {self.service} (it was not running before this run)"),
                    q(f"if {test}; then {self.stop}; fi; {gone}"))
        return (
            f"if {unset}; then "
            f"if {test}; then _pv_service {q(kept[0])} {kept[1]} {kept[2]}; "
            f"else _pv_service {q(back[0])} {back[1]} {back[2]}; fi; fi"
        )


@dataclass(frozen=True)
class Undo:
    """Record, before what follows, code that a rollback runs to take it back."""

    description: str
    code: str

    def describe(self) -> str:
        return f"on rollback: {self.description}"

    def render(self) -> str:
        return f"_pv_undo {q(self.description)} {q(self.code)}"


@dataclass(frozen=True)
class Journaled:
    """An action preceded by journal bookkeeping that the plan does not show (its describe() is the action's)."""

    action: "Action"
    before: tuple["Action", ...] = ()

    def describe(self) -> str:
        return self.action.describe()

    def render(self) -> str:
        return "\n".join([*(a.render() for a in self.before), self.action.render()])


Action = Union[Command, Shell, WriteFile, SetAttributes, MakeDirectory, RemoveFile, Keep, RevertFile, SelfSignedCertificate,
               JoinGroup, LeaveGroup, CreateGroup, KeepService, Undo, Journaled]


def one_line(actions) -> str:
    """Actions as one line of code (for an Undo, or a service record), each command ended by ``;``."""
    return " ".join(line.rstrip(";") + ";" for a in actions for line in a.render().splitlines())
