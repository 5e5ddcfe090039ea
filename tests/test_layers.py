"""The architecture as a rule: layers are folders, and no module imports a layer above its own.

Bottom: `survey`, `scoring`, `prompts` (the WVS, the paper's score, the prompts); then `inference`
(models, chat templates, backends); then `evaluation`, `pluralise` (the data builder), `training`,
`report`; the CLI and the end-to-end loop on top. `errors`, `atomic`, `output_folder`,
`folder_lock`, `fields`, `bounded_input`, `text_cells`, `alignment` (the paper's formula),
`command_line` (one-line flag errors), `packaged` and `run_files` (the names of what runs write)
are utilities every layer may use. Folders of one layer may use
each other, but never both ways round (a cycle), except the entry points on top (the CLI and the
loop run each other). The lm-eval task folder
`culturespa_tasks/` sits beside layer 3: it may use the library up to there, never the CLI.
Read from the source with `ast`, including imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "culturespa"
TASK_FOLDER = PACKAGE.parent / "culturespa_tasks"

LAYERS: dict[str, int] = {
    "errors": 0,
    "atomic": 0,
    "output_folder": 0,
    "folder_lock": 0,
    "fields": 0,
    "bounded_input": 0,
    "text_cells": 0,
    "alignment": 0,
    "command_line": 0,
    "packaged": 0,
    "run_files": 0,
    "data": 0,
    "survey": 1,
    "scoring": 1,
    "prompts": 1,
    "inference": 2,
    "evaluation": 3,
    "pluralise": 3,
    "training": 3,
    "report": 3,
    "cli": 4,
    "loop": 4,
}
"""The layer of each top-level module or folder of `culturespa`; imports go down or sideways."""

BOTTOM_ORDER = {"survey": 0, "scoring": 1, "prompts": 2}
"""Inside the bottom layer: prompts may use scoring and survey, scoring may use survey."""

TOP_LAYER = 4
"""The entry points: the CLI runs the loop (`culturespa loop`, `culturespa demo`) and the loop runs
`culturespa` subcommands, so these two may call each other; no folder below may."""
TASK_FOLDER_LAYER = 3
"""The task folder may import what evaluation may (layers <= 3), and nothing of the CLI."""


def culturespa_imports(path: Path) -> set[str]:
    """The culturespa modules a source file imports (anywhere in it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "culturespa":
                found |= {f"culturespa.{a.name}" for a in node.names}
            elif node.module.startswith("culturespa."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("culturespa.")}
    return found


def unit_of(module: str) -> str:
    """'culturespa.survey.items' -> 'survey'; 'culturespa.errors' -> 'errors'."""
    return module.split(".")[1]


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path):
    relative = path.relative_to(PACKAGE)
    own = relative.parts[0].removesuffix(".py")
    if own in ("__init__", "__main__"):
        return
    assert own in LAYERS, f"{relative}: a new top-level module or folder needs a layer in LAYERS"
    for module in culturespa_imports(path):
        other = unit_of(module)
        if other == "__version__":
            continue
        assert other in LAYERS, f"{relative} imports {module}, which has no layer"
        assert LAYERS[other] <= LAYERS[own], f"{relative} ({own}) imports {module} ({other})"
        if own in BOTTOM_ORDER and other in BOTTOM_ORDER:
            assert BOTTOM_ORDER[other] <= BOTTOM_ORDER[own], f"{relative} imports {module}"


def sibling_imports() -> dict[tuple[str, str], str]:
    """{(folder, other folder of the same layer): a file of the first that imports the second}."""
    edges: dict[tuple[str, str], str] = {}
    for path in SOURCES:
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for module in culturespa_imports(path):
            other = unit_of(module)
            same_layer = own in LAYERS and LAYERS.get(other) == LAYERS[own]
            if own != other and same_layer and LAYERS[own] < TOP_LAYER:
                edges.setdefault((own, other), str(path.relative_to(PACKAGE)))
    return edges


def test_no_two_folders_of_one_layer_import_each_other():
    edges = sibling_imports()
    cycles = sorted(
        f"{edges[(a, b)]} imports {b} and {edges[(b, a)]} imports {a}"
        for (a, b) in edges
        if (b, a) in edges and a < b
    )
    assert not cycles, cycles


def test_the_alignment_formula_is_a_leaf():
    assert culturespa_imports(PACKAGE / "alignment.py") == set()


TASK_SOURCES = sorted(p for p in TASK_FOLDER.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", TASK_SOURCES, ids=lambda p: str(p.relative_to(TASK_FOLDER)))
def test_the_task_folder_imports_the_library_up_to_evaluation(path):
    relative = path.relative_to(TASK_FOLDER)
    for module in culturespa_imports(path):
        other = unit_of(module)
        if other == "__version__":
            continue
        assert other in LAYERS, f"{relative} imports {module}, which has no layer"
        assert LAYERS[other] <= TASK_FOLDER_LAYER, f"culturespa_tasks/{relative} imports {module}"


def test_the_root_holds_only_utilities_and_layer_folders():
    names = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    names.discard("__pycache__")
    assert names <= set(LAYERS) | {"py.typed"}, sorted(names - set(LAYERS))
