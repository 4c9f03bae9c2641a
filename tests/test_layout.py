"""The house: every room of the package declares which rooms it may import, imports flow one way
(from the table up to the doors), and no module imports itself back through others.

Imports are read from the source (every ``import`` and ``from ... import``, inside functions
too), not from what happens to be loaded, so a lazy import against the direction is caught.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where each package's sources are: the oracles' folder sits at the top of the repository.
SOURCES = {"mybackprop": ROOT / "mybackprop", "mybackprop.oracles": ROOT / "oracles"}
# Modules every room may read: the version string, nothing else.
BASE = {"mybackprop._version"}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            if package == "mybackprop" and name.startswith("mybackprop.oracles"):
                continue
            found[name] = path
    return found


def imports_of(name: str, source: str, modules: set[str]) -> set[str]:
    """The package's modules that `source` (module `name`) imports, anywhere in the file."""
    package = name if name in PACKAGES else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            # `from mybackprop.spec.table import ACTIVATIONS` imports mybackprop.spec.table;
            # `from mybackprop.spec import table` imports mybackprop.spec.table as well.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                found.add(target)
    found.discard(name)
    return found


def room_of(module: str) -> str:
    """'spec', 'harness', ... for a module in a room; 'door' for the top-level modules."""
    parts = module.split(".")
    if module in BASE:
        return "base"
    if len(parts) >= 2 and parts[1] in ROOMS:
        return parts[1]
    return "door"


def declared_rooms() -> dict[str, list[str]]:
    """Each room's 'May import:' line, read from its __init__ docstring."""
    declared = {}
    for room in ROOMS:
        folder = SOURCES["mybackprop.oracles"] if room == "oracles" else ROOT / "mybackprop" / room
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
        match = re.search(r"^May import: (.*)\.$", doc, re.MULTILINE)
        assert match, f"{folder}/__init__.py: the docstring says no 'May import: ...' line"
        text = match.group(1)
        declared[room] = [] if text.startswith("nothing") else [r.strip() for r in text.split(",")]
    return declared


# From the table up: a room may import only rooms before it. The doors (cli, pytest_plugin,
# api, zoo, strategies, suite, the package's __init__) sit above them all.
ROOMS = ("spec", "levels", "judging", "oracles", "diagnosis", "harness", "reporting", "sweep")
PACKAGES = {"mybackprop", "mybackprop.suite", *(f"mybackprop.{room}" for room in ROOMS)}


def graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path.read_text(), set(files)) for name, path in files.items()}


def against_direction(edges: dict[str, set[str]], declared: dict[str, list[str]]) -> list[str]:
    """'mybackprop.judging.kinks imports mybackprop.harness.contract (judging may import
    spec, levels)' for every import a room does not declare."""
    wrong = []
    for module, targets in sorted(edges.items()):
        room = room_of(module)
        for target in sorted(targets):
            other = room_of(target)
            if other in (room, "base") or room == "door":  # the doors may import anything
                continue
            if room == "base" or other == "door" or other not in declared[room]:
                allowed = ", ".join(declared.get(room, [])) or "nothing"
                wrong.append(f"{module} imports {target} ({room} may import {allowed})")
    return wrong


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_room_declares_only_rooms_below_it():
    declared = declared_rooms()
    for position, room in enumerate(ROOMS):
        above = [r for r in declared[room] if r not in ROOMS[:position]]
        assert not above, f"{room} declares {above}: a room may import only rooms below it"


def test_imports_flow_one_way():
    assert against_direction(graph(), declared_rooms()) == []


def test_no_module_imports_itself_back():
    assert cycles(graph()) == []


def test_the_checks_fail_on_a_cycle_and_on_an_import_against_the_direction():
    edges = graph()
    declared = declared_rooms()
    # The judging room reaching up into the harness (the old kinks -> candidate import) ...
    wrong = {**edges, "mybackprop.judging.kinks": {*edges["mybackprop.judging.kinks"],
                                                   "mybackprop.harness.contract"}}
    assert against_direction(wrong, declared) == [
        "mybackprop.judging.kinks imports mybackprop.harness.contract "
        "(judging may import spec, levels)"]
    # ... a room importing a door, and a lazy import that closes a loop (the old
    # candidate <-> isolate pair).
    door = {**edges, "mybackprop.spec.table": {"mybackprop.cli"}}
    assert against_direction(door, declared)
    loop = {**edges, "mybackprop.harness.isolate": {*edges["mybackprop.harness.isolate"],
                                                    "mybackprop.harness.loading"}}
    assert cycles(loop) == [["mybackprop.harness.isolate", "mybackprop.harness.loading"]]


def test_imports_are_read_inside_functions_and_relative_ones_resolved():
    modules = {"mybackprop.spec", "mybackprop.spec.table", "mybackprop.spec.problem",
               "mybackprop.cli"}
    source = ("from .table import ACTIVATIONS\n"
              "def later():\n    from mybackprop import cli\n")
    assert imports_of("mybackprop.spec.problem", source, modules) == {
        "mybackprop.spec.table", "mybackprop.cli"}


@pytest.mark.parametrize("room", ROOMS)
def test_every_room_says_what_it_is_for(room):
    folder = ROOT / ("oracles" if room == "oracles" else f"mybackprop/{room}")
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    assert len(doc.split()) > 15, f"{room}/__init__.py: say what the room is for"


PUBLIC = {
    "ACTIVATIONS", "DTYPES", "KINKED_ACTIVATIONS", "LOSSES", "REDUCTIONS", "SMOOTH_ACTIVATIONS",
    "Architecture", "Candidate", "Gradients", "Layer", "Problem", "RunSettings", "SettingsError",
    "SpecError", "Supports", "Unsupported", "__version__", "candidate", "check", "element",
    "load_candidate", "matrix", "problem_from_config", "run_settings", "vector",
    # layer kits (issue 25): declare a user's layers, check each alone
    "LayerResult", "check_layers", "layer_functions", "layer_objects",
}


def test_the_public_surface_is_small_and_every_name_is_there():
    import mybackprop

    # Names may be added here on purpose; none may silently go (the rooms below move freely).
    assert set(mybackprop.__all__) == PUBLIC
    assert all(getattr(mybackprop, name, None) is not None for name in PUBLIC)
    # The public modules beside it: the strategies, the zoo, the doors.
    from mybackprop.cli import main  # noqa: F401
    from mybackprop.strategies import architectures, case_configs, problems  # noqa: F401
    from mybackprop.zoo import batch_sum  # noqa: F401
