"""The names of the files and folders culturespa's stages write and read: one home every layer uses.

- lm-eval's output: one results file `results_<date id>.json` per run and, with sample logging,
  one sample log `samples_<task>_<date id>.jsonl` per task beside it (lm-eval's own naming).
- The data builder's stage outputs under its `<output_dir>`: `questions/generated.jsonl`,
  `questions/filtered.jsonl`, `answers/answers.jsonl`, `collected/collected.jsonl`; its
  training sets under `sft/`: per variant a `save_to_disk`
  folder and a JSONL file (`culture_joint/` + `culture_joint.jsonl`, ...), one of each per
  country under `culture_specific/`, and the dataset card `README.md` (written last).
- A training run's folder: the adapter, the model card `README.md`, the run record
  `culturespa_training.json` (written last: a complete adapter has it) and, for a run over
  several countries, the adapter index `adapters.json`.
- A loop run folder: `data/` (the builder's output), `train/<variant>[/<ISO3>]`,
  `eval/base`, `eval/<variant>[/<ISO3>]` and `report/`.
"""

from __future__ import annotations

from pathlib import Path

RESULTS_PREFIX = "results_"
RESULTS_GLOB = f"{RESULTS_PREFIX}*.json"
"""lm-eval's results file of one run: `results_<date id>.json`."""
SAMPLES_PREFIX = "samples_"
SAMPLES_GLOB = f"{SAMPLES_PREFIX}*.jsonl"
"""lm-eval's sample logs: `samples_<task>_<date id>.jsonl`, one per task of a run."""


def run_date_id(results_file: Path) -> str:
    """The run's date id (lm-eval's `2025-01-02T10-00-00.123`) from its results file's name."""
    return results_file.stem.removeprefix(RESULTS_PREFIX)


def samples_file_name(task: str, run_date_id: str) -> str:
    """The sample log of one task of a run: `samples_<task>_<date id>.jsonl`."""
    return f"{SAMPLES_PREFIX}{task}_{run_date_id}.jsonl"


def samples_of_run_glob(run_date_id: str) -> str:
    """Every sample log of one run."""
    return f"{SAMPLES_PREFIX}*_{run_date_id}.jsonl"


QUESTIONS_FOLDER = "questions"
GENERATED_QUESTIONS = "generated.jsonl"
FILTERED_QUESTIONS = "filtered.jsonl"
ANSWERS_FOLDER = "answers"
ANSWERS_FILE = "answers.jsonl"
ANSWER_LOG = "answers.log.jsonl"
"""The answer stage's resumable log (beside ANSWERS_FILE)."""
COLLECTED_FOLDER = "collected"
COLLECTED_FILE = "collected.jsonl"
"""The builder's stages 1 to 4 write these files into these folders of its output folder."""

SFT_FOLDER = "sft"
"""The builder's training sets, under its output folder."""
JOINT = "culture_joint"
CROSS_CULTURE_JOINT = "cross_culture_thinking_joint"
SPECIFIC = "culture_specific"
VARIANTS: tuple[str, ...] = (JOINT, CROSS_CULTURE_JOINT, SPECIFIC)
"""The training-set variants; each names its folder and JSONL file under `sft/`, and the loop
names its adapters and their evaluations after them."""
DATASET_CARD = "README.md"
"""The builder's dataset card in `sft/`, written after every set: the data stage is complete."""


def set_jsonl(folder: Path) -> Path:
    """A training set's JSONL file beside its `save_to_disk` folder: `sft/culture_joint` ->
    `sft/culture_joint.jsonl`, `sft/culture_specific/USA` -> `sft/culture_specific/USA.jsonl`."""
    return folder.with_suffix(".jsonl")


def country_set(sft: Path, country: str) -> Path:
    """One country's culture-specific set folder: `sft/culture_specific/<ISO3>`."""
    return sft / SPECIFIC / country


MODEL_CARD = "README.md"
TRAINING_RECORD = "culturespa_training.json"
"""A training run's machine-readable record, written last: an adapter folder that holds it is
complete."""
ADAPTER_INDEX = "adapters.json"
"""A culture-specific training run's index: {"base_model", "adapters": {ISO3: path}}."""

DATA_FOLDER = "data"
TRAIN_FOLDER = "train"
EVAL_FOLDER = "eval"
REPORT_FOLDER = "report"
BASE_MODEL_RUN = "base"
"""The loop's evaluation of the model without an adapter: `eval/base`."""
