"""A second process that holds culturespa's claim on a folder while a test tries to write there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """import sys
from culturespa import folder_lock
from culturespa.output_folder import claim_folder
if sys.argv[2] == "without-fcntl":
    folder_lock.fcntl = None  # as on Windows
with claim_folder(sys.argv[1]):
    print('held', flush=True)
    sys.stdin.read()
"""


@contextmanager
def folder_held_by_another_process(
    folder: Path, *, without_fcntl: bool = False
) -> Iterator[subprocess.Popen]:
    """Yield the holder process once it holds `folder`; it lets go (and exits) when the block
    ends. `without_fcntl`: it locks the way systems without `fcntl` do."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), "without-fcntl" if without_fcntl else "fcntl"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.communicate("", timeout=30)
