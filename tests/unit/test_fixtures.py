"""Provenance of the test data: every fixture and parameter list is named, unchanged, and used.

tests/data/fixtures/README.md and tests/data/postfix-params/README.md hold one table
row per file: its path, the first 16 hex digits of its sha256 (or "recipe" for a
derived file), and where it comes from. Copies of the reference packaging files
(/work/shared/reference/el) and of recorded lab hosts (tests/data/hosts) are also
compared byte for byte with their source, the reference only where it is present
(CI clones the repository alone: there the digests stand in for it).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from .recorded_cases import DATA, FIXTURES, STEPS, fixture_text

REFERENCE = Path("/work/shared/reference/el")
HOSTS = DATA / "hosts"
TESTS = Path(__file__).resolve().parent
ROW = re.compile(r"^\|\s*`(?P<name>[^`]+)`\s*\|\s*(?P<digest>[0-9a-f]{16}|recipe)\s*\|(?P<source>.*)\|\s*$")


def table(readme: Path) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in readme.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match["name"]] = (match["digest"], match["source"])
    return rows


TABLES = {
    FIXTURES: table(FIXTURES / "README.md"),
    DATA / "postfix-params": table(DATA / "postfix-params" / "README.md"),
}


def data_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "README.md")


@pytest.mark.parametrize("root", list(TABLES), ids=lambda p: p.name)
def test_every_file_has_a_provenance_row(root: Path):
    assert data_files(root) == sorted(TABLES[root])


def _rows():
    for root, rows in TABLES.items():
        for name, (digest, source) in rows.items():
            yield pytest.param(root, name, digest, source, id=f"{root.name}/{name}")


@pytest.mark.parametrize("root, name, digest, source", list(_rows()))
def test_file_is_what_its_row_says(root: Path, name: str, digest: str, source: str):
    path = root / name
    if digest == "recipe":
        recipe = json.loads(path.read_text())
        assert recipe.get("source") and recipe.get("fixture"), "a recipe says what it derives from and why"
        fixture_text(name.removesuffix(".json"))  # resolves, every edit applies exactly
        return
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] == digest
    for reference in re.findall(r"`(/work/shared/reference/el/[^`]+)`", source):
        if REFERENCE.is_dir():
            assert path.read_bytes() == Path(reference).read_bytes(), f"{name} is not a copy of {reference}"
    for host, file in re.findall(r"`(tests/data/hosts/[^`]+\.json)`\s+`(/[^`]+)`", source):
        recorded = json.loads((DATA.parent.parent / host).read_text())["files"][file]["content"]
        assert path.read_text() == recorded, f"{name} is not {file} of {host}"


def test_every_fixture_is_used():
    """A fixture nothing refers to (cases, recipes, tests) is dead weight or a typo elsewhere."""
    texts = [p.read_text() for p in STEPS.rglob("*.json")]
    texts += [p.read_text() for p in FIXTURES.rglob("*.json")]
    texts += [p.read_text() for p in TESTS.glob("test_*.py")]
    names = [name.removesuffix(".json") for name in TABLES[FIXTURES]]
    unused = [name for name in names if not any(f'"{name}"' in text for text in texts)]
    assert unused == []
