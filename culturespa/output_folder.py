"""Output folders culturespa shares with its user: one writer at a time, only its own files replaced.

A command that writes a folder claims it first (`claim_folder`): an advisory lock (a second writer
is refused with the first one's PID); a commit a kill interrupted is finished or undone; staging
debris of killed runs is removed; a non-empty folder without culturespa's manifest is refused
unless `overwrite`. Files are staged in a hidden folder inside it and committed
(`OutputFolder.commit`): the manifest `.culturespa-manifest.json` first records the commit as
pending, culturespa's older files are moved aside, the new ones moved in, and the manifest,
written last, lists what culturespa wrote. A file not in the manifest is never deleted; one a new
file would replace is refused unless `overwrite`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import Any

from culturespa.atomic import check_output_dir, remove_leftovers, write_json_atomic
from culturespa.errors import CulturespaError
from culturespa.folder_lock import LOCK_NAME, FolderLock, lock_folder, unlock_folder

MANIFEST_NAME = ".culturespa-manifest.json"
"""What culturespa wrote in a folder: relative file paths, and a commit in progress."""
STAGING_PREFIX = ".culturespa-staging-"
TRASH_PREFIX = ".culturespa-replaced-"
OVERWRITE_HINT = ", or pass --overwrite to write culturespa's files beside these"
_MKDTEMP = r"[a-z0-9_]{8}"
"""The random part of `tempfile.mkdtemp`: older versions staged in `.<name>.XXXXXXXX`."""


def is_hidden_part(path: Path, root: Path) -> bool:
    """Whether `path` lies under a hidden entry (staging debris, a lock) below `root`."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    return any(part.startswith(".") for part in parts)


def _debris_pattern(folder: Path) -> re.Pattern[str]:
    return re.compile(
        rf"^({re.escape(STAGING_PREFIX)}|{re.escape(TRASH_PREFIX)}).+$"
        rf"|^\.replaced\.{_MKDTEMP}$|^\.{re.escape(folder.name)}\.{_MKDTEMP}$"
    )


def _debris(folder: Path) -> list[Path]:
    """Staging and trash folders of killed writers, inside `folder` and (older versions) beside
    it."""
    own = _debris_pattern(folder)
    beside = re.compile(rf"^\.{re.escape(folder.name)}\.{_MKDTEMP}$")
    found = [p for p in folder.iterdir() if own.match(p.name) and p.is_dir()]
    with suppress(OSError):  # a parent we may not list
        found += [p for p in folder.parent.iterdir() if beside.match(p.name) and p.is_dir()]
    return [p for p in found if not p.is_symlink()]


def _entry_name(name: Any, manifest: Path) -> str:
    """A manifest entry: a relative path inside the folder, never above it."""
    pure = PurePosixPath(name) if isinstance(name, str) else None
    if pure is None or pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise CulturespaError(f"{manifest}: not a culturespa manifest (entry {name!r})")
    return str(pure)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest (`files`, and `pending` while a commit runs), or None."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CulturespaError(f"{path}: not a readable culturespa manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise CulturespaError(f"{path}: not a culturespa manifest (no list of files)")
    data["files"] = [_entry_name(n, path) for n in data["files"]]
    pending = data.get("pending")
    if pending is not None:
        keys = ("place", "displace", "files")
        if not isinstance(pending, dict) or not all(isinstance(pending.get(k), list) for k in keys):
            raise CulturespaError(f"{path}: not a culturespa manifest (a broken commit record)")
        for key in keys:
            pending[key] = [_entry_name(n, path) for n in pending[key]]
        trash = pending.get("trash")
        if not isinstance(trash, str) or not trash.startswith(TRASH_PREFIX) or "/" in trash:
            raise CulturespaError(f"{path}: not a culturespa manifest (a broken commit record)")
    return data


def _write_manifest(
    folder: Path, files: Iterable[str], kind: str | None, pending: dict | None = None
) -> None:
    record = {"written_by": "culturespa", "kind": kind, "files": sorted(set(files))}
    write_json_atomic(folder / MANIFEST_NAME, {**record, "pending": pending})


def check_kind(path: Path, manifest: dict[str, Any] | None, kind: str | None, what: str) -> None:
    """One kind of output per folder: a report never replaces the runs of an eval folder."""
    held = manifest.get("kind") if manifest else None
    if kind and held and held != kind:
        raise CulturespaError(
            f"{what} {path} holds culturespa's {held} output, not a {kind}; choose another folder"
        )


