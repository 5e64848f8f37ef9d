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
%config(noreplace) file). The edit is written through to the link's target
(the shared managed-file policy, steps/files.py: a link inside /etc is
followed): alternatives owns that path as a link (it re-links it when postfix
is updated or the MTA is switched), so replacing the link with a file would
fight it, while an edited %config(noreplace) file survives package upgrades.
A dangling link is replaced by a regular file.

libpam keeps a CR at the end of a line ('@include common-auth\r' cannot be
opened, and every login fails): CR line endings are drift, rewritten with LF.
A pam_listfile line that names the allow file is the managed line in any
form (onerr=succeed, sense=deny...): it is replaced, never left next to ours.
"""

from __future__ import annotations

from provisioner.desired import PAM_ALLOW_FILE, PAM_LISTFILE_LINE, PAM_SMTP, allow_file_content
from provisioner.probes import FactSpec
from provisioner.platforms import union_paths
from provisioner.vars import MailVars
from provisioner.model import Change, CreateGroup
from provisioner.steps.accounts import create_group, in_group, join_group, leave_group
from provisioner.steps.base import Context, Step, StepError
from provisioner.steps.files import attributes_change, has_cr, with_lf, write_change

# saslauthd caches successful logins (-c on Debian): a change that can revoke access restarts it.
REVOKE = frozenset({"saslauthd:restart"})


class PamError(StepError):
    """The inventory asks for something the host cannot give (e.g. a missing user)."""


# ------------------------------------------------------------ /etc/pam.d/smtp


def _is_directive(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _norm(line: str) -> str:
    return " ".join(line.split())


def first_directive(text: str) -> str | None:
    """The first line of a PAM file that is neither blank nor a comment."""
    return next((line for line in text.splitlines() if _is_directive(line)), None)


def names_allow_file(line: str, allow_file: str = PAM_ALLOW_FILE) -> bool:
    """A pam_listfile directive reading the allow file: the managed line, whatever its other arguments say."""
    if not _is_directive(line):
        return False
    words = line.split()
    return any(w.rsplit("/", 1)[-1] == "pam_listfile.so" for w in words) and f"file={allow_file}" in words


def _restriction(text_line: str, line: str) -> bool:
    """``line`` itself, or any other form of it."""
    return names_allow_file(text_line) or (_is_directive(text_line) and _norm(text_line) == _norm(line))


def restriction_first(text: str, line: str = PAM_LISTFILE_LINE) -> bool:
    """``line`` is the first directive, and no other line reads the allow file."""
    first = first_directive(text)
    if first is None or _norm(first) != _norm(line):
        return False
    return sum(1 for l in text.splitlines() if _restriction(l, line)) == 1


def put_first(text: str, line: str = PAM_LISTFILE_LINE) -> str:
    """``text`` with ``line`` as its first directive, everything else kept.

    Other copies of the line, and every other pam_listfile line that reads the
    allow file (an edited copy of ours), are removed (the line moves); it goes
    right before the first directive, so leading comments such as
    ``#%PAM-1.0`` stay on top.
    """
    if restriction_first(text, line):
        return text
    kept = [l for l in text.splitlines(keepends=True) if not _restriction(l, line)]
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
            # Where an alternatives link usually ends is gathered too: the
            # packages step predicts /etc/pam.d/smtp from it when it makes
            # postfix the mta alternative.
            files=(PAM_SMTP, *union_paths("pam_smtp_link_target"), PAM_ALLOW_FILE),
            users=tuple(vars.mail_users),
            groups=(vars.mail_group,),
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
        if state.known and state.content == content:
            # pam_listfile refuses a world-writable file (onerr=fail: nobody gets in).
            return attributes_change(self.name, state, "644", notify=REVOKE)
        return write_change(self.name, f"write {PAM_ALLOW_FILE}", state, content, notify=REVOKE)

    # -------------------------------------------------------- /etc/pam.d/smtp

    def _pam_smtp(self, ctx: Context) -> Change | None:
        state = ctx.facts.file(PAM_SMTP)
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
        crlf = has_cr(old)
        first = restriction_first(with_lf(old))
        if first and not crlf:
            # libpam reads it on each login: its attributes need no handler.
            return attributes_change(self.name, state, "644")
        new = put_first(with_lf(old))
        if first:
            summary = f"rewrite {PAM_SMTP} with LF line endings"
        else:
            summary = summary_edit + (" (and LF line endings)" if crlf else "")
        if state.from_package:
            summary += f" (file as shipped by {state.from_package})"
        return write_change(self.name, summary, state, new, notify=REVOKE, origin=state.from_package)
