"""Where each stage of the loop writes inside the run folder, and when its output is complete."""

from __future__ import annotations

from pathlib import Path

from culturespa.run_files import (
    DATA_FOLDER,
    DATASET_CARD,
    EVAL_FOLDER,
    JOINT,
    REPORT_FOLDER,
    RESULTS_GLOB,
    SFT_FOLDER,
    SPECIFIC,
    TRAIN_FOLDER,
    TRAINING_RECORD,
    country_set,
    set_jsonl,
)

STAGES: tuple[str, ...] = ("data", "train", "eval", "report")
"""The loop's stages, in the order they run."""


class Layout:
    """Where each stage writes inside the run folder, and when its output is complete."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.data = out / DATA_FOLDER
        self.data_config = out / "data_config.yaml"
        self.joint = out / TRAIN_FOLDER / JOINT
        self.specific = out / TRAIN_FOLDER / SPECIFIC
        self.eval = out / EVAL_FOLDER
        self.report = out / REPORT_FOLDER
        self.timings = out / "loop_timings.json"
        self.manifest = out / "loop.json"
        self.summary = out / "summary.md"

    def data_done(self) -> bool:
        return (self.data / SFT_FOLDER / DATASET_CARD).is_file()

    def training_rows(self, country: str | None = None) -> int:
        """Rows of the joint set, or of one country's set (0 when the file is missing)."""
        sft = self.data / SFT_FOLDER
        path = set_jsonl(sft / JOINT if country is None else country_set(sft, country))
        if not path.is_file():
            return 0
        with path.open(encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())

    @staticmethod
    def adapter_done(folder: Path) -> bool:
        return (folder / TRAINING_RECORD).is_file()

    def eval_folder(self, which: str, country: str | None = None) -> Path:
        return self.eval / which / country if country else self.eval / which

    @staticmethod
    def results_done(folder: Path) -> bool:
        """A results file outside hidden folders (a killed run's staging is not a result)."""
        from culturespa.output_folder import is_hidden_part

        found = folder.rglob(RESULTS_GLOB) if folder.is_dir() else ()
        return any(not is_hidden_part(p, folder) for p in found)
