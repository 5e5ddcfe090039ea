"""lm-eval's request cache, kept only where culturespa can vouch for what it opens.

lm-eval's `use_cache` stores replies in SQLite through `sqlitedict`, whose values are pickles:
opening a cache file someone else wrote runs their code. So `culturespa eval --use-cache NAME`
keeps a request cache only in `$CULTURESPA_CACHE/requests/NAME/`, records the SHA-256 of each
file there after every run (`culturespa_requests.json`), and refuses a folder holding a file that
is not recorded or whose hash differs, before lm-eval or any model is loaded. lm-eval itself
opens a private copy checked again after copying, in `NAME/.work-<pid>-<random>/`; a finished run
moves its files back into `NAME/`. lm-eval names them `<prefix>_rank<N>.db` (one per process
rank), so the cache of a one-process run is `NAME/requests_rank0.db`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturespa.atomic import file_sha256
from culturespa.errors import CulturespaError

logger = logging.getLogger(__name__)

REQUESTS_DIR = "requests"
"""Request caches live in `$CULTURESPA_CACHE/requests/<NAME>/`."""
RECORD_FILE = "culturespa_requests.json"
"""The SHA-256 and size of each cache file, written by culturespa after each run."""
WORK_PREFIX = ".work-"
LM_EVAL_PREFIX = "requests"
"""What culturespa passes as lm-eval's `use_cache`; lm-eval appends `_rank<N>.db`."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_REMEDY = "delete that folder to start an empty cache, or pick another --use-cache name"


def request_cache_dir(name: str) -> Path:
    """The folder of the request cache called `name` (a plain name, never a path)."""
    from culturespa.inference.default_model import cache_root

    if not isinstance(name, str) or not _NAME.match(name):
        raise CulturespaError(
            f"--use-cache {name!r}: expected a name (letters, digits, '.', '_', '-'; at most "
            f"100), not a path: request caches live in $CULTURESPA_CACHE/{REQUESTS_DIR}/NAME/"
        )
    return cache_root() / REQUESTS_DIR / name


def _read_record(folder: Path) -> dict[str, dict] | None:
    """The recorded files of a cache folder, or None when it has no record."""
    path = folder / RECORD_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        files = record["files"]
        if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
            raise ValueError("'files' is not a mapping of file names to checksums")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CulturespaError(f"{path} is unreadable ({exc}); {_REMEDY}") from exc
    return files


def _cache_files(folder: Path) -> list[Path]:
    """What a cache folder holds besides its record and the working copies of runs."""
    return sorted(
        p for p in folder.iterdir() if p.name != RECORD_FILE and not p.name.startswith(WORK_PREFIX)
    )


def _check_file(path: Path, recorded: dict[str, dict] | None, shown: Path) -> None:
    """Refuse a cache file culturespa did not record, or one changed since it was recorded."""
    entry = (recorded or {}).get(path.name)
    if entry is None or not path.is_file() or path.is_symlink():
        raise CulturespaError(
            f"{shown} was not written by culturespa (not in {RECORD_FILE}); it is not opened, "
            f"since lm-eval unpickles a request cache (a cache file is code); {_REMEDY}"
        )
    if path.stat().st_size != entry.get("bytes") or file_sha256(path) != entry.get("sha256"):
        raise CulturespaError(
            f"{shown} changed since culturespa recorded it (SHA-256 mismatch); it is not opened, "
            f"since lm-eval unpickles a request cache (a cache file is code); {_REMEDY}"
        )


def check_request_cache(name: str) -> Path:
    """Refuse a request cache culturespa cannot vouch for; return its folder (may not exist)."""
    folder = request_cache_dir(name)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise CulturespaError(f"{folder} is not a folder culturespa made; {_REMEDY}")
    if not folder.exists():
        return folder
    recorded = _read_record(folder)
    for path in _cache_files(folder):
        _check_file(path, recorded, path)
    return folder


def remove_stale_work(folder: Path) -> int:
    """Delete the working copies of runs whose process is gone; return how many."""
    from culturespa.atomic import pid_is_running

    removed = 0
    for work in folder.glob(f"{WORK_PREFIX}*"):
        pid = work.name[len(WORK_PREFIX) :].split("-", 1)[0]
        if (
            pid.isdigit()
            and not pid_is_running(int(pid))
            and work.is_dir()
            and not work.is_symlink()
        ):
            shutil.rmtree(work, ignore_errors=True)
            removed += 1
    return removed


@dataclass
class RequestCacheRun:
    """One lm-eval run on a checked private copy of a request cache."""

    folder: Path
    work: Path

    @property
    def lm_eval_prefix(self) -> str:
        """The `use_cache` value for lm-eval (it opens `<prefix>_rank<N>.db`)."""
        return str(self.work / LM_EVAL_PREFIX)

    def commit(self, lm: Any = None) -> list[Path]:
        """Move the files lm-eval wrote into the cache folder, then record their checksums.

        `lm`, the model lm-eval ran, is detached from the cache first: lm-eval leaves its cache
        hook on the model, which would otherwise keep writing into the recorded file.
        """
        if lm is not None:
            _detach_cache(lm)
        recorded = dict(_read_record(self.folder) or {})
        written = []
        for path in sorted(self.work.glob(f"{LM_EVAL_PREFIX}_rank*.db")):
            entry = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
            os.replace(path, self.folder / path.name)
            recorded[path.name] = entry
            written.append(self.folder / path.name)
        _write_record(self.folder, recorded)
        shutil.rmtree(self.work, ignore_errors=True)
        logger.info("request cache %s: %s", self.folder, ", ".join(p.name for p in written))
        return written


def _detach_cache(lm: Any) -> None:
    """Give the model an empty cache hook and close the cache lm-eval opened (all committed)."""
    from lm_eval.api.model import CacheHook

    database = getattr(getattr(lm, "cache_hook", None), "dbdict", None)
    lm.set_cache_hook(CacheHook(None))
    if database is not None:
        database.close()


def _write_record(folder: Path, files: dict[str, dict]) -> None:
    from culturespa.atomic import write_json_atomic

    write_json_atomic(folder / RECORD_FILE, {"format": 1, "files": files})


def open_request_cache(name: str | None) -> RequestCacheRun | None:
    """Copy a checked request cache into a private working folder for lm-eval (None: no cache).

    The copy is hashed after copying, so what lm-eval opens is exactly what was checked. A run
    that dies leaves its working folder; the next run removes it once its process is gone.
    """
    if name is None:
        return None
    folder = check_request_cache(name)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        remove_stale_work(folder)
        work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=folder))
    except OSError as exc:
        raise CulturespaError(f"cannot use request cache {folder}: {exc}") from exc
    recorded = _read_record(folder)
    try:
        for path in _cache_files(folder):
            if path.is_file() and not path.is_symlink():
                shutil.copyfile(path, work / path.name)
            _check_file(work / path.name, recorded, path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return RequestCacheRun(folder=folder, work=work)


__all__ = ["RequestCacheRun", "check_request_cache", "open_request_cache", "request_cache_dir"]
