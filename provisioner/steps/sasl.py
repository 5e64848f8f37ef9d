"""Cyrus SASL for smtpd, and saslauthd checking passwords through PAM.

These concerns, one Change each:

* smtpd.conf (``platform.smtpd_sasl_conf``) is managed whole: it says only
  ``pwcheck_method: saslauthd`` and ``mech_list: PLAIN LOGIN``. Cyrus reads it
  in ``sasl_server_init()``, which smtpd calls once per smtpd process, before
  it enters its chroot. ``postfix reload`` makes master retire its smtpd
  processes after their current session, and the new ones read the new file:
  a reload is enough, no restart.
* another smtpd.conf that Cyrus finds first (``smtpd_sasl_conf_shadows``: on
  EL, /usr/lib64/sasl2, where earlier versions of this tool wrote it) is
  moved aside into the run's journal (removed, its copy journaled), after
  ours is written, so that smtpd always finds a right file and a rollback
  can put it back.
* saslauthd's settings (``/etc/default/saslauthd`` on Debian,
  ``/etc/sysconfig/saslauthd`` on EL) are shell-variable files shipped by the
  package. They are edited in place: comments and other variables stay, a
  managed variable is replaced where it stands (even when commented out) and
  appended when absent. saslauthd reads them only at start: saslauthd:restart.
* saslauthd's unit drop-in (``saslauthd_unit_dropin``, Debian 13): the native
  unit must create the socket directory inside the chroot and look for the
  pid file there. Written whole, then ``systemctl daemon-reload`` (again
  after a rollback puts the old one back); saslauthd:restart.
* Debian only (chrooted smtpd): saslauthd's socket lives inside Postfix's
  chroot, in /var/spool/postfix/var/run/saslauthd, which Debian's saslauthd
  init script creates (root:sasl 0710) from the -m option; so user postfix
  must be in group ``sasl`` to reach it. smtpd processes get their
  supplementary groups when master starts them: already running ones keep
  failing ("cannot connect to saslauthd server: Permission denied"), and
  ``postfix reload`` (new smtpd processes) was observed to be enough
  (docs/notes/debian12-by-hand.md, pitfall 11): postfix:reload.
"""

from __future__ import annotations

from typing import Mapping

from provisioner.desired import SMTPD_CONF
from provisioner.probes import FactSpec
from provisioner.keyedit import edit_shell_vars, shell_line
from provisioner.vars import MailVars
from provisioner.model import Change, Command, FileState, RemoveFile
from provisioner.platforms import union_paths
from provisioner.steps.accounts import in_group, join_group
from provisioner.steps.base import Context, Step
from provisioner.steps.files import attributes_change, has_cr, with_lf, write_change

SASL_GROUP = "sasl"
POSTFIX_USER = "postfix"
CREATED_HEADER = "# saslauthd settings, managed by provisioner.\n"


def describe_settings(settings: Mapping[str, str], keys: list[str]) -> str:
    return ", ".join(shell_line(key, settings[key], False).strip() for key in keys)


# ------------------------------------------------------------ the step


