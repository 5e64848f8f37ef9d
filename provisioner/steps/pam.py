"""PAM: only members of one group may authenticate to Postfix (the seed's restriction).

saslauthd checks passwords through the PAM service ``smtp``, so
/etc/pam.d/smtp must start with the pam_listfile line that accepts only the
groups listed in /etc/pam.d/mail_auth_group.allow. The group exists and holds
the inventory's mail users.

PAM reads its files, and the group database, on each authentication, so
nothing needs reloading for a change to apply, with one exception observed on
Debian (docs/notes/debian12-by-hand.md, pitfall 10): saslauthd runs there with
``-c``, which caches successful logins for hours, so a user taken out of the
group still authenticated until saslauthd was restarted. Every change that can
take access away (the allow file, /etc/pam.d/smtp, a member removed) therefore
notifies saslauthd:restart; creating the group or adding a member only grants
access and notifies nothing. (EL's saslauthd runs without -c; the restart is
harmless there.)

Changes come in this order so that the restriction is switched on last, once
the allow file and the group it names are in place: allow file, group,
members, then /etc/pam.d/smtp.

/etc/pam.d/smtp on EL is a symlink kept by alternatives (/etc/pam.d/smtp ->
/etc/alternatives/mta-pam -> /etc/pam.d/smtp.postfix, the postfix package's
%config(noreplace) file). The edit is written through to the link's target:
alternatives owns that path as a link (it re-links it when postfix is updated
or the MTA is switched), so replacing the link with a file would fight it,
while an edited %config(noreplace) file survives package upgrades. The core
file probe follows links, so the content seen is the target's; an extra probe
says whether the path is a link and where it ends. A dangling link is
replaced by a regular file.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.desired import PAM_ALLOW_FILE, PAM_LISTFILE_LINE, PAM_SMTP, allow_file_content
from provisioner.probes import FactSpec, Probe
from provisioner.platforms import union_paths
from provisioner.vars import MailVars
from provisioner.model import Change, CreateGroup, Facts, FileState, SetAttributes, WriteFile
from provisioner.steps.accounts import create_group, in_group, join_group, leave_group
from provisioner.steps.base import Context, Step, StepError
from provisioner.steps.files import unified_diff, write_change

LINK_PROBE = "pam_smtp_link"
# saslauthd caches successful logins (-c on Debian): a change that can revoke access restarts it.
REVOKE = frozenset({"saslauthd:restart"})


class PamError(StepError):
    """The inventory asks for something the host cannot give (e.g. a missing user)."""


@dataclass(frozen=True)
class Link:
    target: str  # fully resolved path ("" when it cannot be resolved)
    target_exists: bool


def parse_link(text: str) -> Link | None:
    """Output of the link probe: ``L<TAB>target<TAB>1|0`` when /etc/pam.d/smtp is a symlink."""
    for line in text.splitlines():
        parts = line.split("\t")
        if parts[0] == "L" and len(parts) >= 3:
            return Link(target=parts[1].strip(), target_exists=parts[2].strip() == "1")
    return None


LINK_SCRIPT = (
    f"if [ -L {PAM_SMTP} ]; then _t=$(readlink -f {PAM_SMTP}); "
    "if [ -n \"$_t\" ] && [ -f \"$_t\" ]; then _e=1; else _e=0; fi; "
    "printf 'L\\t%s\\t%s\\n' \"$_t\" \"$_e\"; fi; true"
)


# ------------------------------------------------------------ /etc/pam.d/smtp


def _is_directive(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _norm(line: str) -> str:
    return " ".join(line.split())


def first_directive(text: str) -> str | None:
    """The first line of a PAM file that is neither blank nor a comment."""
    return next((line for line in text.splitlines() if _is_directive(line)), None)


def restriction_first(text: str, line: str = PAM_LISTFILE_LINE) -> bool:
    first = first_directive(text)
    return first is not None and _norm(first) == _norm(line)


def put_first(text: str, line: str = PAM_LISTFILE_LINE) -> str:
    """``text`` with ``line`` as its first directive, everything else kept.

    Other copies of the line are removed (the line moves); it goes right
    before the first directive, so leading comments such as ``#%PAM-1.0`` stay
    on top.
    """
    if restriction_first(text, line):
        return text
    kept = [l for l in text.splitlines(keepends=True) if not (_is_directive(l) and _norm(l) == _norm(line))]
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    at = next((i for i, l in enumerate(kept) if _is_directive(l)), len(kept))
    kept.insert(at, line + "\n")
    return "".join(kept)


def new_pam_smtp(tail: tuple[str, ...], line: str = PAM_LISTFILE_LINE) -> str:
    return "".join(f"{l}\n" for l in (line, *tail))


# ------------------------------------------------------------ the step


class Pam(Step):
    name = "pam"

    def needs(self, vars: MailVars) -> FactSpec:
        return FactSpec(
            # Where an alternatives link usually ends is gathered too, so that a
            # rollback of a write through the link knows the file existed (and
            # restores it rather than deleting it).
            files=(PAM_SMTP, *union_paths("pam_smtp_link_target"), PAM_ALLOW_FILE),
            users=tuple(vars.mail_users),
            groups=(vars.mail_group,),
            extra=(Probe(LINK_PROBE, LINK_SCRIPT, parse_link),),
        )

    def check(self, ctx: Context) -> list[Change]:
        vars, facts = ctx.vars, ctx.facts
        group = vars.mail_group
        users = list(dict.fromkeys(vars.mail_users))
        missing = [user for user in users if user not in facts.users]
        if missing:
            raise PamError(
                f"{ctx.host}: mail_users names {', '.join(repr(u) for u in missing)}, "
                f"but no such user exists on {ctx.host}; create the account or take it out of mail_users"
            )

        changes: list[Change] = []
        allow = self._allow_file(ctx)
        if allow:
            changes.append(allow)

        if group not in facts.groups:
            changes.append(
                Change(
                    step=self.name,
                    summary=f"create group {group}",
                    actions=(CreateGroup(group),),
                    effect=lambda f: create_group(f, group),
                )
            )
        changes += [join_group(self.name, user, group) for user in users if not in_group(facts, user, group)]
        if vars.exclusive_membership:
            # Only explicit members (getent's list) can be removed; a user whose
            # primary group this is keeps it (gpasswd cannot take that away).
            changes += [leave_group(self.name, member, group, "exclusive membership", notify=REVOKE)
                        for member in facts.groups.get(group, ()) if member not in users]

        smtp = self._pam_smtp(ctx)
        if smtp:
            changes.append(smtp)
        return changes

    # -------------------------------------------------------- allow file

    def _allow_file(self, ctx: Context) -> Change | None:
        content = allow_file_content([ctx.vars.mail_group])
        state = ctx.facts.file(PAM_ALLOW_FILE)
        written = FileState(PAM_ALLOW_FILE, exists=True, content=content, mode="644", owner="root", group="root")
        if state.known and state.content == content:
            # pam_listfile refuses a world-writable file (onerr=fail: nobody gets in).
            if (state.mode, state.owner, state.group) in ((None, None, None), ("644", "root", "root")):
                return None
            return Change(
                step=self.name,
                summary=f"set mode 644, owner root:root on {PAM_ALLOW_FILE}",
                actions=(SetAttributes(PAM_ALLOW_FILE, mode="644", owner="root", group="root"),),
                notify=REVOKE,
                effect=lambda f: f.with_file(written),
            )
        return write_change(self.name, f"write {PAM_ALLOW_FILE}", state, content, notify=REVOKE)

    # -------------------------------------------------------- /etc/pam.d/smtp

    def _pam_smtp(self, ctx: Context) -> Change | None:
        facts = ctx.facts
        state = facts.file(PAM_SMTP)
        summary_edit = f"put the pam_listfile group restriction first in {PAM_SMTP}"

        if state.exists and state.content is None:
            # Shipped by a package this run installs: edited once its text is known.
            return Change(
                step=self.name,
                summary=f"{summary_edit} (file as shipped by {state.from_package})",
                actions=(),
                notify=REVOKE,
            )

        if not state.exists:
            # Absent, or a dangling link: a new regular file (mv replaces the link).
            new = new_pam_smtp(ctx.platform.pam_smtp_tail)
            return write_change(self.name, f"create {PAM_SMTP}", state, new, notify=REVOKE)

        old = state.content or ""
        if restriction_first(old):
            return None
        new = put_first(old)
        link = facts.extra.get(LINK_PROBE)
        target = PAM_SMTP
        if isinstance(link, Link) and link.target and link.target_exists:
            target = link.target  # write through the link, keep the link
        target_state = facts.file(target)
        # A rollback restores only files the facts know existed; a link target
        # that was not gathered is left out rather than deleted by a rollback.
        writes = (target,) if target == PAM_SMTP or target_state.exists else ()
        mode = target_state.mode if target != PAM_SMTP and target_state.mode else "644"
        summary = summary_edit + (f" (file as shipped by {state.from_package})" if state.from_package else "")

        def effect(f: Facts) -> Facts:
            f = f.with_file(FileState(PAM_SMTP, exists=True, content=new, mode=state.mode or "644",
                                      owner=state.owner or "root", group=state.group or "root",
                                      from_package=state.from_package))
            if target != PAM_SMTP:
                f = f.with_file(FileState(target, exists=True, content=new, mode=mode, owner="root", group="root"))
            return f

        # Not write_change: the text seen (and diffed) is the link's, the file written its target's.
        return Change(
            step=self.name,
            summary=summary,
            actions=(WriteFile(target, new, mode=mode),),
            diff=unified_diff(target, old, new),
            notify=REVOKE,
            writes=writes,
            effect=effect,
        )
