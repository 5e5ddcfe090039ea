"""One writer per output folder: an advisory lock file, `.culturespa.lock`, holding its writer's PID.

Where the system has `fcntl` (Linux, macOS) the lock is `flock` on that file: the kernel lets
it go when its holder dies, however it dies. Elsewhere (Windows) the lock is the file itself,
created exclusively (`O_EXCL`): a second writer finds it and is refused with the PID inside; a
file whose PID no longer runs is a killed writer's, and is taken over.
"""

from __future__ import annotations

import errno
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from culturespa.atomic import pid_is_running
from culturespa.errors import CulturespaError

try:
    import fcntl
except ImportError:  # Windows: the exclusive lock file below
    fcntl = None

LOCK_NAME = ".culturespa.lock"
"""The advisory lock of a folder's one writer; it holds the writer's PID."""
_TRIES = 5
"""Attempts to take a lock file that its holder removes or that is stale, before giving up."""
_PID_WRITE_SECONDS = 60
"""How long a new lock file may stay without its writer's PID before it counts as stale."""


@dataclass(frozen=True)
class FolderLock:
    """A held lock: its open file, and whether it is an exclusive lock file (no `fcntl`)."""

    fd: int
    exclusive_file: bool


def _in_use(folder: Path, holder: str) -> CulturespaError:
    return CulturespaError(
        f"{folder} is in use by PID {holder or 'unknown'} (another culturespa command writes "
        "there); wait for it to end or choose another folder"
    )


def _cannot(path: Path, verb: str, exc: OSError) -> CulturespaError:
    return CulturespaError(f"{path}: cannot {verb} ({exc.strerror or exc})")


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))


def _lock_with_flock(folder: Path) -> FolderLock:
    path = folder / LOCK_NAME
    for _ in range(_TRIES):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _cannot(path, "write", exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _cannot(path, "lock", exc) from exc
            raise _in_use(folder, holder) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file its last holder removed while we opened it
            _write_pid(fd)
            return FolderLock(fd, exclusive_file=False)
        os.close(fd)
    raise _cannot(path, "lock", OSError(errno.EAGAIN, "its holders keep replacing it"))


def _lock_file_holder(path: Path) -> str:
    with suppress(OSError):
        return path.read_text(encoding="ascii", errors="replace").strip()
    return ""


def _stale(path: Path, holder: str) -> bool:
    """A lock file left by a killed writer: its PID runs no more, or it holds no PID long after
    it was made (a writer killed between creating it and writing its PID)."""
    if holder.isdigit():
        return not pid_is_running(int(holder))
    try:
        return time.time() - path.stat().st_mtime > _PID_WRITE_SECONDS
    except FileNotFoundError:
        return True


def _lock_with_exclusive_file(folder: Path) -> FolderLock:
    path = folder / LOCK_NAME
    for _ in range(_TRIES):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = _lock_file_holder(path)
            if not _stale(path, holder):
                raise _in_use(folder, holder) from None
            with suppress(FileNotFoundError):  # a killed writer's: taken over
                path.unlink()
            continue
        except OSError as exc:
            raise _cannot(path, "write", exc) from exc
        _write_pid(fd)
        return FolderLock(fd, exclusive_file=True)
    raise _cannot(path, "lock", OSError(errno.EAGAIN, "its holders keep replacing it"))


def lock_folder(folder: Path) -> FolderLock:
    """Take `folder`'s lock without waiting; a held one is refused with its holder's PID."""
    if fcntl is not None:
        return _lock_with_flock(folder)
    return _lock_with_exclusive_file(folder)


def unlock_folder(folder: Path, lock: FolderLock) -> None:
    """Let the lock go and remove its file."""
    if lock.exclusive_file:  # closed first: Windows removes no open file
        os.close(lock.fd)
        (folder / LOCK_NAME).unlink(missing_ok=True)
    else:  # removed while held, so no second writer locks a file on its way out
        (folder / LOCK_NAME).unlink(missing_ok=True)
        os.close(lock.fd)
