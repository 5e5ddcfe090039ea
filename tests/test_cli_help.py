"""Every script and every `culturespa` subcommand answers --help: exit 0, usage on stdout, no
traceback. Both lists are discovered, so a new script or subcommand is covered without a test edit."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from culturespa.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_FOLDERS = ("recipes", "benchmarks", "culturespa", "culturespa_tasks", "scripts")
MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)


def scripts() -> list[Path]:
    """Python files with a `__main__` guard: each is run as a command by someone."""
    found = []
    for folder in SCRIPT_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if MAIN_GUARD.search(path.read_text(encoding="utf-8")):
                found.append(path.relative_to(ROOT))
    return found


def command_line(script: Path) -> list[str]:
    """`python -m package.module` inside a package, `python path` for a stand-alone script."""
    if (ROOT / script.parent / "__init__.py").is_file():
        return [sys.executable, "-m", ".".join(script.with_suffix("").parts)]
    return [sys.executable, str(ROOT / script)]


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple]:
    """Every path of subcommands, e.g. ('score',), ('model', 'fetch')."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found.extend(subcommands(sub, (*prefix, name)))
    return found


def shell_scripts() -> list[Path]:
    return [p.relative_to(ROOT) for f in SCRIPT_FOLDERS for p in sorted((ROOT / f).rglob("*.sh"))]


SCRIPTS = scripts()
SUBCOMMANDS = subcommands(build_parser())


def test_discovery_finds_the_known_entry_points():
    names = {str(p) for p in SCRIPTS}
    for expected in (
        "recipes/sft.py",
        "recipes/loop.py",
        "recipes/merge_adapter.py",
        "benchmarks/run.py",
        "culturespa_tasks/generate.py",
        "culturespa/cli/main.py",
    ):
        assert expected in names
    for expected in (
        ("score",),
        ("eval",),
        ("build-data",),
        ("report",),
        ("model", "path"),
        ("survey", "build"),
    ):
        assert expected in SUBCOMMANDS


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_answers_help(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"usage: culturespa {' '.join(path)}")
    assert captured.err == ""


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=str)
def test_every_script_answers_help(script, tmp_path):
    """In a subprocess, as users run them; in an empty folder, so a script that took --help for
    an output path would leave a trace there."""
    result = subprocess.run(
        [*command_line(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith("usage:"), result.stdout[:200]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", shell_scripts(), ids=str)
def test_every_shell_script_answers_help(script, tmp_path):
    result = subprocess.run(
        ["bash", str(ROOT / script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and result.stderr == ""
    assert list(tmp_path.iterdir()) == []
