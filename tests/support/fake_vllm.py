"""A stand-in for the parts of vLLM's offline API that `culturespa.inference.backends.vllm_backend` uses,
computed with transformers on the CPU, so the backend's own logic runs without a GPU.

Semantics follow vLLM's documentation: with `SamplingParams.logprob_token_ids`,
`RequestOutput.outputs[0].logprobs[0]` maps each of those token ids to an object with `.logprob`,
its log-probability as the first generated token (raw, before sampling settings); generation
stops at the first stop string, which the text keeps only with `include_stop_str_in_output=True`.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field


@dataclass
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] | None = None
    include_stop_str_in_output: bool = False
    logprob_token_ids: list[int] | None = None


def TokensPrompt(prompt_token_ids):  # vLLM spells it as a class
    return {"prompt_token_ids": list(prompt_token_ids)}


@dataclass
class Logprob:
    logprob: float


@dataclass
class _Completion:
    text: str
    logprobs: list | None = None


@dataclass
class _RequestOutput:
    outputs: list


@dataclass
class LLM:
    model: str
    kwargs: dict = field(default_factory=dict)

    def __init__(self, model: str, **kwargs) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model
        self.kwargs = kwargs
        self._tok = AutoTokenizer.from_pretrained(model)
        self._lm = AutoModelForCausalLM.from_pretrained(model).eval()
        LLM.last = self

    def get_tokenizer(self):
        return self._tok

    def generate(self, prompts, params, use_tqdm=True):
        import torch

        many = isinstance(params, list)
        outs = []
        for i, prompt in enumerate(prompts):
            p = params[i] if many else params
            ids = torch.tensor([prompt["prompt_token_ids"]])
            with torch.inference_mode():
                if p.logprob_token_ids is not None:
                    logp = torch.log_softmax(self._lm(ids).logits[0, -1].float(), dim=-1)
                    table = {t: Logprob(float(logp[t])) for t in p.logprob_token_ids}
                    outs.append(_RequestOutput([_Completion("", [table])]))
                    continue
                new = self._lm.generate(
                    input_ids=ids,
                    max_new_tokens=p.max_tokens,
                    do_sample=False,
                    pad_token_id=self._tok.pad_token_id,
                )[0, ids.shape[1] :]
            text = self._tok.decode(new, skip_special_tokens=True)
            hits = [(text.find(s), s) for s in p.stop or [] if s in text]
            if hits:
                at, s = min(hits)
                text = text[: at + (len(s) if p.include_stop_str_in_output else 0)]
            outs.append(_RequestOutput([_Completion(text)]))
        return outs


def install(monkeypatch) -> None:
    """Make `import vllm` and `import vllm.inputs` give this stand-in for one test."""
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = TokensPrompt
    vllm.inputs = inputs
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
