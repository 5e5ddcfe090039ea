"""Folders culturespa writes (issue 27): it never deletes a file it did not write, one writer at a
time, and a kill, a full disk or a second writer never leaves a half-written or mixed folder.

The rules, as the issue states them: a command that writes a folder replaces only the files its
manifest lists; a non-empty folder without that manifest is refused (one line, exit 2) unless
`--overwrite`, which still touches only culturespa's own file names; the loop adopts no folder
without its `loop.json`, dry run included; a full disk is one line, a non-zero exit and never
"written"; a run killed at any rename leaves the old set or the new one, never a mix, and its
debris is cleaned by the next run and never read as a run; a second writer gets "in use by PID".
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import yaml
from support.folder_holder import folder_held_by_another_process
from test_report import answers_for, write_run

from culturespa.cli.main import main
from culturespa.errors import CulturespaError
from culturespa.output_folder import MANIFEST_NAME, claim_folder, read_manifest
from culturespa.pluralise.store import UnitLog
from culturespa.report.results_files import find_results_files
from culturespa.report.run_scores import Notes
from culturespa.report.writer import ReportOptions, build_report

ROOT = Path(__file__).resolve().parents[1]
LOOP_CONFIG = ROOT / "recipes" / "loop" / "smollm2-135m-instruct.yaml"
QUESTIONS = ROOT / "data" / "generated" / "sample_questions.jsonl"
USER_FILES = {"plots/fig.png": "the user's figure", "agreement.md": "the user's notes"}


class Killed(BaseException):
    """A kill -9 at a rename: no handler of the code under test runs for it."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two hand-made lm-eval folders: `both` (culture-aware and -unaware rows, so a report adds
    steerability files) and `aware` (culture-aware only, a smaller report)."""
    root = tmp_path_factory.mktemp("runs")
    aware = {f"wvs_culture_aware_{cc.lower()}": answers_for(cc, 0.5, i) for i, cc in enumerate(["USA", "DEU"])}  # fmt: skip
    both = {**aware, "wvs_culture_unaware_usa": answers_for("USA", 0.3, 9)}
    write_run(root / "both" / "org__m", "2025-01-01T10-00-00.1", both, {"pretrained": "org/m"})
    write_run(root / "aware" / "org__m", "2025-01-02T10-00-00.1", aware, {"pretrained": "org/m"})
    return {"both": root / "both", "aware": root / "aware"}


def snapshot(root: Path) -> dict[str, bytes | None]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def visible(root: Path) -> set[str]:
    """Files under `root` outside hidden entries, as relative paths."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def user_folder(path: Path) -> Path:
    for name, content in USER_FILES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    return path


def one_line(err: str, *parts: str) -> None:
    assert "Traceback" not in err and err.count("\n") == 1 and err.endswith("\n"), err
    for part in parts:
        assert part in err, err


@pytest.mark.parametrize("extra", [[], ["--no-plots"]], ids=["plots", "no-plots"])
def test_a_report_into_a_folder_of_user_files_is_refused(runs, tmp_path, capsys, extra):
    out = user_folder(tmp_path / "mine")
    before = snapshot(tmp_path)
    assert main(["report", str(runs["both"]), "-o", str(out), *extra]) == 2
    captured = capsys.readouterr()
    one_line(captured.err, "is not empty", "--overwrite")
    assert "wrote" not in captured.out
    assert snapshot(tmp_path) == before


def test_overwrite_writes_beside_user_files_and_a_rerun_keeps_them(runs, tmp_path, capsys):
    out = user_folder(tmp_path / "mine")
    assert main(["report", str(runs["both"]), "-o", str(out), "--overwrite"]) == 0
    for name, content in USER_FILES.items():
        assert (out / name).read_text() == content
    written = visible(out) - set(USER_FILES)
    assert {"leaderboard.md", "index.html", "plots/heatmap.png"} <= written
    assert set(read_manifest(out)["files"]) == written  # the user's files are not culturespa's
    # Now the folder holds culturespa's manifest: a smaller report without --overwrite replaces
    # culturespa's files (steerability and plots go), and the user's stay.
    assert main(["report", str(runs["aware"]), "-o", str(out), "--no-plots"]) == 0
    for name, content in USER_FILES.items():
        assert (out / name).read_text() == content
    assert not (out / "steerability.md").exists() and not (out / "plots" / "heatmap.png").exists()
    assert set(read_manifest(out)["files"]) == visible(out) - set(USER_FILES)


