"""One writer per folder where the system has no `fcntl` (Windows): the exclusive lock file holds
its writer's PID, a second writer is refused with that PID, and the file of a killed writer is
taken over. Run here by making the `fcntl` path unavailable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support.folder_holder import folder_held_by_another_process

from culturespa import folder_lock
from culturespa.cli.main import main
from culturespa.errors import CulturespaError
from culturespa.folder_lock import LOCK_NAME
from culturespa.output_folder import claim_folder


@pytest.fixture
def no_fcntl(monkeypatch):
    monkeypatch.setattr(folder_lock, "fcntl", None)


def finished_pid() -> int:
    """The PID of a process that has ended (a killed writer's)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


def test_a_second_writer_is_refused_with_the_first_ones_pid(no_fcntl, tmp_path, capsys):
    out = tmp_path / "report"
    with folder_held_by_another_process(out, without_fcntl=True) as holder:
        assert (out / LOCK_NAME).read_text().strip() == str(holder.pid)
        assert main(["report", str(tmp_path / "none"), "-o", str(out), "--no-plots"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"is in use by PID {holder.pid}" in err, err
    assert holder.returncode == 0 and not (out / LOCK_NAME).exists()  # its own lock, removed


def test_a_killed_writers_lock_file_is_taken_over(no_fcntl, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{finished_pid()}\n")
    with claim_folder(out):
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not (out / LOCK_NAME).exists()


def test_a_lock_file_of_a_running_process_or_without_a_pid_yet_is_held(no_fcntl, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{os.getppid()}\n")  # the process that started the tests runs
    with pytest.raises(CulturespaError, match=f"in use by PID {os.getppid()}"), claim_folder(out):
        pass
    (out / LOCK_NAME).write_text("")  # a writer between creating the file and writing its PID
    with pytest.raises(CulturespaError, match="in use by PID unknown"), claim_folder(out):
        pass
    old = os.stat(out / LOCK_NAME).st_mtime - folder_lock._PID_WRITE_SECONDS - 1
    os.utime(out / LOCK_NAME, (old, old))  # ... killed there long ago
    with claim_folder(out):
        pass
    assert not (out / LOCK_NAME).exists()
