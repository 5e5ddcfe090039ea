"""scripts/gpu_check.py, the check prepared for a GPU machine, kept from rotting: its CPU mode
runs every check but the float32 parity (which tests/test_lm_eval_hf.py runs here), and without
a GPU its GPU mode stops at the environment line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("lm_eval")

ROOT = Path(__file__).resolve().parents[1]
CPU_CHECKS = [
    "wheels",
    "environment",
    "tiny model",
    "sft bf16 LoRA",
    "hf parity bfloat16",
    "hf parity bfloat16 + adapter",
    "build-data answer",
]


def gpu_check(*args: str, wheels: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--wheels", str(wheels), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.long
def test_every_check_passes_in_cpu_mode(tmp_path):
    done = gpu_check("--cpu", "--out", str(tmp_path / "work"), wheels=tmp_path / "no_wheels")
    lines = [x for x in done.stdout.splitlines() if x.startswith(("PASS", "FAIL"))]
    assert done.returncode == 0, "\n".join(lines) + done.stderr[-3000:]
    assert [x.split(":")[0] for x in lines] == [f"PASS {c}" for c in CPU_CHECKS] + [
        f"PASS all {len(CPU_CHECKS)} checks (" + lines[-1].split("(")[-1]
    ]
    assert "bf16 on cpu" in done.stdout and "84 prompts answered on cpu in bf16" in done.stdout
    assert (tmp_path / "work" / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="the GPU mode runs on this machine"
)
def test_gpu_mode_without_a_gpu_stops_at_the_environment(tmp_path):
    done = gpu_check(wheels=tmp_path / "no_wheels")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("FAIL environment: no CUDA device (use --cpu")
    assert not any(x.startswith("PASS tiny model") for x in lines)
