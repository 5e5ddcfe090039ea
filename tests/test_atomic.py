"""culturespa.atomic: outputs are written aside and moved into place, or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from culturespa.atomic import (
    check_output_dir,
    check_output_file,
    merge_files,
    replace_entries,
    staging_dir,
    write_text_atomic,
)
from culturespa.errors import CulturespaError


def test_a_file_is_written_whole_with_ordinary_permissions(tmp_path):
    path = write_text_atomic(tmp_path / "new" / "a.txt", "é\n")
    assert path.read_text(encoding="utf-8") == "é\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0o600
    write_text_atomic(path, "second\n")
    assert path.read_text() == "second\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("old\n")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CulturespaError, match=r"a\.txt: cannot write \(No space left on device\)"):
        write_text_atomic(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_targets_that_cannot_be_written_are_refused_before_any_work(tmp_path):
    folder, plain = tmp_path / "folder", tmp_path / "plain.txt"
    folder.mkdir()
    plain.write_text("x")
    read_only_dir, read_only_file = tmp_path / "ro", tmp_path / "ro.txt"
    read_only_dir.mkdir(mode=0o555)
    read_only_file.write_text("kept")
    read_only_file.chmod(0o444)
    cases = [
        (check_output_file, folder, "is a folder, not a file"),
        (check_output_file, plain / "x.json", "plain.txt is a file, not a folder"),
        (check_output_file, read_only_file, "is read-only"),
        (check_output_file, read_only_dir / "x.json", "folder .*ro is read-only"),
        (check_output_dir, plain, "is a file, not a folder"),
        (check_output_dir, plain / "deeper" / "x", "plain.txt is a file, not a folder"),
        (check_output_dir, read_only_dir, "is read-only"),
        (check_output_dir, read_only_dir / "new", "read-only"),
        (write_text_atomic, read_only_file, "is read-only"),
        (write_text_atomic, folder, "is a folder"),
    ]
    for check, path, message in cases:
        with pytest.raises(CulturespaError, match=message):
            check(path, "x") if check is write_text_atomic else check(path)
    assert read_only_file.read_text() == "kept"
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # a check creates nothing


def test_a_set_replaces_the_old_set_and_keeps_other_files(tmp_path):
    target = tmp_path / "report"
    (target / "plots").mkdir(parents=True)
    for name in ("leaderboard.md", "comparison.md", "plots/old.png", "notes.txt"):
        (target / name).write_text(f"old {name}")
    with staging_dir(target) as stage:
        assert stage.parent == target and stage.name.startswith(".")
        (stage / "leaderboard.md").write_text("new")
        replace_entries(stage, target, stale=("leaderboard.md", "comparison.md", "plots"))
    assert sorted(p.name for p in target.iterdir()) == ["leaderboard.md", "notes.txt"]
    assert (target / "leaderboard.md").read_text() == "new"


def test_a_failed_move_puts_the_old_set_back(tmp_path, monkeypatch):
    target = tmp_path / "report"
    target.mkdir()
    for name in ("a.md", "b.md"):
        (target / name).write_text(f"old {name}")
    real_replace = os.replace
    calls = []

    def failing_second_new_entry(src, dst):
        calls.append((src, dst))
        if ".report." in str(src) and str(dst).endswith("b.md"):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    with staging_dir(target) as stage:
        for name in ("a.md", "b.md"):
            (stage / name).write_text(f"new {name}")
        monkeypatch.setattr(os, "replace", failing_second_new_entry)
        with pytest.raises(CulturespaError, match="Input/output error"):
            replace_entries(stage, target)
        monkeypatch.undo()
    assert {p.name: p.read_text() for p in target.iterdir()} == {
        "a.md": "old a.md",
        "b.md": "old b.md",
    }


def test_a_new_folder_appears_only_when_complete(tmp_path):
    target = tmp_path / "deep" / "report"
    with staging_dir(target) as stage:
        assert stage.parent == tmp_path  # the closest existing folder; nothing created above
        (stage / "x.md").write_text("x")
        assert not (tmp_path / "deep").exists()
        replace_entries(stage, target)
    assert [p.name for p in target.iterdir()] == ["x.md"]
    assert [p.name for p in tmp_path.iterdir()] == ["deep"]


def test_merged_files_keep_what_the_target_holds_and_move_results_last(tmp_path, monkeypatch):
    target = tmp_path / "eval"
    (target / "m").mkdir(parents=True)
    (target / "m" / "results_old.json").write_text("old")
    order = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda s, d: (order.append(os.path.basename(d)), real_replace(s, d))
    )
    with staging_dir(target) as stage:
        (stage / "m").mkdir()
        for name in ("results_new.json", "samples_a_new.jsonl", "samples_b_new.jsonl"):
            (stage / "m" / name).write_text(name)
        merge_files(stage, target, last=("results_*.json",))
    assert order == ["samples_a_new.jsonl", "samples_b_new.jsonl", "results_new.json"]
    assert sorted(p.name for p in (target / "m").iterdir()) == [
        "results_new.json",
        "results_old.json",
        "samples_a_new.jsonl",
        "samples_b_new.jsonl",
    ]
    assert [p.name for p in target.iterdir()] == ["m"]  # the staging folder is gone


def test_leftovers_of_killed_writers_are_removed_but_not_those_of_live_ones(tmp_path):
    import os
    import subprocess
    import sys

    from culturespa.atomic import remove_leftovers

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    (tmp_path / "sub").mkdir()
    stale = tmp_path / "sub" / f".answers.jsonl.{dead_pid}-0123abcd.tmp"
    live = tmp_path / f".report.json.{os.getpid()}-89abcdef.tmp"
    other = tmp_path / ".notes.tmp"  # not ours: left alone
    for path in (stale, live, other):
        path.write_text("x")
    assert remove_leftovers(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()
