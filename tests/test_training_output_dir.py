"""The training's output folder is claimed like every folder culturespa writes (issue 27): a folder
of the user's files is refused before any model loads (one line, exit 2, nothing changed) unless
--overwrite, which keeps the user's files; one writer at a time; a folder culturespa's training
started is its own, so a killed run's rerun resumes from its checkpoint there; culture-specific
training claims its root and one folder per country."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from support.folder_holder import folder_held_by_another_process
from support.training_sets import sft_rows, write_set

from culturespa.cli.main import main
from culturespa.output_folder import MANIFEST_NAME, claim_folder
from culturespa.run_files import ADAPTER_INDEX, TRAINING_RECORD
from culturespa.training import output_dir, trainer

ROOT = Path(__file__).resolve().parents[1]
TINY_RECIPE = ROOT / "recipes" / "tiny_cpu_smoke.yaml"
NOTES = "the user's notes\n"


class Killed(BaseException):
    """A kill at a checkpoint: no handler of the code under test runs for it."""


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> Path:
    """sft/culture_joint (USA and CHN) and sft/culture_specific/{USA,CHN}, 4 rows each."""
    sft = tmp_path_factory.mktemp("data") / "sft"
    write_set(
        sft / "culture_joint",
        sft_rows("USA", "culture_joint", 4) + sft_rows("CHN", "culture_joint", 4),
    )
    for code in ("USA", "CHN"):
        write_set(sft / "culture_specific" / code, sft_rows(code, "culture_specific", 4))
    return sft


def train(tiny_model_dir, dataset: Path, out: Path, *extra: str) -> int:
    """`culturespa train` of the tiny recipe, two steps of four examples, on one thread."""
    import torch

    argv = [
        "train", "--config", str(TINY_RECIPE), "--model_name_or_path", str(tiny_model_dir),
        "--dataset_path", str(dataset), "--output_dir", str(out), "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--mask_check_examples", "2", *extra,
    ]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def one_line(err: str, part: str) -> None:
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("culturespa train: error: ") and part in err, err


def manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_NAME).read_text())


@pytest.fixture
def no_model(monkeypatch) -> list:
    """Training replaced by a record of its calls: a refusal must come before it."""
    calls: list = []
    monkeypatch.setattr(trainer, "train_adapter", lambda *a, **k: calls.append(a))
    return calls


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text(NOTES)
    return path


@pytest.mark.parametrize("countries", [(), ("--countries", "all")], ids=["joint", "specific"])
def test_a_folder_of_user_files_is_refused_before_any_model_loads(
    countries, tiny_model_dir, sets, tmp_path, capsys, no_model
):
    out = user_folder(tmp_path / "mine")
    dataset = sets / ("culture_specific" if countries else "culture_joint")
    before = snapshot(tmp_path)
    assert train(tiny_model_dir, dataset, out, *countries) == 2
    err = capsys.readouterr().err
    one_line(err, "is not empty and has no .culturespa-manifest.json")
    assert "notes.txt" in err and "--overwrite" in err
    assert no_model == [] and snapshot(tmp_path) == before


def test_a_country_folder_of_user_files_is_refused_before_the_first_adapter(
    tiny_model_dir, sets, tmp_path, capsys, no_model
):
    out = tmp_path / "specific"
    with claim_folder(out, kind=output_dir.ADAPTER_SET_KIND) as folder:
        folder.record_written([])  # the root is culturespa's, CHN's folder is the user's
    user_folder(out / "CHN")
    before = snapshot(tmp_path)
    assert train(tiny_model_dir, sets / "culture_specific", out, "--countries", "all") == 2
    one_line(capsys.readouterr().err, f"{out / 'CHN'} is not empty")
    assert no_model == [] and snapshot(tmp_path) == before


def test_a_folder_of_another_kind_is_refused(tiny_model_dir, sets, tmp_path, capsys, no_model):
    out = tmp_path / "eval"
    with claim_folder(out, kind="eval") as folder:
        folder.record_written([])
    before = snapshot(tmp_path)
    assert train(tiny_model_dir, sets / "culture_joint", out, "--overwrite") == 2
    one_line(capsys.readouterr().err, "holds culturespa's eval output, not a LoRA adapter")
    assert no_model == [] and snapshot(tmp_path) == before


def test_a_second_writer_is_refused_with_the_first_ones_pid(
    tiny_model_dir, sets, tmp_path, capsys, no_model
):
    out = tmp_path / "adapter"
    with folder_held_by_another_process(out) as holder:
        assert train(tiny_model_dir, sets / "culture_joint", out) == 2
        one_line(capsys.readouterr().err, f"is in use by PID {holder.pid}")
    assert no_model == []


def test_overwrite_trains_beside_the_users_files_and_keeps_them(tiny_model_dir, sets, tmp_path):
    out = user_folder(tmp_path / "mine")
    assert train(tiny_model_dir, sets / "culture_joint", out, "--overwrite") == 0
    assert (out / "notes.txt").read_text() == NOTES
    record = manifest(out)
    assert record["kind"] == "LoRA adapter" and "notes.txt" not in record["files"]
    for name in ("adapter_model.safetensors", "adapter_config.json", "README.md", TRAINING_RECORD):
        assert name in record["files"] and (out / name).is_file(), name
    assert not (out / ".culturespa.lock").exists()


def test_a_killed_run_resumes_from_its_checkpoint_in_the_same_folder(
    tiny_model_dir, sets, tmp_path, monkeypatch
):
    out = tmp_path / "adapter"
    saves = ("--save_strategy", "steps", "--save_steps", "1")
    recorded = output_dir.TrainingFolder.record

    def killed_after_the_first_checkpoint(self, names=None):
        recorded(self, names)
        if (self.path / "checkpoint-1").is_dir():
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(output_dir.TrainingFolder, "record", killed_after_the_first_checkpoint)
        with pytest.raises(Killed):
            train(tiny_model_dir, sets / "culture_joint", out, *saves)
    (out / ".culturespa.lock").write_text("999999999\n")  # a kill -9 leaves its lock file
    first = out / "checkpoint-1" / "adapter_model.safetensors"
    assert first.is_file() and not (out / TRAINING_RECORD).exists()
    assert "checkpoint-1/adapter_model.safetensors" in manifest(out)["files"]
    stamp = (first.read_bytes(), first.stat().st_mtime_ns)

    resume = ("--resume_from_checkpoint", str(out / "checkpoint-1"))
    assert train(tiny_model_dir, sets / "culture_joint", out, *saves, *resume) == 0
    assert (first.read_bytes(), first.stat().st_mtime_ns) == stamp  # step 1 was not trained again
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    files = manifest(out)["files"]
    assert "checkpoint-2/adapter_model.safetensors" in files and TRAINING_RECORD in files


def test_culture_specific_runs_share_their_root_one_country_at_a_time(
    tiny_model_dir, sets, tmp_path
):
    """As the loop trains: one `--countries CC` run after another into the same root."""
    out = tmp_path / "specific"
    for code in ("USA", "CHN"):
        steps = ("--max_steps", "1")
        assert (
            train(tiny_model_dir, sets / "culture_specific", out, "--countries", code, *steps) == 0
        )
        assert manifest(out / code)["kind"] == "LoRA adapter"
        assert "adapter_model.safetensors" in manifest(out / code)["files"]
    root = manifest(out)
    assert root["kind"] == "per-country adapter set" and root["files"] == [ADAPTER_INDEX]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST_NAME, ADAPTER_INDEX, "USA", "CHN"]
    )
