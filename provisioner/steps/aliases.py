"""Aliases: the virtual alias map and the root alias, and their databases.

* /etc/postfix/virtual_users is written whole from ``virtual_aliases`` (in the
  inventory's order, aligned, with a header). It is written even when empty:
  main.cf's ``virtual_alias_maps = hash:/etc/postfix/virtual_users`` needs it.
* /etc/aliases is edited in place: the ``root:`` alias replaces an active
  ``root:`` entry, else the commented ``#root:`` example (EL's setup package
  ships ``#root:		marc``), else it is appended. A missing file is created
  with ``postmaster: root`` (Debian's postinst does the same). The summary,
  "set root: X in /etc/aliases", is the same whether the file is edited,
  created, or not known yet: on Debian postfix's postinst creates it during
  the install, so a dry run sees no file where the real run sees one.
* Databases are rebuilt only when needed: when the source changes in this
  run, or the .db is missing, or older than its source (mtimes from the file
  facts; the .db files are gathered as secret files: digest, attributes and
  mtime, never their binary content). ``postmap`` for the virtual map,
  ``newaliases`` for /etc/aliases (never postmap: aliases(5) syntax differs).

Postfix looks maps up afresh: a rebuilt map needs no reload or restart.
"""

from __future__ import annotations

from provisioner.desired import ALIASES, VIRTUAL_MAP, render_virtual
from provisioner.probes import FactSpec
from provisioner.keyedit import ALIASES_SYNTAX, alias_line, alias_values, edit_keys
from provisioner.vars import MailVars
from provisioner.model import Change, Command, Facts, FileState, Journaled, Keep
from provisioner.steps.base import Context, Step
from provisioner.steps.files import attributes_change, write_change

VIRTUAL_DB = VIRTUAL_MAP + ".db"
ALIASES_DB = ALIASES + ".db"


# ------------------------------------------------------------------ virtual map


def parse_map(text: str) -> dict[str, str]:
    """``key value`` lines of a Postfix lookup table source (first definition wins)."""
    entries: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[:1] in (" ", "\t") and last is not None:
            entries[last] += " " + stripped
            continue
        parts = stripped.split(None, 1)
        key, value = parts[0], parts[1].strip() if len(parts) > 1 else ""
        last = None
        if key not in entries:
            entries[key] = value
            last = key
    return entries


def describe_map_change(old: dict[str, str], new: dict[str, str]) -> str:
    parts = []
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k in new if k in old and " ".join(old[k].split()) != " ".join(new[k].split())]
    if added:
        parts.append("add " + ", ".join(f"{k} -> {new[k]}" for k in added))
    if changed:
        parts.append("change " + ", ".join(f"{k} -> {new[k]} (was {old[k]})" for k in changed))
    if removed:
        parts.append("remove " + ", ".join(removed))
    return "; ".join(parts) or "rewrite it in the managed layout"


# ------------------------------------------------------------------ /etc/aliases


def edit_aliases(text: str, root_alias: str) -> tuple[str, str | None]:
    """Set ``root: root_alias`` in aliases(5) text; return (new text, the old root value or None).

    The old value is "" when the entry was only the commented example (or absent).
    """
    edit = edit_keys(text, {"root": root_alias}, ALIASES_SYNTAX)
    if not edit.set_keys:
        return text, None
    roots = edit.found.get("root")
    return edit.text, (", ".join(alias_values(roots[0].value)) or "empty") if roots else ""


def new_aliases_file(root_alias: str | None) -> str:
    text = "# See man 5 aliases for format\npostmaster:    root\n"
    if root_alias:
        text += alias_line("root", root_alias)
    return text


# ------------------------------------------------------------------ databases


def rebuild_reason(source: FileState, db: FileState, source_rewritten: bool) -> str | None:
    if not db.exists:
        return "missing"
    if source_rewritten:
        return "its source changed"
    if source.mtime is not None and db.mtime is not None and db.mtime < source.mtime:
        return "older than its source"
    return None


