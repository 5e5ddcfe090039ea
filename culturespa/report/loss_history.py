"""Read the training loss an adapter's trainer logged (TRL's `trainer_state.json`), for the loss
plots of the report and of the loop's summary."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from culturespa.errors import CulturespaError


@dataclass(frozen=True)
class LossPoint:
    """One logged optimizer step of a training run: its step, epoch (0..1 for one epoch), loss."""

    step: int
    epoch: float
    loss: float


def read_loss_history(adapter_dir: str | Path) -> list[LossPoint]:
    """The training loss per logged step from the `trainer_state.json` that TRL's trainer saves
    next to an adapter (`log_history` entries with a `loss`)."""
    path = Path(adapter_dir)
    path = path / "trainer_state.json" if path.is_dir() else path
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CulturespaError(f"{path}: no trainer state (train the adapter first)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CulturespaError(f"{path}: not a readable trainer state ({exc})") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise CulturespaError(f"{path}: no log_history list")
    points = []
    for entry in history:
        if not isinstance(entry, dict):
            continue
        loss, step, epoch = entry.get("loss"), entry.get("step"), entry.get("epoch", 0.0)
        numbers = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in (loss, step, epoch)
        )
        if numbers:
            points.append(LossPoint(int(step), float(epoch), float(loss)))
    return points
