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


def build_wheel(folder: Path) -> Path:
    """Build the wheel (no dependencies, no build isolation: nothing downloaded) from a clean copy
    of the tree under `folder`; return the wheel's path."""
    source, dist = folder / "source", folder / "dist"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps"]
    command += ["--no-build-isolation", "-q", "-w", str(dist), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = dist.glob("culturespa-*.whl")
    return wheel
