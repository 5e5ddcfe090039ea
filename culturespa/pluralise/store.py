"""Append-only JSONL logs keyed by record id, safe against a kill at any moment.

A stage appends the records of one work unit (a chunk of prompts, a generation round) with a
single write followed by fsync; every record carries its unit (`unit`) and the unit's size
(`unit_size`). On reopening, a torn last line is cut off and the records of an incomplete last
unit are dropped, so a unit is either fully in the log or recomputed from scratch. Recomputing
whole units keeps batch composition, seeds and therefore results identical to an uninterrupted
run. Final outputs are written aside and renamed into place (`culturespa.atomic`).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from culturespa.atomic import write_text_atomic
from culturespa.errors import CulturespaError

logger = logging.getLogger(__name__)


def dumps(record: dict) -> str:
    """One canonical JSON line (key order kept, no NaN)."""
    return json.dumps(record, ensure_ascii=False, allow_nan=False)


class UnitLog:
    """An append-only log of records; `unit` groups records written together."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = data[: data.rfind(b"\n") + 1]
        lines = keep.decode("utf-8").splitlines()
        records = []
        for number, line in enumerate(lines, start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise CulturespaError(
                    f"{self.path}:{number}: broken record in a stage log ({exc.msg}); "
                    "delete the log to redo the stage"
                ) from exc
        sizes = Counter(r["unit"] for r in records)
        incomplete = {u for u in sizes if sizes[u] < records_unit_size(records, u)}
        if incomplete or len(keep) != len(data):
            kept = [r for r in records if r["unit"] not in incomplete]
            dropped = len(records) - len(kept)
            logger.info("%s: dropped %d records of an interrupted unit", self.path, dropped)
            text = "".join(dumps(r) + "\n" for r in kept)
            write_text_atomic(self.path, text)
            records = kept
        for record in records:
            self.records.setdefault(record["id"], record)

    def done_units(self) -> set:
        return {r["unit"] for r in self.records.values()}

    def append_unit(self, unit, records: list[dict]) -> None:
        """Append one unit's records in a single write and fsync; a failed write (a full disk)
        is cut off again and is one line naming the log."""
        if not records:
            return
        rows = [{**r, "unit": unit, "unit_size": len(records)} for r in records]
        data = "".join(dumps(r) + "\n" for r in rows).encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                start = os.lseek(fd, 0, os.SEEK_END)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, start)  # the unit is all in the log or not at all
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            raise CulturespaError(
                f"{self.path}: cannot append to the stage log ({exc.strerror or exc}); free "
                "space and run the same command again to resume"
            ) from exc
        for row in rows:
            self.records.setdefault(row["id"], row)


def records_unit_size(records: list[dict], unit) -> int:
    for record in records:
        if record["unit"] == unit:
            return int(record["unit_size"])
    return 0


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict]) -> int:
    """Write rows as JSONL atomically; return the number of rows."""
    lines = [dumps(r) + "\n" for r in rows]
    write_text_atomic(path, "".join(lines))
    return len(lines)


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Rows of a finished JSONL file; a broken line is an error that names the line."""
    path = Path(path)
    if not path.exists():
        raise CulturespaError(f"{path} does not exist")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise CulturespaError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
