"""The house's size rule, read from the source: no module of the library or the task folder over
400 lines, no function over 80 lines, none with more than 8 parameters (STYLE.md, issue 23)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("culturespa", "culturespa_tasks", "recipes")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_PARAMETERS = 8


def sources() -> list[Path]:
    return sorted(p for folder in CHECKED for p in (ROOT / folder).rglob("*.py"))


def parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Parameters a caller passes: `self` and `cls` of a method are not counted."""
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return len(names) - (1 if names[:1] in (["self"], ["cls"]) else 0)


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(root)
    found = []
    if len(text.splitlines()) > MAX_MODULE_LINES:
        found.append(f"{where}: {len(text.splitlines())} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{where}:{node.lineno} {node.name}: {length} lines")
            if parameters(node) > MAX_PARAMETERS:
                found.append(f"{where}:{node.lineno} {node.name}: {parameters(node)} parameters")
    return found


def test_the_rule_sees_what_it_checks(tmp_path):
    """A hand-made module with each kind of breach is caught, and a method's `self` is not
    counted (the checker is not blind)."""
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = (
        f"def long():\n{long_body}\n\n\n"
        "def many(a, b, c, d, e, f, g, h, i):\n    pass\n\n\n"
        "class C:\n    def fine(self, a, b, c, d, e, f, g, h):\n        pass\n"
    )
    path = tmp_path / "m.py"
    path.write_text(source + "\n" * MAX_MODULE_LINES)
    assert oversized(path, tmp_path) == [
        f"m.py: {len(path.read_text().splitlines())} lines",
        "m.py:1 long: 81 lines",
        f"m.py:{MAX_FUNCTION_LINES + 4} many: 9 parameters",
    ]
    path.write_text(source)
    assert len(oversized(path, tmp_path)) == 2


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path):
    assert oversized(path) == []
