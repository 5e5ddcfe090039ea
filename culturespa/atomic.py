"""Outputs written aside and moved into place, so a crash or an error never costs a result.

Every command writes through this module. A file goes to a hidden temporary sibling, is flushed to
disk and renamed over its target. A set of files (a report, lm-eval's results with their sample
logs) is built in a hidden staging folder on the target's file system and moved in once complete.
Before any work, `check_output_file` and `check_output_dir` refuse a target that cannot be
written, so a long run never ends at an unwritable path.

A path without any write permission bit counts as read-only even for root (who could write it
anyway): the user marked it so.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError


def _nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _read_only(path: Path) -> bool:
    """Whether we may not write `path`, or it carries no write permission bit at all."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    access = os.W_OK | (os.X_OK if stat.S_ISDIR(mode) else 0)
    return not os.access(path, access) or stat.S_IMODE(mode) & 0o222 == 0


def _check_folder_below(path: Path, what: str) -> None:
    """The closest existing folder at or above `path.parent` is a writable folder."""
    existing = _nearest_existing(path.parent.absolute())
    if not existing.is_dir():
        raise CulturespaError(f"{what} {path}: {existing} is a file, not a folder")
    if _read_only(existing):
        raise CulturespaError(f"{what} {path}: folder {existing} is read-only")


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Refuse a file target that cannot be written: a folder, a path under a file, read-only."""
    path = Path(path)
    if path.is_dir():
        raise CulturespaError(f"{what} {path} is a folder, not a file")
    if path.exists() and _read_only(path):
        raise CulturespaError(f"{what} {path} is read-only; remove it or choose another path")
    _check_folder_below(path, what)
    return path


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Refuse a folder target that cannot be written: a file, a path under a file, read-only."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise CulturespaError(f"{what} {path} is a file, not a folder")
        if _read_only(path):
            raise CulturespaError(f"{what} {path} is read-only")
        return path
    _check_folder_below(path, what)
    return path


def _os_error(path: Path, exc: OSError) -> CulturespaError:
    return CulturespaError(f"{path}: cannot write ({exc.strerror or exc})")


def _make_parents(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CulturespaError(
            f"{path}: {_nearest_existing(path.parent.absolute())} is a file, not a folder"
        ) from None
    except OSError as exc:
        raise _os_error(path, exc) from exc


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write to a hidden temporary sibling, fsync, and rename over `path` (parents are created)."""
    path = Path(path)
    check_output_file(path)
    _make_parents(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        # 0o666 before the umask, as for any new file (mkstemp would make it private).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _os_error(path, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


_TEMP_FILE = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def pid_is_running(pid: int) -> bool:
    """Whether a process `pid` runs on this machine (one we may not signal counts as running)."""
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # ERROR_ACCESS_DENIED: it runs
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder: str | Path) -> int:
    """Delete the temporary files that killed processes left under `folder` (a write aside
    that never reached its rename); the files of running processes stay. Returns how many."""
    removed = 0
    for path in Path(folder).rglob(".*.tmp"):
        match = _TEMP_FILE.match(path.name)
        if match and path.is_file() and not pid_is_running(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically (see `write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write indented JSON (UTF-8, no ASCII escapes) atomically; NaN and infinities as null
    (`culturespa.text_cells.json_text`: standard JSON, `allow_nan=False`)."""
    from culturespa.text_cells import json_text

    return write_text_atomic(path, json_text(obj))


def replace_dir_atomic(staging: str | Path, target: str | Path) -> None:
    """Move a finished folder into place, replacing an older one."""
    staging, target = Path(staging), Path(target)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staging_dir(target: str | Path) -> Iterator[Path]:
    """A hidden empty folder on the file system of `target`, removed on leaving.

    It lies inside `target` when that exists, else in its closest existing ancestor, so nothing
    is created above the target until the results are moved in (`replace_entries`, `merge_files`).
    """
    target = Path(target)
    home = check_output_dir(target) if target.exists() else _nearest_existing(target.absolute())
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name or 'out'}.", dir=home))
        folder.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a published folder is not
    except OSError as exc:
        raise _os_error(target, exc) from exc
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def replace_entries(staging: Path, target: Path, stale: Iterable[str] = ()) -> list[Path]:
    """Move every top-level entry of `staging` into `target`, replacing entries of the same name,
    and remove the entries named in `stale`; all or nothing. Other entries of `target` stay.

    Returns the new paths in `target`.
    """
    staging, target = Path(staging), Path(target)
    names = sorted(p.name for p in staging.iterdir())
    if not target.exists():
        _make_parents(target)
        try:
            os.replace(staging, target)
        except OSError as exc:
            raise _os_error(target, exc) from exc
        return [target / n for n in names]
    trash = Path(tempfile.mkdtemp(prefix=".replaced.", dir=target))
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for name in sorted({*names, *stale}):
            if (target / name).exists() or (target / name).is_symlink():
                os.replace(target / name, trash / name)
                moved_old.append(name)
        for name in names:
            os.replace(staging / name, target / name)
            moved_new.append(name)
    except OSError as exc:
        for name in moved_new:
            os.replace(target / name, staging / name)
        for name in moved_old:
            os.replace(trash / name, target / name)
        shutil.rmtree(trash, ignore_errors=True)
        raise _os_error(target, exc) from exc
    shutil.rmtree(trash, ignore_errors=True)
    return [target / n for n in names]


def merge_files(staging: Path, target: Path, last: Iterable[str] = ()) -> list[Path]:
    """Move every file under `staging` to the same relative place under `target`, keeping what
    `target` already holds; files matching a glob in `last` move after all others.

    Returns the new paths in `target`.
    """
    staging, target = Path(staging), Path(target)
    patterns = tuple(last)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    files.sort(key=lambda p: any(fnmatch.fnmatch(p.name, g) for g in patterns))
    placed = []
    for source in files:
        destination = target / source.relative_to(staging)
        _make_parents(destination)
        try:
            os.replace(source, destination)
        except OSError as exc:
            raise _os_error(destination, exc) from exc
        placed.append(destination)
    return placed


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
