"""The vLLM backend: imported lazily; real runs need vllm and a CUDA GPU."""

from __future__ import annotations

import importlib.util

import pytest

from culturespa.backends import build_backend
from culturespa.errors import CulturespaError


def test_module_imports_without_vllm():
    import culturespa.backends.vllm_backend  # noqa: F401  (no vllm import at module level)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(CulturespaError, match=r"culturespa\[vllm\]"):
        build_backend("vllm", "some/model")


@pytest.mark.vllm
def test_vllm_scores_and_generates(tiny_model_dir):
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vllm needs a CUDA GPU")
    from culturespa.backends.base import SamplingSettings
    from culturespa.backends.hf import HFBackend

    conv = [[{"role": "system", "content": "S"}, {"role": "user", "content": "Pick 1 or 10"}]]
    vllm_backend = build_backend(
        "vllm", str(tiny_model_dir), gpu_memory_utilization=0.3, max_model_len=1024, dtype="float32"
    )
    got = vllm_backend.option_logprobs(conv, [["1", "10"]])
    want = HFBackend(str(tiny_model_dir), device="cpu").option_logprobs(conv, [["1", "10"]])
    assert got[0] == pytest.approx(want[0], abs=1e-3)
    assert len(vllm_backend.generate(conv * 3, SamplingSettings(4, 0.6, 0.9, 1))) == 3
