"""The vLLM backend: imported lazily; real runs need vllm and a CUDA GPU."""

from __future__ import annotations

import importlib.util

import pytest

from culturespa.errors import CulturespaError
from culturespa.inference.backends import build_backend


def test_module_imports_without_vllm():
    import culturespa.inference.backends.vllm  # noqa: F401  (no vllm import at module level)


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
    from culturespa.inference.backends.base import SamplingSettings
    from culturespa.inference.backends.hf import HFBackend

    conv = [[{"role": "system", "content": "S"}, {"role": "user", "content": "Pick 1 or 10"}]]
    vllm_backend = build_backend(
        "vllm", str(tiny_model_dir), gpu_memory_utilization=0.3, max_model_len=1024, dtype="float32"
    )
    got = vllm_backend.option_logprobs(conv, [["1", "10"]])
    want = HFBackend(str(tiny_model_dir), device="cpu").option_logprobs(conv, [["1", "10"]])
    assert got[0] == pytest.approx(want[0], abs=1e-3)
    assert len(vllm_backend.generate(conv * 3, SamplingSettings(4, 0.6, 0.9, 1))) == 3


def test_backend_logic_against_a_cpu_stand_in_for_vllm(tiny_model_dir, monkeypatch):
    """Option scoring reads each answer token where it is generated, and stop strings and prefixes
    behave as with the transformers backend (vLLM's documented semantics, run on the CPU)."""
    pytest.importorskip("torch")
    from support import fake_vllm as _fake_vllm

    from culturespa.inference.backends.base import SamplingSettings
    from culturespa.inference.backends.hf import HFBackend

    _fake_vllm.install(monkeypatch)
    backend = build_backend("vllm", str(tiny_model_dir), tensor_parallel_size=2)
    assert _fake_vllm.LLM.last.kwargs["tensor_parallel_size"] == 2
    assert _fake_vllm.LLM.last.kwargs["enable_prefix_caching"] is True
    hf = HFBackend(str(tiny_model_dir), device="cpu", batch_size=2)
    convs = [
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Pick 1 or 10"}],
        [{"role": "system", "content": "T"}, {"role": "user", "content": "How often? 1.A 2.B 3.C"}],
    ]
    labels = [["1", "10"], ["1", "2", "3"]]
    got = backend.option_logprobs(convs, labels)
    want = hf.option_logprobs(convs, labels)
    assert [len(r) for r in got] == [2, 3]
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-4)

    prefixed = [*convs[0], {"role": "assistant", "content": '{"question": "'}]
    greedy = SamplingSettings(16, 0.0)
    free = backend.generate([prefixed, convs[1]], greedy)
    assert free == hf.generate([prefixed, convs[1]], greedy)
    stops = tuple({text[3:5] for text in free if len(text) >= 5})
    stopped = backend.generate([prefixed, convs[1]], SamplingSettings(16, 0.0, stop=stops))
    assert stopped == hf.generate([prefixed, convs[1]], SamplingSettings(16, 0.0, stop=stops))
    assert any(s != f for s, f in zip(stopped, free))
    assert all(any(s.endswith(x) for x in stops) for s, f in zip(stopped, free) if s != f)