def test_a_user_file_where_a_new_report_file_goes_is_refused(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(runs["both"]), "-o", str(out), "--no-plots"]) == 0
    user_folder(out)  # plots/fig.png, and no plots/heatmap.png of culturespa's yet
    (out / "plots" / "heatmap.png").write_text("the user's heatmap")
    before = snapshot(tmp_path)
    assert main(["report", str(runs["both"]), "-o", str(out)]) == 2
    one_line(capsys.readouterr().err, "heatmap.png was not written by culturespa", "--overwrite")
    assert snapshot(tmp_path) == before


def test_demo_and_eval_refuse_a_folder_of_user_files_before_any_model_loads(
    tmp_path, capsys, monkeypatch
):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("culturespa.evaluation.run._load_model", no_model)
    out = user_folder(tmp_path / "mine")
    before = snapshot(tmp_path)
    with monkeypatch.context() as patch:  # the demo's first step fetches its model
        patch.setattr("culturespa.inference.models.resolve_model", no_model)
        assert main(["demo", "-o", str(out), "--threads", "1", "--limit", "1"]) == 2
    one_line(capsys.readouterr().err, "is not empty", "--overwrite")
    eval_argv = ["eval", "--model", "org/none", "--tasks", "wvs_culture_aware_usa"]
    assert main([*eval_argv, "--output-path", str(out)]) == 2
    one_line(capsys.readouterr().err, "is not empty", "--overwrite")
    # With --overwrite: a file where lm-eval puts the model's results folder is a collision,
    # found before the model loads too.
    (out / "org__none").write_text("the user's")
    before = snapshot(tmp_path)
    assert main([*eval_argv, "--output-path", str(out), "--overwrite"]) == 2
    one_line(capsys.readouterr().err, "org__none is a file")
    assert snapshot(tmp_path) == before


