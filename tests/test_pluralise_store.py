"""The append-only log: torn lines and half-written units are dropped on reopening."""

from __future__ import annotations

import json

import pytest

from culturespa.errors import CulturespaError
from culturespa.pluralise.store import UnitLog, write_jsonl_atomic


def test_units_resume_and_dedupe(tmp_path):
    path = tmp_path / "a.log.jsonl"
    log = UnitLog(path)
    log.append_unit(0, [{"id": "a"}, {"id": "b"}])
    log.append_unit(1, [{"id": "c"}, {"id": "d"}, {"id": "e"}])
    # simulate a kill in the middle of unit 2: one full line, then a torn one
    with path.open("a") as handle:
        handle.write(json.dumps({"id": "f", "unit": 2, "unit_size": 2}) + "\n")
        handle.write('{"id": "g", "un')
    reopened = UnitLog(path)
    assert sorted(reopened.records) == ["a", "b", "c", "d", "e"]
    assert reopened.done_units() == {0, 1}
    assert path.read_text().endswith("\n") and len(path.read_text().splitlines()) == 5


def test_broken_middle_line_is_an_error(tmp_path):
    path = tmp_path / "b.log.jsonl"
    path.write_text(
        '{"id": "a", "unit": 0, "unit_size": 1}\nnot json\n{"id": "b", "unit": 1, "unit_size": 1}\n'
    )
    with pytest.raises(CulturespaError, match=r"b.log.jsonl:2: broken record"):
        UnitLog(path)


def test_atomic_write(tmp_path):
    assert write_jsonl_atomic(tmp_path / "x.jsonl", [{"a": 1}, {"a": 2}]) == 2
    assert not list(tmp_path.glob(".*tmp"))
