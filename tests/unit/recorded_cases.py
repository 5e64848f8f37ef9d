"""Loading recorded step cases, whose file contents may live in fixture files.

A case (tests/data/steps/<step>/<case>.json) names whole config files instead
of inlining them. Wherever a case holds file text -- a fact's ``content``, an
expected ``files`` entry, an expected ``diff``, a raw ``extra`` probe output --
it may give either the text itself or a reference:

    {"fixture": "el7/stock/main.cf"}
    {"fixture": "el7/installed/main.cf", "edits": [
        {"replace": "inet_interfaces = localhost\\n", "with": "inet_interfaces = all\\n"},
        {"delete": "#myorigin = $myhostname\\n"},
        {"append": "smtpd_tls_auth_only = yes\\n"}]}

Fixture names are paths under tests/data/fixtures/. A name with no file of its
own is a recipe: ``<name>.json`` holds ``{"fixture": base, "edits": [...]}``
(and a ``source`` saying where the edits come from), so a file derived from a
copied one (the stock main.cf once postfix-install has filled in its paths)
is written down once, as the edits that make it.

Edits apply in order, each to the text the previous one left:

- ``replace``/``with``: the old text must occur exactly once (or exactly
  ``count`` times, all replaced); anything else is an error, so an edit can
  never silently stop applying when a fixture changes;
- ``delete``: the same, replaced by nothing;
- ``append``: added at the end (the text before it must end with a newline).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
STEPS = DATA / "steps"
FIXTURES = DATA / "fixtures"


class CaseDataError(Exception):
    pass


@lru_cache(maxsize=None)
def fixture_text(name: str) -> str:
    """The text of fixture ``name``: a copied file, or a recipe's result."""
    path = (FIXTURES / name).resolve()
    if FIXTURES.resolve() not in path.parents:
        raise CaseDataError(f"fixture {name!r} is outside {FIXTURES}")
    if path.is_file():
        return path.read_text()
    recipe = path.with_name(path.name + ".json")
    if recipe.is_file():
        spec = json.loads(recipe.read_text())
        if "fixture" not in spec:
            raise CaseDataError(f"recipe {recipe} names no base fixture")
        return apply_edits(fixture_text(spec["fixture"]), spec.get("edits", []), where=f"recipe {name}")
    raise CaseDataError(f"no fixture {name!r} (neither {path} nor {recipe})")


def apply_edits(text: str, edits: list[dict[str, Any]], where: str = "") -> str:
    for number, edit in enumerate(edits, 1):
        label = f"{where}, edit {number}"
        if "replace" in edit or "delete" in edit:
            old = edit["replace"] if "replace" in edit else edit["delete"]
            new = edit.get("with", "") if "replace" in edit else ""
            if "replace" in edit and "with" not in edit:
                raise CaseDataError(f"{label}: 'replace' needs 'with'")
            wanted = edit.get("count", 1)
            found = text.count(old)
            if not old or found != wanted:
                raise CaseDataError(f"{label}: {old!r} occurs {found} times, expected {wanted}")
            text = text.replace(old, new)
        elif "append" in edit:
            if text and not text.endswith("\n"):
                raise CaseDataError(f"{label}: cannot append to text without a final newline")
            text += edit["append"]
        else:
            raise CaseDataError(f"{label}: unknown edit {sorted(edit)}")
    return text


def resolve(value: Any, where: str = "") -> Any:
    """Text given inline stays as it is; a fixture reference becomes its text."""
    if isinstance(value, dict) and "fixture" in value:
        unknown = set(value) - {"fixture", "edits"}
        if unknown:
            raise CaseDataError(f"{where}: unknown keys {sorted(unknown)} in a fixture reference")
        return apply_edits(fixture_text(value["fixture"]), value.get("edits", []), where=f"{where} ({value['fixture']})")
    return value


def resolve_case(case: dict[str, Any], where: str = "case") -> dict[str, Any]:
    """A copy of ``case`` with every fixture reference replaced by its text."""
    case = json.loads(json.dumps(case))
    facts = case.get("facts", {})
    for path, state in facts.get("files", {}).items():
        if "content" in state:
            state["content"] = resolve(state["content"], f"{where}: facts {path}")
    for name, raw in facts.get("extra", {}).items():
        facts["extra"][name] = resolve(raw, f"{where}: extra {name}")
    for number, entry in enumerate(case.get("expected", []), 1):
        for path, text in entry.get("files", {}).items():
            entry["files"][path] = resolve(text, f"{where}: expected[{number}] {path}")
        if "diff" in entry:
            entry["diff"] = resolve(entry["diff"], f"{where}: expected[{number}] diff")
    return case


def load_case(path: Path) -> dict[str, Any]:
    return resolve_case(json.loads(path.read_text()), where=str(path.relative_to(STEPS)))


def case_paths(step: str = "*", pattern: str = "*.json") -> list[Path]:
    return sorted(STEPS.glob(f"{step}/{pattern}"))


def case_platform(case: dict[str, Any], facts):
    """The product platform a case runs on: the one detected from its facts, which must be the one it names.

    A case names the real platform (el9, el10...); where the product has no
    platform of that name (el10: refused), detection decides, as it would on a
    real host.
    """
    from provisioner.platforms import ALL, detect

    named = next((p for p in ALL if p.name == case.get("platform")), None)
    detected = detect(facts.os)
    if named is not None and detected is not named:
        raise CaseDataError(f"the case names {named.name}, its facts.os is detected as {detected.name}")
    return detected
