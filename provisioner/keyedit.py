"""Editing key/value files in place: main.cf, shell-variable files and /etc/aliases.

One algorithm for every format: comments and unmanaged keys stay where they
are; a managed key replaces its first active definition where it stands and
the later ones are dropped; with no active definition, its first
commented-out one (``#key = ...``) is replaced; else it is appended. A key
whose wanted value is None is removed. A ``Syntax`` says what a definition,
a commented-out definition and an unchanged value are in its format, and how
a line is written.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Mapping, Protocol


@dataclass(frozen=True)
class Definition:
    """One active definition: lines [start, end) of the file (continuation lines included)."""

    key: str
    start: int
    end: int
    value: str  # as written, continuation lines joined
    # The definition's own lines: its head and continuation lines, not the comment
    # and blank lines between them (they stay when the definition is replaced).
    lines: tuple[int, ...] = ()

    @property
    def own_lines(self) -> tuple[int, ...]:
        return self.lines or tuple(range(self.start, self.end))


class Syntax(Protocol):
    # Starts a file that had nothing to keep.
    header: str
    # Whether a file of blank lines counts as having nothing to keep.
    blank_is_empty: bool
    # Whether an edit also ends a last line that lacks its newline (else only an append does).
    ends_lines: bool

    def definitions(self, lines: list[str]) -> dict[str, list[Definition]]: ...

    def commented(self, lines: list[str]) -> dict[str, int]: ...

    def orphans(self, lines: list[str], head: int) -> list[int]:
        """Lines that go with the commented-out definition at ``head`` when it is replaced."""
        ...

    def is_set(self, found: list[Definition], value: str) -> bool: ...

    def render(self, key: str, value: str, replacing: str | None) -> str: ...


@dataclass(frozen=True)
class KeyEdit:
    text: str
    set_keys: list[str] = field(default_factory=list)  # keys written, in the order of the settings
    removed: list[str] = field(default_factory=list)  # keys that must not be set and were
    found: dict[str, list[Definition]] = field(default_factory=dict)  # the active definitions before


def edit_keys(text: str, settings: Mapping[str, str | None], syntax: Syntax) -> KeyEdit:
    lines = text.splitlines(keepends=True)
    found = syntax.definitions(lines)
    commented = syntax.commented(lines)
    replace: dict[int, str] = {}
    drop: set[int] = set()
    appended: list[str] = []
    set_keys: list[str] = []
    removed: list[str] = []
    for key, value in settings.items():
        defined = found.get(key, [])
        if value is None:
            if defined:
                removed.append(key)
                for entry in defined:
                    drop.update(entry.own_lines)
            continue
        if defined and syntax.is_set(defined, value):
            continue
        set_keys.append(key)
        if defined:
            first, *rest = defined
            replace[first.start] = syntax.render(key, value, lines[first.start])
            drop.update(first.own_lines[1:])
            for entry in rest:
                drop.update(entry.own_lines)
        elif key in commented and commented[key] not in replace:
            replace[commented[key]] = syntax.render(key, value, lines[commented[key]])
            # Its uncommented continuation lines, which Postfix reads as part of the entry above: they go with it.
            drop.update(syntax.orphans(lines, commented[key]))
        else:
            appended.append(syntax.render(key, value, None))
    out: list[str] = []
    for index, line in enumerate(lines):
        if index in replace:
            out.append(replace[index])
        elif index not in drop:
            out.append(line)
    if out and not out[-1].endswith("\n") and (syntax.ends_lines or appended):
        out[-1] += "\n"
    if appended and not (text.strip() if syntax.blank_is_empty else text):
        out = [syntax.header] if syntax.header else []
    out.extend(appended)
    return KeyEdit("".join(out), set_keys, removed, found)


def first_lines(lines: list[str], pattern: re.Pattern, skip: re.Pattern | None = None) -> dict[str, int]:
    """Per key (``pattern``'s first group), the index of the first line that matches (and not ``skip``)."""
    found: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = None if skip and skip.match(line) else pattern.match(line)
        if match:
            found.setdefault(match.group(1), index)
    return found


def is_skipped(line: str) -> bool:
    """A blank or comment line: Postfix's reader skips it, also inside a logical line."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def is_continuation(line: str) -> bool:
    return line[:1] in (" ", "\t") and not is_skipped(line)


def logical_lines(lines: list[str]) -> list[tuple[int, ...]]:
    """The logical lines of a Postfix-style file (main.cf, master.cf, aliases(5), lookup tables).

    As Postfix's readlline reads them: a line at column 0 that is neither blank nor a comment starts a
    logical line; an indented line continues the last one, even across comment and blank lines, which
    are skipped. Each logical line is the indices of its physical lines, head first. Indented lines
    before the first logical line belong to none (Postfix ignores them with a warning).
    """
    found: list[tuple[int, ...]] = []
    current: list[int] = []
    for index, line in enumerate(lines):
        if is_skipped(line):
            continue
        if line[:1] in (" ", "\t"):
            if current:
                current.append(index)
            continue
        if current:
            found.append(tuple(current))
        current = [index]
    if current:
        found.append(tuple(current))
    return found


def orphan_lines(lines: list[str], head: int, commented_head: re.Pattern) -> list[int]:
    """The uncommented continuation lines after the commented-out entry at ``head``.

    Postfix reads them as part of the logical line above the comment; they belong to the commented
    entry, and go with it when it is replaced. They end at the next line at column 0 that is not a
    comment, or at the next commented-out entry.
    """
    found: list[int] = []
    for index in range(head + 1, len(lines)):
        line = lines[index]
        if is_skipped(line):
            if commented_head.match(line):
                break
            continue
        if line[:1] not in (" ", "\t"):
            break
        found.append(index)
    return found


def entries(lines: list[str], pattern: re.Pattern, *, eol: str = "\n", lower: bool = False,
            strip_first: bool = True) -> dict[str, list[Definition]]:
    """Definitions: logical lines whose head matches ``pattern`` (key, value).

    Each continuation line's text joins the value after one space (see ``logical_lines``).
    """
    found: dict[str, list[Definition]] = {}
    for own in logical_lines(lines):
        match = pattern.match(lines[own[0]].rstrip(eol))
        if not match:
            continue
        parts = [match.group(2).strip() if strip_first else match.group(2)]
        parts += [lines[index].strip() for index in own[1:]]
        key = match.group(1).strip().lower() if lower else match.group(1)
        found.setdefault(key, []).append(Definition(key, own[0], own[-1] + 1, " ".join(parts), own))
    return found


# ------------------------------------------------------------------ main.cf

MAIN_CF_ACTIVE_RE = re.compile(r"^([A-Za-z0-9_]+)\s*=\s?(.*)$")
# "#key = value" is a commented-out setting; "# key = (prose)" is a sentence about it.
MAIN_CF_COMMENTED_RE = re.compile(r"^#([A-Za-z0-9_]+)\s*=")
MAIN_CF_HEADER = "# Postfix main.cf, managed by provisioner: managed keys are rewritten on each run.\n"


def normalize(value: str) -> str:
    """A main.cf value as Postfix reads it: whitespace folded, blanks around commas ignored."""
    value = " ".join(value.split())
    return re.sub(r"\s*,\s*", ", ", value)


def main_cf_line(key: str, value: str) -> str:
    return f"{key} = {value}\n" if value else f"{key} =\n"


@dataclass(frozen=True)
class MainCfSyntax:
    header: str = MAIN_CF_HEADER
    blank_is_empty: bool = False
    ends_lines: bool = True

    def definitions(self, lines: list[str]) -> dict[str, list[Definition]]:
        """Per key, its active definitions (the last one wins in Postfix), with continuation lines."""
        return entries(lines, MAIN_CF_ACTIVE_RE)

    def commented(self, lines: list[str]) -> dict[str, int]:
        return first_lines(lines, MAIN_CF_COMMENTED_RE)

    def orphans(self, lines: list[str], head: int) -> list[int]:
        return orphan_lines(lines, head, MAIN_CF_COMMENTED_RE)

    def is_set(self, found: list[Definition], value: str) -> bool:
        return len(found) == 1 and normalize(found[0].value) == normalize(value)

    def render(self, key: str, value: str, replacing: str | None) -> str:
        return main_cf_line(key, value)


MAIN_CF_SYNTAX = MainCfSyntax()


def current_values(text: str) -> dict[str, str]:
    """Effective main.cf values: the last definition of each key."""
    found = MAIN_CF_SYNTAX.definitions(text.splitlines(keepends=True))
    return {key: defined[-1].value for key, defined in found.items()}


def edit_main_cf(text: str, settings: Mapping[str, str | None]) -> tuple[str, list[str], list[str]]:
    """Return (new text, keys set, keys removed) for ``settings`` applied to ``text``."""
    edit = edit_keys(text, settings, MAIN_CF_SYNTAX)
    return edit.text, edit.set_keys, edit.removed


# ------------------------------------------------------------------ KEY=VALUE shell files

SHELL_ASSIGN_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
SHELL_COMMENTED_RE = re.compile(r"^\s*#+\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
PLAIN_VALUE_RE = re.compile(r"^[A-Za-z0-9_./:@%+,-]+$")
UNSAFE_IN_QUOTES = set('"\\$`\n')


def shell_value(raw: str) -> str | None:
    """The value a shell assigns from the text after ``KEY=``; None if it is not one word."""
    try:
        words = shlex.split(raw, comments=True, posix=True)
    except ValueError:
        return None
    if not words:
        return ""
    if len(words) > 1 or raw[:1].isspace():
        # `KEY=a b` runs command b with KEY=a in its environment: not an assignment we can trust.
        return None
    return words[0]


def shell_assignments(text: str) -> dict[str, str | None]:
    """Effective value of each variable (the last assignment wins, as in the shell)."""
    values: dict[str, str | None] = {}
    for line in text.splitlines():
        match = SHELL_ASSIGN_RE.match(line)
        if match:
            values[match.group(1)] = shell_value(match.group(2))
    return values


def shell_line(key: str, value: str, quoted: bool) -> str:
    if any(c in UNSAFE_IN_QUOTES for c in value):
        raise ValueError(f"{key}: value {value!r} cannot be written safely")
    if quoted or not PLAIN_VALUE_RE.match(value):
        return f'{key}="{value}"\n'
    return f"{key}={value}\n"


@dataclass(frozen=True)
class ShellVarsSyntax:
    """Shell-variable files (/etc/default/saslauthd, /etc/sysconfig/saslauthd)."""

    header: str = ""
    blank_is_empty: bool = True
    ends_lines: bool = True

    def definitions(self, lines: list[str]) -> dict[str, list[Definition]]:
        found: dict[str, list[Definition]] = {}
        for index, line in enumerate(lines):
            match = SHELL_ASSIGN_RE.match(line)
            if match:
                found.setdefault(match.group(1), []).append(Definition(match.group(1), index, index + 1, match.group(2)))
        return found

    def commented(self, lines: list[str]) -> dict[str, int]:
        return first_lines(lines, SHELL_COMMENTED_RE, skip=SHELL_ASSIGN_RE)

    def orphans(self, lines: list[str], head: int) -> list[int]:
        return []  # one line per assignment

    def is_set(self, found: list[Definition], value: str) -> bool:
        # By the shell's reading: the last assignment wins, quoting does not matter.
        return shell_value(found[-1].value) == value

    def render(self, key: str, value: str, replacing: str | None) -> str:
        """A replacement keeps the quoting style of the line it replaces."""
        match = (SHELL_ASSIGN_RE.match(replacing) or SHELL_COMMENTED_RE.match(replacing)) if replacing else None
        return shell_line(key, value, bool(match) and match.group(2).startswith('"'))


def edit_shell_vars(text: str, settings: Mapping[str, str], header: str = "") -> tuple[str, list[str]]:
    """Apply ``settings`` to a KEY=VALUE shell file; return (new text, keys changed).

    ``header`` starts a file that was empty. A file already as wanted comes back as it is.
    """
    edit = edit_keys(text, settings, ShellVarsSyntax(header=header))
    if not edit.set_keys:
        return text, []
    return edit.text, edit.set_keys


# ------------------------------------------------------------------ aliases(5)

ALIAS_ENTRY_RE = re.compile(r"^([^\s#:][^:]*?)\s*:(.*)$")
COMMENTED_ALIAS_RE = re.compile(r"^#\s*([^\s#:][^:]*?)\s*:")


def alias_values(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def alias_line(name: str, value: str) -> str:
    return f"{name}:\t\t{value}\n"


@dataclass(frozen=True)
class AliasesSyntax:
    """/etc/aliases: ``name: value, value`` entries with continuation lines; names are case-insensitive."""

    header: str = ""
    blank_is_empty: bool = False
    # The file is left byte for byte but for the entries it replaces.
    ends_lines: bool = False

    def definitions(self, lines: list[str]) -> dict[str, list[Definition]]:
        return entries(lines, ALIAS_ENTRY_RE, eol="\r\n", lower=True, strip_first=False)

    def commented(self, lines: list[str]) -> dict[str, int]:
        return first_lines(lines, COMMENTED_ALIAS_RE)

    def orphans(self, lines: list[str], head: int) -> list[int]:
        return orphan_lines(lines, head, COMMENTED_ALIAS_RE)

    def is_set(self, found: list[Definition], value: str) -> bool:
        return len(found) == 1 and alias_values(found[0].value) == [value]

    def render(self, key: str, value: str, replacing: str | None) -> str:
        return alias_line(key, value)


ALIASES_SYNTAX = AliasesSyntax()