class Sasl(Step):
    name = "sasl"

    def needs(self, vars: MailVars) -> FactSpec:
        return FactSpec(
            files=(*union_paths("smtpd_sasl_conf"), *union_paths("smtpd_sasl_conf_shadows"),
                   *union_paths("saslauthd_defaults"), *union_paths("saslauthd_unit_dropin")),
            users=(POSTFIX_USER,),
            groups=(SASL_GROUP,),
        )

    def check(self, ctx: Context) -> list[Change]:
        changes = [self._smtpd_conf(ctx), *self._shadows(ctx), self._saslauthd(ctx), self._unit_dropin(ctx),
                   self._postfix_group(ctx)]
        return [change for change in changes if change is not None]

    # -------------------------------------------------------- smtpd.conf

    def _smtpd_conf(self, ctx: Context) -> Change | None:
        path = ctx.platform.smtpd_sasl_conf
        state = ctx.facts.file(path)
        if state.known and state.content == SMTPD_CONF:
            # Cyrus reads it when an smtpd process starts: its attributes need no handler.
            return attributes_change(self.name, state, "644")
        # "write" whether or not the file is there: a package may drop it
        # (EL's postfix ships one) without the platform saying so, and the dry
        # run must announce what the real run will do either way.
        if state.from_package:
            summary = f"write {path} (replacing the file shipped by {state.from_package})"
        else:
            summary = f"write {path}"
        return write_change(
            self.name, summary, state, SMTPD_CONF,
            notify=frozenset({"postfix:reload"}),
            # No diff against a shipped file whose text is not known yet (dry run).
            show_diff=not (state.exists and state.content is None),
            prelude=() if state.exists else (Command(("mkdir", "-p", path.rsplit("/", 1)[0])),),
        )

    def _shadows(self, ctx: Context) -> list[Change]:
        conf = ctx.platform.smtpd_sasl_conf
        changes = []
        for path, why in ctx.platform.smtpd_sasl_conf_shadows:
            if not ctx.facts.file(path).exists:
                continue
            changes.append(Change(
                step=self.name,
                summary=f"move {path} aside (read before {conf}; {why})",
                # The run's journal keeps it: a rollback puts it back, nothing is left beside it.
                actions=(RemoveFile(path),),
                notify=frozenset({"postfix:reload"}),
                writes=(path,),
                effect=lambda f, path=path: f.with_file(FileState(path)),
            ))
        return changes

    # -------------------------------------------------------- saslauthd settings

    def _saslauthd(self, ctx: Context) -> Change | None:
        path = ctx.platform.saslauthd_defaults
        settings = ctx.platform.saslauthd_settings
        state = ctx.facts.file(path)
        notify = frozenset({"saslauthd:restart"})
        # Names every managed variable, not only those that differ: the dry
        # run cannot read the shipped file, and both runs must say the same.
        shipped_summary = f"set {', '.join(settings)} in {path} (file as shipped by {state.from_package})"

        if state.exists and state.content is None:
            # Dropped by a package this run installs: its text is known only
            # once installed, so predict from what the package ships.
            as_shipped = ctx.platform.saslauthd_shipped
            shipped = as_shipped.values if state.from_package == as_shipped.package else {}
            if all(shipped.get(key) == value for key, value in settings.items()):
                return None
            return Change(
                step=self.name,
                summary=shipped_summary,
                actions=(),
                notify=notify,
            )

        old = state.content or ""
        # sh keeps a CR at the end of a line: START=yes^M reads as 'yes\r' and the init script
        # does not start saslauthd. CR line endings are drift, rewritten with LF.
        crlf = has_cr(old)
        new, changed = edit_shell_vars(with_lf(old), settings, header=CREATED_HEADER)
        if not changed and not crlf:
            # A root init script sources this file: root:root 0644 (read at start: no handler).
            return attributes_change(self.name, state, "644")
        if state.from_package:
            summary = shipped_summary
        elif state.exists:
            parts = (["rewrite it with LF line endings"] if crlf else []) + (
                [f"set {describe_settings(settings, changed)}"] if changed else [])
            summary = f"update {path}: {'; '.join(parts)}"
        else:
            summary = f"create {path} with {describe_settings(settings, list(settings))}"
        return write_change(self.name, summary, state, new, notify=notify, origin=state.from_package)

    # -------------------------------------------------------- saslauthd's unit

    def _unit_dropin(self, ctx: Context) -> Change | None:
        dropin = ctx.platform.saslauthd_unit_dropin
        if dropin is None:
            return None
        state = ctx.facts.file(dropin.path)
        if state.known and state.content == dropin.content:
            # systemd reads it at daemon-reload; a writable drop-in runs anything as root.
            return attributes_change(self.name, state, "644")
        reload_units = ctx.platform.reload_units()
        return write_change(
            self.name, f"write {dropin.path} ({dropin.why})", state, dropin.content,
            notify=frozenset({"saslauthd:restart"}),
            prelude=() if state.exists else (Command(("mkdir", "-p", dropin.path.rsplit("/", 1)[0])),),
            then=reload_units,
            after_restore=reload_units,
        )

    # -------------------------------------------------------- postfix in group sasl

    def _postfix_group(self, ctx: Context) -> Change | None:
        if not ctx.platform.postfix_chroot:
            return None  # EL: saslauthd's socket is outside any chroot, world-reachable
        if in_group(ctx.facts, POSTFIX_USER, SASL_GROUP):
            return None
        return join_group(self.name, POSTFIX_USER, SASL_GROUP, notify=frozenset({"postfix:reload"}))
