"""The package's import graph: one direction (tools -> code location -> core), no cycles, no hidden
imports inside functions, and a catalog library without Dagster. Read from the source with ``ast``:
nothing is imported, so a cycle that Python happens to tolerate still fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "movielake_dagster"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# The three parts, by module prefix; a module belongs to the first part whose prefix it starts with.
TOOLS = ("movielake_dagster.tools",)
LOCATION = (
    "movielake_dagster.definitions",
    "movielake_dagster.code_location",
    "movielake_dagster.assets",
    "movielake_dagster.checks",
    "movielake_dagster.automation",
    "movielake_dagster.io_managers",
    "movielake_dagster.resources",
)
CORE = (
    "movielake_dagster.datasets",
    "movielake_dagster.settings",
    "movielake_dagster.errors",
    "movielake_dagster.lake",
    "movielake_dagster.aws",
    "movielake_dagster.transforms",
    "movielake_dagster.catalog",
)
PART_ORDER = {"core": 0, "location": 1, "tools": 2}  # a part imports only parts at or below its own


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def part_of(module: str) -> str:
    for name, prefixes in (("tools", TOOLS), ("location", LOCATION), ("core", CORE)):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name
    return "package"  # movielake_dagster/__init__.py: a docstring only


def imports(module: str) -> list[tuple[str, bool]]:
    """(first-party module imported, whether the import statement is at module level)."""
    tree = ast.parse(MODULES[module].read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module]
            targets += [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == PACKAGE and target in MODULES:
                found.append((target, id(node) in top_level or _in_type_checking(tree, node)))
    return found


def _in_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    return any(
        isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test) and node in ast.walk(top)
        for top in tree.body
    )


def graph() -> dict[str, set[str]]:
    """Module -> the first-party modules importing it runs (a submodule's parent packages included)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _ in imports(module):
            parts = target.split(".")
            edges[module].update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        edges[module].discard(module)
    return edges


def test_the_modules_are_found():
    assert {"movielake_dagster.definitions", "movielake_dagster.tools.cli", "movielake_dagster.catalog"} <= set(MODULES)
    assert all(part_of(m) != "package" for m in MODULES if m != PACKAGE), "a module belongs to no part"


def test_no_import_cycle():
    edges = graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(edges[module]):
            # a package's __init__ importing its own submodules is how packages are built, not a cycle
            if not (target.startswith(module + ".") and MODULES[module].name == "__init__.py"):
                visit(target, [*path, module])
        done.add(module)

    for module in sorted(MODULES):
        visit(module, [])


def test_imports_go_one_way():
    wrong = [
        f"{m} ({part_of(m)}) imports {t} ({part_of(t)})"
        for m in MODULES
        for t, _ in imports(m)
        if PART_ORDER.get(part_of(t), 0) > PART_ORDER.get(part_of(m), 0)
    ]
    assert not wrong


def test_nobody_imports_the_entry_point():
    assert not [m for m in MODULES for t, _ in imports(m) if t == "movielake_dagster.definitions"]


def test_no_first_party_import_inside_a_function():
    hidden = [f"{m} imports {t}" for m in MODULES for t, top in imports(m) if not top]
    assert not hidden


def third_party_roots(module: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_catalog_library_does_not_use_dagster():
    users = [
        m
        for m in MODULES
        if m.startswith("movielake_dagster.catalog")
        and any(root == "dagster" or root.startswith("dagster_") for root in third_party_roots(m))
    ]
    assert not users


def test_the_walker_sees_a_cycle_and_a_wrong_way_import(tmp_path, monkeypatch):
    """The checks above fail on a package that has the faults they look for."""
    package = tmp_path / PACKAGE
    (package / "tools").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tools" / "__init__.py").write_text("")
    (package / "lake.py").write_text("from movielake_dagster.tools.cli import main\n")
    (package / "tools" / "cli.py").write_text("def main():\n    from movielake_dagster.lake import X\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", package)
    monkeypatch.setattr(
        __import__(__name__, fromlist=["MODULES"]),
        "MODULES",
        {module_name(p): p for p in sorted(package.rglob("*.py"))},
    )
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycle()
    with pytest.raises(AssertionError):
        test_imports_go_one_way()
    with pytest.raises(AssertionError):
        test_no_first_party_import_inside_a_function()
