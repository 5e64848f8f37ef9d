"""main.cf: manage the keys the inventory gives, editing the file in place.

Comments and unmanaged keys stay where they are. A managed key is replaced
where it stands, even when it is commented out; a key that must not be set
is removed. Values compare the way Postfix reads them (whitespace folded,
blanks around commas ignored), so cosmetic edits are not drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provisioner.desired import MAIN_CF, main_cf_settings
from provisioner.facts import FactSpec
from provisioner.vars import MailVars
from provisioner.model import Change, FileState, WriteFile
from provisioner.steps.base import Context, Step, unified_diff

ACTIVE_RE = re.compile(r"^([A-Za-z0-9_]+)\s*=\s?(.*)$")
# "#key = value" is a commented-out setting; "# key = (prose)" is a sentence about it.
COMMENTED_RE = re.compile(r"^#([A-Za-z0-9_]+)\s*=")
RESTART_KEYS = {"inet_interfaces", "inet_protocols", "compatibility_level"}
HEADER = "# Postfix main.cf, managed by provisioner: managed keys are rewritten on each run.\n"


def normalize(value: str) -> str:
    value = " ".join(value.split())
    return re.sub(r"\s*,\s*", ", ", value)


@dataclass(frozen=True)
class Entry:
    key: str
    start: int  # first line index
    end: int  # one past the last continuation line
    value: str


def parse(text: str) -> tuple[list[str], dict[str, list[Entry]]]:
    """Lines of main.cf and, per key, its active definitions (the last one wins in Postfix)."""
    lines = text.splitlines(keepends=True)
    entries: dict[str, list[Entry]] = {}
    i = 0
    while i < len(lines):
        match = ACTIVE_RE.match(lines[i].rstrip("\n"))
        if not match:
            i += 1
            continue
        j = i + 1
        parts = [match.group(2)]
        while j < len(lines) and lines[j][:1] in (" ", "\t") and lines[j].strip() and not lines[j].lstrip().startswith("#"):
            parts.append(lines[j].strip())
            j += 1
        entries.setdefault(match.group(1), []).append(Entry(match.group(1), i, j, " ".join(p.strip() for p in parts)))
        i = j
    return lines, entries


def current_values(text: str) -> dict[str, str]:
    _, entries = parse(text)
    return {key: found[-1].value for key, found in entries.items()}


def render_line(key: str, value: str) -> str:
    return f"{key} = {value}\n" if value else f"{key} =\n"


def edit(text: str, settings: dict[str, str | None]) -> tuple[str, list[str], list[str]]:
    """Return (new text, keys set, keys removed) for ``settings`` applied to ``text``."""
    lines, entries = parse(text)
    replacements: dict[int, list[str]] = {}
    dropped: set[int] = set()
    appended: list[str] = []
    set_keys: list[str] = []
    removed: list[str] = []
    commented: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = COMMENTED_RE.match(line)
        if match and match.group(1) not in commented:
            commented[match.group(1)] = index
    for key, value in settings.items():
        found = entries.get(key, [])
        if value is None:
            if found:
                removed.append(key)
                for entry in found:
                    dropped.update(range(entry.start, entry.end))
            continue
        if found and len(found) == 1 and normalize(found[0].value) == normalize(value):
            continue
        set_keys.append(key)
        if found:
            first, *rest = found
            replacements[first.start] = [render_line(key, value)]
            dropped.update(range(first.start + 1, first.end))
            for entry in rest:
                dropped.update(range(entry.start, entry.end))
        elif key in commented and commented[key] not in replacements:
            replacements[commented[key]] = [render_line(key, value)]
        else:
            appended.append(render_line(key, value))
    out: list[str] = []
    for index, line in enumerate(lines):
        if index in replacements:
            out.extend(replacements[index])
        elif index not in dropped:
            out.append(line)
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    if appended:
        if not text:
            out.append(HEADER)
        out.extend(appended)
    return "".join(out), set_keys, removed


def describe(settings: dict[str, str | None], set_keys: list[str], removed: list[str]) -> str:
    parts = []
    if set_keys:
        parts.append("set " + ", ".join(f"{k} = {settings[k]}" if settings[k] else f"{k} =" for k in set_keys))
    if removed:
        parts.append("unset " + ", ".join(removed))
    return "; ".join(parts)


def notify_for(keys: list[str]) -> frozenset[str]:
    return frozenset({"postfix:restart" if RESTART_KEYS & set(keys) else "postfix:reload"})


class MainCf(Step):
    name = "main_cf"

    def facts(self, vars: MailVars) -> FactSpec:
        return FactSpec(files=(MAIN_CF,))

    def check(self, ctx: Context) -> list[Change]:
        settings = main_cf_settings(ctx.vars, ctx.platform)
        state = ctx.facts.file(MAIN_CF)
        wanted = sum(1 for v in settings.values() if v is not None)
        if state.exists and state.content is None:
            # Shipped by a package the plan installs first: its text is
            # known only once installed, so the summary cannot list keys.
            return [
                Change(
                    step=self.name,
                    summary=f"set {wanted} managed keys in {MAIN_CF} (file as shipped by {state.from_package})",
                    actions=(),
                    notify=frozenset({"postfix:restart"}),
                    effect=lambda f: f.with_file(FileState(MAIN_CF, exists=True, from_package=state.from_package)),
                )
            ]
        old = state.content or ""
        new, set_keys, removed = edit(old, settings)
        if new == old:
            return []
        if state.from_package:
            summary = f"set {wanted} managed keys in {MAIN_CF} (file as shipped by {state.from_package})"
        elif not state.exists:
            summary = f"create {MAIN_CF} with {wanted} managed keys"
        else:
            summary = f"update {MAIN_CF}: {describe(settings, set_keys, removed)}"
        return [
            Change(
                step=self.name,
                summary=summary,
                actions=(WriteFile(MAIN_CF, new, mode="644"),),
                diff=unified_diff(MAIN_CF, old if state.exists else None, new),
                notify=notify_for(set_keys + removed) if state.exists else frozenset({"postfix:restart"}),
                writes=(MAIN_CF,),
                effect=lambda f: f.with_file(FileState(MAIN_CF, exists=True, content=new, mode="644", owner="root", group="root")),
            )
        ]
