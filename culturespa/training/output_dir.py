"""The training's output folder, claimed like every folder culturespa writes
(`culturespa.output_folder`): one writer at a time, and a non-empty folder culturespa did not
make is refused before any model loads, unless `overwrite`.

A trainer writes its checkpoints and adapter in place (resuming reads `checkpoint-*` there), so
nothing is staged: the manifest is written when training starts, which makes a folder that
culturespa's training started its own (a killed run's rerun, or a resume, is accepted), and it
lists every file the run wrote or changed, checkpoints as they are saved. A file of the user's
there is never listed, and training writes only the names a trainer and culturespa write.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from culturespa.atomic import check_output_dir
from culturespa.output_folder import OutputFolder, check_ours, claim_folder, is_hidden_part

ADAPTER_KIND = "LoRA adapter"
"""The manifest's kind of a folder one training run writes (a joint or one country's adapter)."""
ADAPTER_SET_KIND = "per-country adapter set"
"""The manifest's kind of the folder that holds one culture-specific adapter per country."""
WHAT = "output_dir"


def _file_stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, modification time) of each file under `folder`, hidden entries left out."""
    stamps = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and not is_hidden_part(path, folder):
            stat = path.stat()
            stamps[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return stamps


class TrainingFolder:
    """A claimed training folder: `start` marks it as culturespa's, `record` lists what the run
    wrote or changed since the claim. Without a folder (a process that does not save) both do
    nothing."""

    def __init__(self, path: Path, folder: OutputFolder | None) -> None:
        self.path = path
        self.folder = folder
        self.seen = _file_stamps(path) if folder else {}

    def start(self) -> None:
        if self.folder is not None:
            self.folder.record_written([])

    def record(self, names: list[str] | None = None) -> None:
        """List `names`, or else every file written or changed since the last record."""
        if self.folder is None:
            return
        if names is None:
            now = _file_stamps(self.path)
            names = [n for n, stamp in now.items() if self.seen.get(n) != stamp]
            self.seen = now
        self.folder.record_written(names)

    def callback(self):
        """A transformers callback that records each checkpoint once it is saved."""
        from transformers import TrainerCallback

        owner = self

        class RecordCheckpoints(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                owner.record()

        return RecordCheckpoints()


@contextmanager
def claim_training_folder(
    path: str | Path, saves: bool, overwrite: bool, kind: str = ADAPTER_KIND
) -> Iterator[TrainingFolder]:
    """Hold `path` for one training run; `saves`: whether this process writes files (in a
    distributed run only the main process claims, the others train)."""
    claim = claim_folder(path, WHAT, overwrite, kind=kind) if saves else nullcontext()
    with claim as folder:
        yield TrainingFolder(Path(path), folder)


def check_output_dir_is_ours(path: str | Path, overwrite: bool) -> None:
    """The folder checks of the claim, read-only and first, before a model is fetched: a file,
    a read-only folder, or (unless `overwrite`) a folder of files culturespa did not make."""
    check_output_dir(path, WHAT)
    if not overwrite:
        check_ours(path, WHAT)


def check_country_folders(root: Path, codes: list[str], overwrite: bool) -> None:
    """Refuse, before the first adapter trains, a country's folder of files culturespa did not
    make (its own check comes only when its turn comes)."""
    if not overwrite:
        for code in codes:
            check_ours(root / code, WHAT)
