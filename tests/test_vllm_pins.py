"""The vLLM pins agree with each other: package extra, GPU constraints, CPU lock, docs/vllm.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (names normalised as pip does)."""
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            found[re.sub(r"[-_.]+", "-", req.name).lower()] = spec.version
    return found


def extras() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {k: [Requirement(r) for r in v] for k, v in project["optional-dependencies"].items()}


def exact(extra: str, name: str) -> str:
    (req,) = [r for r in extras()[extra] if r.name == name]
    (spec,) = req.specifier
    return spec.version


def test_cpu_lock_and_gpu_constraints_match_the_extra_and_the_project_pins():
    lock = pins(ROOT / "constraints" / "vllm-cpu.txt")
    gpu = pins(ROOT / "constraints" / "vllm-gpu.txt")
    (vllm_range,) = extras()["vllm"]
    assert vllm_range.name == "vllm"
    assert lock["vllm-cpu"] == gpu["vllm"] and lock["vllm-cpu"] in vllm_range.specifier
    assert lock["torch"] == "2.13.0+cpu" and gpu["torch"] == "2.13.0"
    for name, extra in (("transformers", "hf"), ("peft", "hf"), ("lm-eval", "eval")):
        assert lock[name] == gpu[name] == exact(extra, name), name


def test_cpu_lock_leaves_out_what_cannot_load_beside_the_cpu_torch():
    text = (ROOT / "constraints" / "vllm-cpu.txt").read_text()
    left_out = re.findall(r"^#   ([\w.-]+): ", text, flags=re.M)
    assert {"torchvision", "torchaudio", "torchcodec", "triton"} <= set(left_out)
    assert not set(left_out) & set(pins(ROOT / "constraints" / "vllm-cpu.txt"))
    assert "vllm" not in pins(ROOT / "constraints" / "vllm-cpu.txt")  # the alias is built


def test_vllm_page_names_the_locked_vllm_version_and_existing_files():
    readme = (ROOT / "docs" / "vllm.md").read_text()
    version = pins(ROOT / "constraints" / "vllm-cpu.txt")["vllm-cpu"]
    assert f"vllm-cpu {version}" in readme and f"`{version}+cpu`" in readme
    for path in re.findall(
        r"(?:scripts|constraints|recipes/data)/[\w.-]+\.(?:sh|py|txt|yaml)", readme
    ):
        assert (ROOT / path).is_file(), path
