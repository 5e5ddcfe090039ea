"""Where each stage of the loop writes inside the run folder, and when its output is complete."""

from __future__ import annotations

from pathlib import Path

from culturespa.run_files import (
    BASE_MODEL_RUN,
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

TINY_MODEL = "tiny"
"""`model: tiny`: the loop builds the tiny random test model into its run folder first."""


class Layout:
    """Where each stage writes inside the run folder, and when its output is complete."""

    def __init__(
        self,
        out: Path,
        base_eval_folder: str = f"{EVAL_FOLDER}/{BASE_MODEL_RUN}",
        report_folder: str = REPORT_FOLDER,
    ) -> None:
        self.out = out
        self.tiny_model = out / "tiny_llama"
        self.data = out / DATA_FOLDER
        self.data_config = out / "data_config.yaml"
        self.joint = out / TRAIN_FOLDER / JOINT
        self.specific = out / TRAIN_FOLDER / SPECIFIC
        self.eval = out / EVAL_FOLDER
        self.base_eval = out / base_eval_folder
        self.report = out / report_folder
        self.timings = out / "loop_timings.json"
        self.manifest = out / "loop.json"
        self.summary = out / "summary.md"

    def model_path(self, model: str) -> str:
        """The model the stages load: the run folder's tiny model for `tiny`, else `model`."""
        return str(self.tiny_model) if model == TINY_MODEL else model

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
        """The lm-eval results of the base model (`base`), the culture-joint adapter or one
        country's culture-specific adapter."""
        if which == BASE_MODEL_RUN:
            return self.base_eval
        return self.eval / which / country if country else self.eval / which

    @staticmethod
    def results_done(folder: Path) -> bool:
        """A results file outside hidden folders (a killed run's staging is not a result)."""
        from culturespa.output_folder import is_hidden_part

        found = folder.rglob(RESULTS_GLOB) if folder.is_dir() else ()
        return any(not is_hidden_part(p, folder) for p in found)