def test_a_full_disk_in_a_report_is_one_line_and_no_file(runs, tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    assert main(["report", str(runs["both"]), "-o", str(tmp_path / "new"), "--no-plots"]) == 2
    captured = capsys.readouterr()
    one_line(captured.err, "No space left on device")
    assert "wrote" not in captured.out
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("where", ["sample-log-write", "fsync"])
def test_a_full_disk_in_eval_is_one_line_and_never_written(
    tiny_model_dir, tmp_path, capsys, monkeypatch, where
):
    """lm-eval's tracker only warns when a sample log's write fails: today a truncated log exited
    0 with "results written"."""
    import builtins

    import lm_eval.loggers.evaluation_tracker as tracker

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    class FillsUp:
        """A file that takes one line, then the disk is full."""

        def __init__(self, handle):
            self.handle, self.lines = handle, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            if self.lines:
                full()
            self.lines += 1
            return self.handle.write(text)

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", full)
    else:
        real_open = builtins.open

        def open_(path, *args, **kwargs):
            handle = real_open(path, *args, **kwargs)
            return FillsUp(handle) if Path(path).name.startswith("samples_") else handle

        monkeypatch.setattr(tracker, "open", open_, raising=False)
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--tasks", "wvs_culture_aware_usa"]
    argv += ["--limit", "3", "--device", "cpu", "--log-samples", "--output-path", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error:" in line]  # not progress bars
    assert "Traceback" not in captured.err and len(errors) == 1, captured.err
    assert ("1 of 3 lines" if where != "fsync" else "No space left on device") in errors[0]
    assert "written" not in captured.out
    assert not out.exists()


def test_a_full_disk_in_the_answer_log_is_one_line_and_the_unit_is_cut_off(tmp_path, monkeypatch):
    log = UnitLog(tmp_path / "answers.log.jsonl")
    log.append_unit(0, [{"id": "a", "answer": 1}, {"id": "b", "answer": 2}])
    before = log.path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 8:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", half_then_full)
        with pytest.raises(CulturespaError, match="No space left on device") as caught:
            log.append_unit(1, [{"id": "c", "answer": 3}, {"id": "d", "answer": 4}])
    assert "\n" not in str(caught.value) and "answers.log.jsonl" in str(caught.value)
    assert log.path.read_bytes() == before  # no torn unit left behind
    assert set(UnitLog(log.path).records) == {"a", "b"}


def _count_renames(monkeypatch, action) -> int:
    real, calls = os.replace, []

    def counting(src, dst):
        calls.append(1)
        return real(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", counting)
        action()
    return len(calls)


def _kill_at(monkeypatch, rename: int, action) -> None:
    real, calls = os.replace, []

    def killing(src, dst):
        calls.append(1)
        if len(calls) == rename:
            raise Killed
        return real(src, dst)

    with monkeypatch.context() as patch, pytest.raises(Killed):
        patch.setattr(os, "replace", killing)
        action()


def test_a_report_killed_at_any_rename_leaves_the_old_or_the_new_set(runs, tmp_path, monkeypatch):
    def first(out):
        build_report([runs["both"]], out, ReportOptions(plot=False))
        user_folder(out)

    def second(out):
        return lambda: build_report([runs["aware"]], out, ReportOptions(plot=False))

    sample = tmp_path / "sample"
    first(sample)
    old_set = visible(sample)
    total = _count_renames(monkeypatch, second(sample))
    new_set = visible(sample)
    assert old_set != new_set and total > 5
    outcomes = set()
    for rename in range(1, total + 1):
        out = tmp_path / f"killed-{rename}"
        first(out)
        _kill_at(monkeypatch, rename, second(out))
        with claim_folder(out):  # the next run puts the folder right before anything else
            pass
        assert visible(out) in (old_set, new_set), rename
        outcomes.add("new" if visible(out) == new_set else "old")
        assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MANIFEST_NAME]
        assert set(read_manifest(out)["files"]) == visible(out) - set(USER_FILES)
        build_report([runs["aware"]], out, ReportOptions(plot=False))
        assert visible(out) == new_set
    assert outcomes == {"old", "new"}  # killed early: put back; after the last file: finished


def commit_run(out: Path, date: str) -> None:
    """One lm-eval run (40 logged items) committed as `culturespa eval` commits it: sample logs
    first, then the results file."""
    tasks = {"wvs_culture_aware_usa": answers_for("USA", 0.5, 1)}
    with claim_folder(out, kind="eval") as folder, folder.staging() as stage:
        write_run(stage / "org__m", date, tasks, {"pretrained": "org/m"})
        folder.commit(stage, replace=False, last=("results_*.json",))


def test_an_eval_output_killed_at_any_rename_is_read_as_whole_runs(runs, tmp_path, monkeypatch):
    """Killed at each rename of its commit, an eval folder is read as whole runs only."""
    sample = tmp_path / "sample"
    commit_run(sample, "2025-01-01T00-00-00.1")
    total = _count_renames(monkeypatch, lambda: commit_run(sample, "2025-01-02T00-00-00.1"))
    found = set()
    for rename in range(1, total + 1):
        out = tmp_path / f"killed-{rename}"
        commit_run(out, "2025-01-01T00-00-00.1")
        _kill_at(monkeypatch, rename, lambda out=out: commit_run(out, "2025-01-02T00-00-00.1"))
        results_files = find_results_files([out], Notes())  # before any cleaning
        found.add(len(results_files))
        for results in results_files:
            date = results.stem.removeprefix("results_")
            log = results.parent / f"samples_wvs_culture_aware_usa_{date}.jsonl"
            assert len(log.read_text().splitlines()) == 40, rename
        with claim_folder(out):
            pass
        assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MANIFEST_NAME]
        assert len(find_results_files([out], Notes())) == len(results_files)
    assert found == {1, 2}  # the second run counts once its results file is in place


def test_staging_debris_of_killed_runs_is_never_a_run_and_is_cleaned(runs, tmp_path, capsys):
    out = tmp_path / "eval"
    commit_run(out, "2025-01-01T00-00-00.1")
    tasks = {"wvs_culture_aware_usa": answers_for("USA", 0.5, 1)}
    debris = [
        out / ".culturespa-staging-999999-abc" / "org__m",  # a killed eval of this version
        out / ".eval.ab12cd34" / "org__m",  # of an older version, inside the folder
        tmp_path / ".eval.zz99yy88" / "org__m",  # and beside it
        out / ".replaced.qq11ww22" / "org__m",
    ]
    for folder in debris:
        write_run(folder, "2025-01-03T00-00-00.1", tasks, {"pretrained": "org/m"})
    assert main(["report", str(out), "-o", str(tmp_path / "report"), "--no-plots"]) == 0
    assert "mean of" not in (tmp_path / "report" / "comparison.md").read_text()
    assert len(find_results_files([out], Notes())) == 1
    with claim_folder(out):
        pass
    assert not any(folder.parent.exists() for folder in debris)


def test_a_report_never_writes_into_an_eval_folder(tmp_path, capsys):
    """One kind of output per folder: a report replaces its older files, and an eval folder's
    runs are not a report's files."""
    out = tmp_path / "eval"
    commit_run(out, "2025-01-01T00-00-00.1")
    before = snapshot(tmp_path)
    assert main(["report", str(out), "-o", str(out), "--no-plots", "--overwrite"]) == 2
    one_line(capsys.readouterr().err, "holds culturespa's eval output")
    assert snapshot(tmp_path) == before


def test_a_second_writer_is_refused_with_the_first_ones_pid(runs, tmp_path, capsys):
    out = tmp_path / "report"
    with folder_held_by_another_process(out) as holder:
        assert main(["report", str(runs["both"]), "-o", str(out), "--no-plots"]) == 2
        one_line(capsys.readouterr().err, f"is in use by PID {holder.pid}")
        assert visible(out) == set()
    assert main(["report", str(runs["both"]), "-o", str(out), "--no-plots"]) == 0
    assert not (out / ".culturespa.lock").exists()


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_the_loop_adopts_no_folder_without_its_record(tmp_path, monkeypatch, capsys, dry_run):
    from culturespa.loop.main import main as loop_main

    monkeypatch.chdir(ROOT)
    out = tmp_path / "mine"
    (out / "train" / "culture_joint").mkdir(parents=True)
    (out / "train" / "culture_joint" / "adapter_model.safetensors").write_text("the user's")
    before = snapshot(tmp_path)
    argv = ["--config", str(LOOP_CONFIG), "--output-dir", str(out)]
    assert loop_main(argv + (["--dry-run"] if dry_run else [])) == 2
    captured = capsys.readouterr()
    one_line(captured.err, "has no loop.json")
    assert "would run" not in captured.out
    assert snapshot(tmp_path) == before


def test_build_data_adopts_no_folder_without_its_manifest(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "sft").mkdir(parents=True)
    (out / "sft" / "data.jsonl").write_text("the user's\n")
    config = {
        "model": {"name": str(tmp_path / "no-model"), "device": "cpu"},
        "output_dir": str(out),
        "countries": ["USA"],
        "questions_file": str(QUESTIONS),
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    before = snapshot(tmp_path)
    assert main(["build-data", "--config", str(tmp_path / "config.yaml")]) == 2
    one_line(capsys.readouterr().err, "has no manifest.json")
    assert snapshot(tmp_path) == before


def test_merge_adapter_adopts_no_folder_of_user_files(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "merge_adapter", ROOT / "recipes" / "merge_adapter.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    out = user_folder(tmp_path / "mine")
    before = snapshot(tmp_path)
    assert script.main([str(tmp_path / "adapter"), str(out)]) == 2
    one_line(capsys.readouterr().err, "is not empty")
    assert snapshot(tmp_path) == before


def test_a_manifest_that_points_outside_its_folder_is_refused(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (tmp_path / "precious.txt").write_text("keep")
    (out / MANIFEST_NAME).write_text(json.dumps({"files": ["../precious.txt"]}))
    with pytest.raises(CulturespaError, match="not a culturespa manifest"), claim_folder(out):
        pass
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_a_full_disk_in_the_answer_stage_is_one_line_and_the_rerun_resumes(tmp_path, monkeypatch):
    """The data builder's answer stage appends to its log: a full disk there is one line (it was
    a traceback), no torn unit stays in the log, and the same run finishes once there is room."""
    from support.pluralise_fakes import ScriptedBackend

    from culturespa.pluralise.config import config_from_dict
    from culturespa.pluralise.pipeline import run_pipeline

    data = {
        "model": {"name": "scripted"},
        "output_dir": str(tmp_path / "run"),
        "countries": ["USA"],
        "questions_file": str(QUESTIONS),
        "questions_limit_per_topic": 1,
        "answer": {"chunk_size": 4},
    }
    real_open, real_write, logs = os.open, os.write, set()

    def open_(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if Path(path).name == "answers.log.jsonl":
            logs.add(fd)
        return fd

    calls: list[int] = []

    def second_unit_fills_the_disk(fd, payload):
        if fd in logs:
            calls.append(fd)
            if len(calls) == 2:
                real_write(fd, bytes(payload[: len(payload) // 2]))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, payload)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", open_)
        patch.setattr(os, "write", second_unit_fills_the_disk)
        with pytest.raises(CulturespaError, match="No space left on device") as caught:
            run_pipeline(
                config_from_dict(data), backend=ScriptedBackend(), stages=("filter", "answer")
            )
    assert "\n" not in str(caught.value) and "answers.log.jsonl" in str(caught.value)
    log = tmp_path / "run" / "answers" / "answers.log.jsonl"
    assert len(log.read_text().splitlines()) == 4  # the first unit (a chunk of 4), whole
    summaries = run_pipeline(config_from_dict(data), backend=ScriptedBackend(), stages=("answer",))
    assert summaries["answer"]["written"] == 36 == len(log.read_text().splitlines())
