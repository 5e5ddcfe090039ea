"""`culturespa-hf` gives lm-eval's `hf` log-likelihoods request for request, with adapters too."""

from __future__ import annotations

import pytest

pytest.importorskip("lm_eval")


def test_same_loglikelihoods_as_hf(tiny_model_dir):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from culturespa.inference.lm_eval_model import CulturespaHFLM
    from culturespa.prompts.templates import render

    plain = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=4)
    cached = CulturespaHFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=3)
    requests = []
    for country, qid in (("USA", "Q1"), ("USA", "Q2"), ("CHN", "Q1"), ("NGA", "Q46")):
        messages = render("culture_aware", qid, country).as_messages()
        ctx = plain.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        for number in ("1", "4", "10"):  # one, two and three continuation tokens
            requests.append(Instance("loglikelihood", {}, (ctx, f"{number}<|im_end|>"), 0))
    expected = plain.loglikelihood(requests, disable_tqdm=True)
    got = cached.loglikelihood(requests, disable_tqdm=True)
    assert len(got) == len(expected)
    for (lp_a, greedy_a), (lp_b, greedy_b) in zip(expected, got):
        assert lp_b == pytest.approx(lp_a, abs=1e-4)
        assert greedy_a == greedy_b


def test_same_loglikelihoods_with_a_lora_adapter(tiny_model_dir, tmp_path):
    pytest.importorskip("peft")
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from culturespa.inference.lm_eval_model import CulturespaHFLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(tmp_path / "adapter")
    kwargs = {"pretrained": str(tiny_model_dir), "peft": str(tmp_path / "adapter"), "device": "cpu"}
    plain, cached = HFLM(batch_size=2, **kwargs), CulturespaHFLM(batch_size=2, **kwargs)
    ctx = plain.tokenizer.apply_chat_template(
        [{"role": "system", "content": "You are Kenyan."}, {"role": "user", "content": "Q1?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    requests = [Instance("loglikelihood", {}, (ctx, f"{n}<|im_end|>"), 0) for n in (1, 2, 10)]
    expected = plain.loglikelihood(requests, disable_tqdm=True)
    got = cached.loglikelihood(requests, disable_tqdm=True)
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in expected], abs=1e-4)