def _remove_empty_parents(folder: Path, names: Iterable[str]) -> None:
    """Remove the folders that `names` lived in when nothing is left in them."""
    for name in sorted(names, key=lambda n: -len(PurePosixPath(n).parts)):
        parent = (folder / name).parent
        while parent != folder and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _roll_back(folder: Path, pending: dict, files: list[str]) -> None:
    """Undo an unfinished commit: new files out, the moved-aside ones back, the old manifest."""
    trash = folder / pending["trash"]
    displaced = set(pending["displace"])
    for name in pending["place"]:
        if name not in displaced or (trash / name).exists() or (trash / name).is_symlink():
            _remove(folder / name)  # the new file (its older namesake waits in the trash)
    for name in pending["displace"]:
        if (trash / name).exists() or (trash / name).is_symlink():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(trash / name, folder / name)
    if pending.get("first"):  # the folder had no manifest before this commit
        (folder / MANIFEST_NAME).unlink(missing_ok=True)
    else:
        _write_manifest(folder, files, pending.get("kind"))
    _remove_empty_parents(folder, pending["place"])
    shutil.rmtree(trash, ignore_errors=True)


def _finish_or_undo(folder: Path, manifest: dict) -> None:
    """A commit a kill interrupted: finished when its last file is in place, else undone."""
    pending = manifest["pending"]
    trash = folder / pending["trash"]
    place, displaced = pending["place"], set(pending["displace"])
    last = place[-1] if place else None
    moved_in = last is not None and (folder / last).exists()
    if moved_in and last in displaced:
        moved_in = (trash / last).exists()
    if moved_in:
        _write_manifest(folder, pending["files"], pending.get("kind"))
        _remove_empty_parents(folder, displaced - set(place))
        shutil.rmtree(trash, ignore_errors=True)
    else:
        _roll_back(folder, pending, manifest["files"])


_HELD: dict[Path, FolderLock] = {}
"""Folders this process holds: a command that claims a folder its caller holds nests."""


def _foreign_entries(folder: Path) -> list[str]:
    """Entries culturespa did not put there: not its manifest, lock, staging debris, or a
    folder with a manifest of its own."""
    ours = {MANIFEST_NAME, LOCK_NAME}
    debris = _debris_pattern(folder)
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in ours
        and not debris.match(p.name)
        and not (p.is_dir() and (p / MANIFEST_NAME).is_file())
    )


def check_ours(
    path: str | Path, what: str, record: str = MANIFEST_NAME, hint: str = OVERWRITE_HINT
) -> None:
    """Refuse a non-empty folder without `record`, the file that marks it as culturespa's."""
    path = Path(path)
    if not path.is_dir() or (path / record).is_file():
        return
    foreign = _foreign_entries(path)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise CulturespaError(
            f"{what} {path} is not empty and has no {record}, so culturespa did not make it "
            f"({shown}); choose a new or empty folder{hint}"
        )


