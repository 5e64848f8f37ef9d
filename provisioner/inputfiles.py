"""Reading the files a user gives us (inventory, credentials, ssh config), bounded and strict.

Every problem becomes one ``InputError`` line naming the file:

* not a regular file (a directory, a FIFO), unreadable, larger than
  MAX_BYTES, not UTF-8;
* YAML: malformed, more than one document, a key given twice in one mapping,
  nesting deeper than MAX_DEPTH, more than MAX_NODES nodes once aliases are
  expanded (a "billion laughs" file is refused after reading a few hundred
  bytes, before anything is built from it), a recursive alias, a string
  holding a control character.

Anchors and aliases within those bounds (and ``<<`` merge keys) work.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from provisioner.validation import InputError, shown, unprintable

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_NODES = 100_000


def stat_input(path: str | os.PathLike[str], what: str) -> os.stat_result:
    """``os.stat`` of a file the user named; a missing or unreachable one is an InputError."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None


def read_text(path: str | os.PathLike[str], what: str, limit: int = MAX_BYTES) -> str:
    """The text of a small regular UTF-8 file (``/dev/null`` reads as empty); ``what``: "inventory file"..."""
    name = str(path)
    info = stat_input(name, what)
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{name}: is a directory, not the {what}")
    if os.path.realpath(name) == os.devnull:
        return ""
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{name}: is not a regular file (expected the {what})")
    try:
        with open(name, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{name}: cannot read the {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"{name}: the {what} is larger than {limit // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{name}:{line}: the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
    return text.removeprefix("\ufeff")


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and deep nesting while it composes."""

    def __init__(self, stream: str, name: str):
        super().__init__(stream)
        self.name = name
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise InputError(f"{self.name}:{mark.line + 1}:{mark.column + 1}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                mark = key_node.start_mark
                raise InputError(
                    f"{self.name}:{mark.line + 1}:{mark.column + 1}: duplicate key {shown(key)} "
                    f"(first given on line {seen[key].line + 1})"
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _expanded_nodes(root: yaml.Node, name: str) -> int:
    """How many nodes the document has once every alias is expanded (computed without expanding)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            mark = node.start_mark
            raise InputError(f"{name}:{mark.line + 1}:{mark.column + 1}: recursive alias")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def load_yaml(path: str | os.PathLike[str], what: str) -> Any:
    """Parse a YAML file within the bounds above; None for an empty file."""
    name = str(path)
    text = read_text(path, what)
    loader = None
    try:
        loader = _Loader(text, name)
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_nodes(node, name) > MAX_NODES:
            raise InputError(f"{name}: more than {MAX_NODES} YAML nodes once aliases are expanded; refusing to expand it")
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        if problem.startswith("but ") and exc.context:
            problem = f"{exc.context}, {problem}"
        raise InputError(f"{name}{where}: malformed YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise InputError(f"{name}:{line}: malformed YAML: character U+{exc.character:04X} is not allowed") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{name}: malformed YAML: {' '.join(str(exc).split())[:200]}") from None
    finally:
        if loader is not None:
            loader.dispose()
    bad = _unprintable_string(data, ())
    if bad:
        where, code, kind = bad
        raise InputError(f"{name}: {where}: control character {code} in a {kind}")
    return data


def key_path(parts: tuple[Any, ...]) -> str:
    """``hosts.mail1.vars`` for the keys leading to a value; odd keys are quoted."""
    shown_parts = []
    for part in parts:
        text = str(part)
        plain = isinstance(part, (str, int)) and 0 < len(text) <= 64 and text.isprintable() and not set(text) & set(". '\"")
        shown_parts.append(text if plain else shown(part))
    return ".".join(shown_parts) or "(top level)"


def _unprintable_string(node: Any, parts: tuple[Any, ...]) -> tuple[str, str, str] | None:
    """(where, U+XXXX, "key" or "value") of the first string in the data that holds a control character."""
    if isinstance(node, str):
        code = unprintable(node)
        return (key_path(parts), code, "value") if code else None
    if isinstance(node, dict):
        for key, value in node.items():
            code = unprintable(key) if isinstance(key, str) else None
            if code:
                return key_path((*parts, key)), code, "key"
            found = _unprintable_string(value, (*parts, key))
            if found:
                return found
    if isinstance(node, list):
        for index, value in enumerate(node):
            found = _unprintable_string(value, (*parts, index))
            if found:
                return found
    return None