def _db_effect(path: str):
    def effect(f: Facts) -> Facts:
        source = f.file(path[: -len(".db")])
        return f.with_file(FileState(path, exists=True, mode="644", owner="root", group="root", mtime=source.mtime))

    return effect


# ------------------------------------------------------------------ step


class Aliases(Step):
    name = "aliases"

    def needs(self, vars: MailVars) -> FactSpec:
        return FactSpec(
            files=(VIRTUAL_MAP, ALIASES),
            # Binary databases: only digest, attributes and mtime are wanted.
            secret_files=(VIRTUAL_DB, ALIASES_DB),
        )

    def check(self, ctx: Context) -> list[Change]:
        return self._virtual(ctx.vars, ctx.facts) + self._aliases(ctx.vars, ctx.facts)

    def _virtual(self, vars: MailVars, facts: Facts) -> list[Change]:
        changes: list[Change] = []
        state = facts.file(VIRTUAL_MAP)
        new = render_virtual(vars.virtual_aliases)
        rewritten = not (state.exists and state.content == new)
        if rewritten:
            count = len(vars.virtual_aliases)
            counted = f"{count} alias{'es' if count != 1 else ''}" if count else "no aliases (an empty map)"
            if not state.exists:
                summary = f"create {VIRTUAL_MAP} with {counted}"
            elif state.content is None:
                summary = f"write {VIRTUAL_MAP} with {counted}"
            else:
                summary = f"update {VIRTUAL_MAP}: {describe_map_change(parse_map(state.content), vars.virtual_aliases)}"
            changes.append(write_change(self.name, summary, state, new))
        else:
            change = attributes_change(self.name, state, "644")
            if change:
                changes.append(change)
        reason = rebuild_reason(state, facts.file(VIRTUAL_DB), rewritten)
        if reason:
            changes.append(Change(
                step=self.name,
                summary=f"rebuild {VIRTUAL_DB} ({reason})",
                # The journal keeps the old database: postmap rewrites it in place.
                actions=(Journaled(Command(("postmap", VIRTUAL_MAP)), (Keep(VIRTUAL_DB),)),),
                effect=_db_effect(VIRTUAL_DB),
            ))
        return changes

    def _aliases(self, vars: MailVars, facts: Facts) -> list[Change]:
        changes: list[Change] = []
        state = facts.file(ALIASES)
        root = vars.root_alias
        rewritten = False
        if not state.exists:
            summary = f"set root: {root} in {ALIASES}" if root else f"create {ALIASES} (postmaster: root)"
            changes.append(write_change(self.name, summary, state, new_aliases_file(root)))
            rewritten = True
        elif root and state.content is None:
            # Shipped by a package the plan installs first (content unknown
            # until then): the summary must not depend on its text.
            changes.append(Change(
                step=self.name,
                summary=f"set root: {root} in {ALIASES}",
                effect=lambda f: f.with_file(FileState(ALIASES, exists=True, from_package=state.from_package)),
            ))
            rewritten = True
        elif root:
            new, old_value = edit_aliases(state.content or "", root)
            if new != state.content:
                if old_value and not state.from_package:
                    summary = f"set root: {root} in {ALIASES} (was {old_value})"
                else:
                    summary = f"set root: {root} in {ALIASES}"
                changes.append(write_change(self.name, summary, state, new))
                rewritten = True
        if not rewritten:
            # postalias reads the source only when the database is rebuilt: no handler.
            change = attributes_change(self.name, state, "644")
            if change:
                changes.append(change)
        reason = rebuild_reason(state, facts.file(ALIASES_DB), rewritten)
        if reason:
            changes.append(Change(
                step=self.name,
                summary=f"rebuild {ALIASES_DB} ({reason})",
                actions=(Journaled(Command(("newaliases",)), (Keep(ALIASES_DB),)),),
                effect=_db_effect(ALIASES_DB),
            ))
        return changes
