"""recipes/sft.py under `accelerate launch` with two CPU processes (DDP over gloo) against one.

Both runs train the tiny model on the same 32 conversations with the same seed and an effective
batch of 16 (4 per process): one process accumulates 4 micro-batches per step, two processes 2
each. accelerate deals the sampler's batches (the same seeded order in both runs) round-robin to
the processes, so every optimizer step sees the same 16 examples; only the summation order of the
gradients differs (accumulated in one process, or half in each and averaged over gloo).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("accelerate")

from support.training_sets import sft_rows, write_set

REPO = Path(__file__).resolve().parents[1]
STEPS = 4
ADAPTER_TOLERANCE = 1e-5
"""Largest absolute difference allowed between the two runs' LoRA weights after 4 steps (weights
up to about 0.15; measured: 1.5e-7, float32 rounding of a different summation order)."""


def launch(launcher_args: list[str], model: Path, data: Path, out: Path) -> str:
    """`accelerate launch ... recipes/sft.py` on the tiny recipe; its output (stdout + stderr)."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *launcher_args,
        "recipes/sft.py",
        "--config",
        "recipes/tiny_cpu_smoke.yaml",
        "--model_name_or_path",
        str(model),
        "--dataset_path",
        str(data),
        "--output_dir",
        str(out),
        "--effective_batch_size",
        "16",
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        str(STEPS),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def losses(out: Path) -> list[float]:
    state = json.loads((out / "trainer_state.json").read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


@pytest.mark.slow
@pytest.mark.long
def test_two_processes_train_the_same_adapter_as_one(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    data = write_set(
        tmp_path / "culture_joint",
        sft_rows("USA", "culture_joint", 16) + sft_rows("CHN", "culture_joint", 16),
    )
    one, two = tmp_path / "one", tmp_path / "two"
    launch(
        # --cpu: no accelerate config file, not even a default one in the user's cache
        ["--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no"],
        tiny_model_dir,
        data,
        one,
    )
    printed = launch(
        ["--config_file", "recipes/accelerate/multi_cpu.yaml", "--num_processes", "2"],
        tiny_model_dir,
        data,
        two,
    )

    runs = {
        n: json.loads((out / "culturespa_training.json").read_text())
        for n, out in ((1, one), (2, two))
    }
    spread = runs[2]["distributed"]
    assert (spread["type"], spread["backend"], spread["processes"]) == ("MULTI_CPU", "gloo", 2)
    assert spread["device"].startswith("cpu")
    assert runs[1]["distributed"]["processes"] == 1
    # the effective batch holds: accumulation halves with twice the processes
    for processes, accumulation in ((1, 4), (2, 2)):
        h = runs[processes]["hyperparameters"]
        assert (h["world_size"], h["gradient_accumulation_steps"]) == (processes, accumulation)
        assert h["effective_batch_size"] == 16
    # the loss falls, and both runs see the same batches
    first, second = losses(one), losses(two)
    assert len(first) == len(second) == STEPS
    assert second[-1] < second[0] - 1.0, second
    assert second == pytest.approx(first, rel=1e-5)
    # one adapter, saved once by the main process
    assert printed.count("adapter saved to") == 1
    a = load_file(one / "adapter_model.safetensors")
    b = load_file(two / "adapter_model.safetensors")
    assert a.keys() == b.keys() and len(a) > 0
    assert not all(float(t.abs().sum()) == 0 for k, t in a.items() if "lora_B" in k)
    difference = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert difference <= ADAPTER_TOLERANCE, difference
