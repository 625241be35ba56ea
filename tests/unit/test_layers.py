"""The import rule: `journey_core`'s packages follow the data flow, a lower layer never imports
a higher one, and no module imports itself back through others. Every import counts: at the
top, inside functions, and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "journey_core"
#: Layer of each part of the library, lowest first (`journey_core/__init__.py` says what each
#: owns). Parts of one layer do not import each other.
LAYERS = {
    "contract": 0, "config": 1, "warehouse": 2, "privacy": 3, "ingest": 4, "identity": 4,
    "model": 5, "quality": 5, "publish": 6, "report": 6, "ops": 7,
}


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> set[str]:
    """The modules a file imports, anywhere in it (relative imports resolved)."""
    own = _module(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from pkg import mod` imports the module pkg.mod when there is one
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same top-level package it imports."""
    files = {_module(p, root): p for p in root.rglob("*.py")}
    return {name: {m for m in imports(path, root) if m in files and m != name}
            for name, path in files.items()}


def part(module: str) -> str:
    """The part of the library a module belongs to (`journey_core.model.graph` -> `model`)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def violations(edges: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Imports that go up a layer, or across parts of one layer."""
    bad = []
    for source, targets in edges.items():
        for target in targets:
            a, b = part(source), part(target)
            if not a or not b or a == b:
                continue
            if layers[b] >= layers[a]:
                bad.append(f"{source} ({a}, layer {layers[a]}) imports {target} "
                           f"({b}, layer {layers[b]})")
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_part_of_the_library_has_a_layer() -> None:
    """A new package must be given its place in the flow before it can exist."""
    parts = {part(m) for m in graph(LIBRARY)} - {""}
    assert parts == set(LAYERS), parts ^ set(LAYERS)


def test_lower_layers_never_import_higher_ones() -> None:
    """contract < config < warehouse < privacy < ingest, identity < model, quality < publish,
    report < ops: every import goes down (function-local ones included)."""
    assert violations(graph(LIBRARY), LAYERS) == []


@pytest.mark.parametrize("root", ["journey_core", "pipelines", "journey_sample"])
def test_no_import_circle(root: str) -> None:
    """No module imports itself back through others, in the library, the Dagster code or the
    sample generator."""
    assert cycles(graph(ROOT / root)) == []


def test_the_sample_generator_imports_nothing_from_the_library() -> None:
    """journey_sample works out the ground truth on its own: it never imports journey_core."""
    used = {m for p in (ROOT / "journey_sample").rglob("*.py")
            for m in imports(p, ROOT / "journey_sample")}
    assert not {m for m in used if m.split(".")[0] in ("journey_core", "pipelines")}


def test_the_library_never_imports_dagster_or_pipelines() -> None:
    """journey_core knows nothing of orchestration."""
    used = {m for p in LIBRARY.rglob("*.py") for m in imports(p, LIBRARY)}
    assert not {m for m in used if m.split(".")[0] in ("dagster", "dagster_duckdb",
                                                        "pipelines")}


def test_the_checks_catch_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    """The rule is enforced, not just stated: a function-local import of a higher layer and a
    circle through two modules are both found."""
    lib = tmp_path / "journey_core"
    for folder in ("contract", "ops", "model"):
        (lib / folder).mkdir(parents=True)
        (lib / folder / "__init__.py").write_text("")
    (lib / "__init__.py").write_text("")
    (lib / "contract" / "schema.py").write_text(
        "def f():\n    from journey_core.ops import run\n")
    (lib / "ops" / "run.py").write_text("import journey_core.contract.schema\n")
    (lib / "model" / "a.py").write_text("from journey_core.model import b\n")
    (lib / "model" / "b.py").write_text("from . import a\n")
    edges = graph(lib)
    assert violations(edges, {"contract": 0, "model": 5, "ops": 7}) == [
        "journey_core.contract.schema (contract, layer 0) imports journey_core.ops "
        "(ops, layer 7)",
        "journey_core.contract.schema (contract, layer 0) imports journey_core.ops.run "
        "(ops, layer 7)"]
    found = cycles(edges)
    assert ["journey_core.model.a", "journey_core.model.b"] in found
    assert ["journey_core.contract.schema", "journey_core.ops.run"] in found