class OutputFolder:
    """A claimed output folder: stage files in it, then commit them (see the module's doc)."""

    def __init__(self, path: Path, overwrite: bool, kind: str | None = None) -> None:
        self.path = path
        self.overwrite = overwrite
        self.kind = kind

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A hidden empty folder inside this one, removed on leaving."""
        with write_errors(self.path):
            stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=self.path))
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _check_targets(self, names: list[str], known: set[str]) -> None:
        """New files may replace culturespa's own files, others only with `overwrite`."""
        root = self.path.resolve()
        for name in names:
            target = self.path / name
            if not target.parent.resolve().is_relative_to(root):
                raise CulturespaError(f"{target}: its folder leads out of {self.path}")
            for parent in PurePosixPath(name).parents:
                if str(parent) != "." and (self.path / parent).is_file():
                    raise CulturespaError(f"{target}: {self.path / parent} is a file")
            if target.is_dir() and not target.is_symlink():
                raise CulturespaError(f"{target} is a folder; culturespa writes a file there")
            exists = target.exists() or target.is_symlink()
            if exists and name not in known and not self.overwrite:
                raise CulturespaError(
                    f"{target} was not written by culturespa; move it away or pass --overwrite "
                    "(which replaces only the files culturespa writes)"
                )

    def record_written(self, names: Iterable[str]) -> None:
        """Add files written in place, not staged (a trainer's checkpoints and adapter), to the
        manifest, which marks the folder as culturespa's from its first call on; entries whose
        file is gone (a checkpoint the trainer rotated out) leave it."""
        manifest = read_manifest(self.path) or {"files": []}
        check_kind(self.path, manifest, self.kind, "output folder")
        kept = [n for n in manifest["files"] if (self.path / n).is_file()]
        with write_errors(self.path):
            _write_manifest(self.path, [*kept, *names], self.kind)

    def commit(self, stage: Path, replace: bool, last: Iterable[str] = ()) -> list[Path]:
        """Move every file under `stage` to the same place in the folder, files matching a glob
        in `last` last; with `replace`, the files culturespa wrote there before and does not
        write now are removed. Returns the new paths."""
        patterns = tuple(last)
        names = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        names.sort(key=lambda n: any(fnmatch.fnmatch(PurePosixPath(n).name, g) for g in patterns))
        manifest = read_manifest(self.path) or {"files": [], "first": True}
        check_kind(self.path, manifest, self.kind, "output folder")
        old = set(manifest["files"])
        self._check_targets(names, old)
        with write_errors(self.path):  # on disk before it counts as written (a full disk fails)
            for name in names:
                with (stage / name).open("rb") as handle:
                    os.fsync(handle.fileno())
        stale = sorted(old - set(names)) if replace else []
        displace = [
            n for n in dict.fromkeys([*names, *stale])
            if (self.path / n).exists() or (self.path / n).is_symlink()
        ]  # fmt: skip
        final = sorted((old - set(stale)) | set(names))
        with write_errors(self.path):
            trash = Path(tempfile.mkdtemp(prefix=f"{TRASH_PREFIX}{os.getpid()}-", dir=self.path))
        pending = {"place": names, "displace": displace, "files": final, "trash": trash.name}
        pending.update(first=bool(manifest.get("first")), kind=self.kind)
        _write_manifest(self.path, manifest["files"], manifest.get("kind"), pending)
        try:
            for name in displace:
                (trash / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.path / name, trash / name)
            for name in names:
                (self.path / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(stage / name, self.path / name)
            _write_manifest(self.path, final, self.kind)
        except (OSError, CulturespaError) as exc:
            _roll_back(self.path, pending, manifest["files"])
            if isinstance(exc, CulturespaError):
                raise
            raise CulturespaError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        shutil.rmtree(trash, ignore_errors=True)
        _remove_empty_parents(self.path, stale)
        return [self.path / n for n in names]


@contextmanager
def write_errors(target: str | Path) -> Iterator[None]:
    """An error of the file system (a full disk) inside the block is one line naming `target`."""
    try:
        yield
    except OSError as exc:
        raise CulturespaError(f"{target}: cannot write ({exc.strerror or exc})") from exc


def _make_folder(path: Path) -> list[Path]:
    """Create `path` and its missing parents; return those created, deepest first."""
    created = [p for p in (path, *path.parents) if not p.exists()]
    with write_errors(path):
        path.mkdir(parents=True, exist_ok=True)
    return created


def _remove_if_empty(folders: list[Path]) -> None:
    for made in folders:  # deepest first; another writer may have just put its lock there
        with suppress(OSError):
            made.rmdir()


def _prepare(folder: OutputFolder, what: str, record: str, hint: str) -> None:
    """Put back an interrupted commit, remove debris, refuse a folder of someone else's files."""
    path = folder.path
    manifest = read_manifest(path)
    check_kind(path, manifest, folder.kind, what)
    if manifest is not None and manifest.get("pending"):
        _finish_or_undo(path, manifest)
    for debris in _debris(path):
        shutil.rmtree(debris, ignore_errors=True)
    remove_leftovers(path)
    if not folder.overwrite:
        check_ours(path, what, record, hint)


@contextmanager
def claim_folder(
    path: str | Path,
    what: str = "output folder",
    overwrite: bool = False,
    record: str = MANIFEST_NAME,
    hint: str = OVERWRITE_HINT,
    kind: str | None = None,
) -> Iterator[OutputFolder]:
    """Hold `path` as this process's output folder (see the module's doc); a folder this process
    already holds is handed over as it is. A non-empty folder without `record` (the loop's
    `loop.json`, the data builder's `manifest.json`) is refused unless `overwrite`; `hint` ends
    that message. `kind` (report, eval) is what its manifest may hold: one kind per folder. A
    folder created here and left empty is removed."""
    path = Path(path)
    key = path.absolute()
    if key in _HELD:
        yield OutputFolder(path, overwrite, kind)
        return
    check_output_dir(path, what)
    created = _make_folder(path)
    try:
        lock = lock_folder(path)
    except CulturespaError:
        _remove_if_empty(created)
        raise
    _HELD[key] = lock
    try:
        folder = OutputFolder(path, overwrite, kind)
        _prepare(folder, what, record, hint)
        yield folder
    finally:
        del _HELD[key]
        unlock_folder(path, lock)
        _remove_if_empty(created)
