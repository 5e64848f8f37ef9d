"""The product's architecture, checked from its source: layers, no cycles, no tooling.

Every module of ``provisioner`` is parsed (never imported) and each import
statement, including those inside functions, becomes an edge. A module may
import from its own layer or the layers below it, never from a layer above
(a back-arrow), the module graph has no cycle, and nothing imports the
``tooling`` package: the product installs and runs without it.

Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those
implicit edges are left out, as Python resolves them without a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "provisioner"

# Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Plain data and pure helpers: what facts, vars and changes are.
    # (actions: what a change runs on the host; journal and holder: the host-side shell code of a run)
    ("model", ("provisioner", "provisioner.model", "provisioner.actions", "provisioner.journal", "provisioner.holder",
               "provisioner.vars",
               "provisioner.certs", "provisioner.keyedit", "provisioner.validation", "provisioner.redaction")),
    # Probes, and facts gathered in one script (through a callable: no transport here).
    ("probes", ("provisioner.probes",)),
    # What differs between OS families, as data.
    ("platforms", ("provisioner.platforms",)),
    # The desired state: paths, settings, contents.
    ("desired", ("provisioner.desired",)),
    # Pure checks: facts in, changes out.
    ("steps", ("provisioner.steps",)),
    # Everything that reads the user's files or talks to a host.
    ("io", ("provisioner.inventory", "provisioner.credentials", "provisioner.transport", "provisioner.hostlock",
            "provisioner.verify", "provisioner.inputfiles", "provisioner.sshconfig")),
    # One run: facts, steps, apply, verify, rollback.
    ("engine", ("provisioner.engine",)),
    # The operations behind the commands, and their rendering.
    ("app", ("provisioner.app", "provisioner.report", "provisioner.progress", "provisioner.arguments")),
    # The command line.
    ("cli", ("provisioner.cli",)),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    assert index is not None, f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}"
    return index


def imports(module: str) -> set[str]:
    """Absolute names of every module (or package) that ``module`` imports."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from pkg import mod` imports a module; `from mod import name` the module itself.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


GRAPH = {module: {m for m in imports(module) if m in MODULES and m != module} for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_product_never_imports_the_tooling(module):
    tooling = sorted(m for m in imports(module) if m == "tooling" or m.startswith("tooling."))
    assert not tooling, f"{module} imports {', '.join(tooling)}: the installed product has no tooling package"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_back_up_the_layers(module):
    own = layer_of(module)
    upward = sorted(m for m in GRAPH[module] if layer_of(m) > own)
    assert not upward, (
        f"{module} ({LAYERS[own][0]}) imports "
        + ", ".join(f"{m} ({LAYERS[layer_of(m)][0]})" for m in upward)
    )


def test_no_import_cycle():
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module):] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(GRAPH[module]):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


def test_the_checker_sees_imports():
    # A guard against a checker that passes because it parses nothing.
    assert "provisioner.model" in GRAPH["provisioner.steps.base"]
    assert any(m.startswith("provisioner.steps") for m in GRAPH["provisioner.engine.walk"])
