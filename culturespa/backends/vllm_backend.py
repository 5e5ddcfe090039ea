"""vLLM backend (optional extra `culturespa[vllm]`).

`tensor_parallel_size` splits one model over the GPUs of a node (vLLM's own parallelism). For
replicas (data parallelism) run one process per GPU or node with `--shard I/N`, which is what
vLLM's offline data-parallel example does too: each rank takes its own slice of the prompts.
Option scoring sends one row per (prompt, option) with `prompt_logprobs`, and vLLM's automatic
prefix caching computes each shared prompt once.
"""

from __future__ import annotations

from collections.abc import Sequence

from culturespa.backends.base import (
    ChatTokens,
    Conversation,
    SamplingSettings,
    cut_at_stop,
    group_by_labels,
)
from culturespa.errors import CulturespaError


class VLLMBackend:
    """An offline `vllm.LLM` engine."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = 4096,
        seed: int = 0,
        batch_size: int | None = None,  # vLLM schedules its own batches
        trust_remote_code: bool = False,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise CulturespaError(
                "backend 'vllm' needs vllm and a CUDA GPU: pip install 'culturespa[vllm]'"
            ) from exc
        from culturespa.backends import resolve_model

        kwargs = dict(
            model=resolve_model(model),
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
            enable_prefix_caching=True,
            trust_remote_code=trust_remote_code,
        )
        self.llm = LLM(**kwargs)
        self.chat = ChatTokens(self.llm.get_tokenizer())

    def generate(
        self, conversations: Sequence[Conversation], settings: SamplingSettings
    ) -> list[str]:
        """One batched `generate` over all conversations; request i gets seed `seed + i`."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [
            TokensPrompt(prompt_token_ids=ids) for ids in self.chat.encode_prompts(conversations)
        ]
        params = [
            SamplingParams(
                max_tokens=settings.max_new_tokens,
                temperature=max(settings.temperature, 0.0),
                top_p=settings.top_p,
                seed=settings.seed + i,
                stop=list(settings.stop) or None,
                include_stop_str_in_output=True,
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [cut_at_stop(out.outputs[0].text, settings.stop) for out in outputs]

    def option_logprobs(
        self, conversations: Sequence[Conversation], labels: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Sum of prompt log-probabilities of each option's answer tokens (prefix-cached)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = self.chat.encode_prompts(conversations)
        rows, spans = [], []
        for ids, labs in zip(prompts, labels):
            for lab in labs:
                answer = self.chat.label_tokens(lab)
                rows.append(TokensPrompt(prompt_token_ids=[*ids, *answer]))
                spans.append((len(ids), answer))
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(rows, params, use_tqdm=False)
        flat = []
        for out, (start, answer) in zip(outputs, spans):
            total = 0.0
            for j, token in enumerate(answer):
                total += out.prompt_logprobs[start + j][token].logprob
            flat.append(total)
        return group_by_labels(flat, labels)

    def close(self) -> None:
        del self.llm
