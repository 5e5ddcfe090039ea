"""The culturespa wheel built from this tree, for the packaging tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = (".git", "build", "dist", "runs", ".venv*", "*.egg-info", "__pycache__", ".*_cache")
"""Left out of the copy the wheel is built from: a build/ folder left in the checkout would carry
files the tree no longer has into the wheel."""


def _not_source(folder: str, names: list[str]) -> set[str]:
    """`build/` and `dist/` only at the top (the task folder has a `dist/` of its own); the
    other patterns anywhere."""
    import fnmatch

    top = Path(folder) == ROOT
    patterns = NOT_SOURCE if top else tuple(p for p in NOT_SOURCE if p not in ("build", "dist"))
    return {n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)}


def build_wheel(folder: Path) -> Path:
    """Build the wheel (no dependencies, no build isolation: nothing downloaded) from a clean copy
    of the tree under `folder`; return the wheel's path."""
    source, dist = folder / "source", folder / "dist"
    shutil.copytree(ROOT, source, ignore=_not_source)
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps"]
    command += ["--no-build-isolation", "-q", "-w", str(dist), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = dist.glob("culturespa-*.whl")
    return wheel
