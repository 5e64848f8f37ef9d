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
  mtime, never their binary content), or Postfix cannot read it, or its keys
  are not its source's (a .db newer than its source but edited with
  ``postmap -d``, restored or copied: the map probe lists its keys with
  ``postmap -s`` / ``postalias -s``, never its values). ``postmap`` for the
  virtual map, ``newaliases`` for /etc/aliases (never postmap: aliases(5)
  syntax differs).

Postfix looks maps up afresh: a rebuilt map needs no reload or restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.desired import ALIASES, VIRTUAL_MAP, render_virtual
from provisioner.probes import FactSpec, Probe
from provisioner.keyedit import ALIASES_SYNTAX, alias_line, alias_values, edit_keys
from provisioner.vars import MailVars
from provisioner.model import Change, Command, Facts, FileState, Journaled, Keep
from provisioner.steps.base import Context, Step
from provisioner.steps.files import attributes_change, write_change

VIRTUAL_DB = VIRTUAL_MAP + ".db"
ALIASES_DB = ALIASES + ".db"
MAP_PROBE = "aliases_maps"
# Keys postalias adds to every alias database of its own: "@" (Sendmail's sign that the database is
# complete) and the NIS ones (as `postalias -s hash:/etc/aliases` lists them on Debian 12's Postfix 3.7).
POSTALIAS_OWN_KEYS = frozenset({"@", "YP_LAST_MODIFIED", "YP_MASTER_NAME"})


@dataclass(frozen=True)
class MapRead:
    """What Postfix's own tool reads from a map's .db: whether it opens, and its keys."""

    status: int  # exit status of postmap -s / postalias -s
    keys: frozenset[str] = frozenset()


def map_probe_script() -> str:
    """Each map's .db read as Postfix reads it; keys only (a value may be a pipe command or an address)."""
    return (
        "_pm() { [ -f \"$1.db\" ] || return 0; command -v \"$2\" >/dev/null 2>&1 || return 0; "
        "_o=$(\"$2\" -s \"hash:$1\" 2>/dev/null); printf 'M\\t%s\\t%s\\n' \"$1\" \"$?\"; "
        "printf '%s\\n' \"$_o\" | awk -v p=\"$1\" 'NF { k = $1; sub(/:$/, \"\", k); print \"K\\t\" p \"\\t\" k }'; }; "
        f"_pm {VIRTUAL_MAP} postmap; _pm {ALIASES} postalias; true"
    )


def parse_map_reads(text: str) -> dict[str, MapRead]:
    """``M<TAB>source<TAB>status`` then ``K<TAB>source<TAB>key`` lines."""
    status: dict[str, int] = {}
    keys: dict[str, set[str]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        kind, path, value = parts
        if kind == "M" and value.strip().isdigit():
            status[path] = int(value)
        elif kind == "K":
            keys.setdefault(path, set()).add(value)
    return {path: MapRead(code, frozenset(keys.get(path, ())) if code == 0 else frozenset())
            for path, code in status.items()}


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


def source_keys(path: str, content: str) -> frozenset[str]:
    """The keys a map's source defines, folded to lower case as postmap and postalias store them."""
    if path == ALIASES:
        found = ALIASES_SYNTAX.definitions(content.splitlines(keepends=True))
    else:
        found = parse_map(content)
    return frozenset(key.lower() for key in found)


def rebuild_reason(source: FileState, db: FileState, source_rewritten: bool,
                   read: MapRead | None = None) -> str | None:
    """Why a map's .db must be rebuilt, or None. ``read``: the map probe's reading (None: not probed)."""
    if not db.exists:
        return "missing"
    if source_rewritten:
        return "its source changed"
    if source.mtime is not None and db.mtime is not None and db.mtime < source.mtime:
        return "older than its source"
    if read is not None:
        if read.status != 0:
            return "unreadable"
        if source.content is not None:
            keys = read.keys - POSTALIAS_OWN_KEYS if source.path == ALIASES else read.keys
            if {key.lower() for key in keys} != source_keys(source.path, source.content):
                return "its keys differ from its source"
    return None


def _db_effect(path: str):
    def effect(f: Facts) -> Facts:
        source = f.file(path[: -len(".db")])
        f = f.with_file(FileState(path, exists=True, mode="644", owner="root", group="root", mtime=source.mtime))
        reads = f.extra.get(MAP_PROBE)
        if reads is not None and source.content is not None:
            read = MapRead(0, source_keys(source.path, source.content))
            f = f.replace(extra={**f.extra, MAP_PROBE: {**reads, source.path: read}})
        return f

    return effect


def map_read(facts: Facts, source: str) -> MapRead | None:
    reads = facts.extra.get(MAP_PROBE)
    return None if reads is None else reads.get(source)


# ------------------------------------------------------------------ step


class Aliases(Step):
    name = "aliases"

    def needs(self, vars: MailVars) -> FactSpec:
        return FactSpec(
            files=(VIRTUAL_MAP, ALIASES),
            # Binary databases: only digest, attributes and mtime are wanted.
            secret_files=(VIRTUAL_DB, ALIASES_DB),
            extra=(Probe(MAP_PROBE, map_probe_script(), parse_map_reads),),
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
        reason = rebuild_reason(state, facts.file(VIRTUAL_DB), rewritten, map_read(facts, VIRTUAL_MAP))
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
        reason = rebuild_reason(state, facts.file(ALIASES_DB), rewritten, map_read(facts, ALIASES))
        if reason:
            changes.append(Change(
                step=self.name,
                summary=f"rebuild {ALIASES_DB} ({reason})",
                actions=(Journaled(Command(("newaliases",)), (Keep(ALIASES_DB),)),),
                effect=_db_effect(ALIASES_DB),
            ))
        return changes
