"""vLLM backend: `pip install 'culturespa[vllm]'` on a GPU, `bash scripts/setup_vllm_cpu.sh` on a CPU.

`tensor_parallel_size` splits one model over the GPUs of a node (vLLM's own parallelism). For
replicas (data parallelism) the data builder's `ray` config section runs one backend per GPU (or
per tensor-parallel group) as a Ray actor (`culturespa.inference.replicas`), each on its own
chunks of prompts.
Option scoring reads each answer token's log-probability at the position where it would be
generated (`logprob_token_ids`), so that vLLM's automatic prefix caching computes each prompt once.

On a CPU (the `vllm-cpu` build) vLLM reserves its key/value cache from `VLLM_CPU_KVCACHE_SPACE`
(GiB; unset, it takes `gpu_memory_utilization` of the machine's memory), and `enforce_eager=True`
skips torch.compile, which otherwise adds about 20 s to every start on two cores.
"""

from __future__ import annotations

from collections.abc import Sequence

from culturespa.errors import CulturespaError
from culturespa.inference.backends.base import (
    ChatTokens,
    Conversation,
    SamplingSettings,
    cut_at_stop,
)


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
        trust_remote_code: bool = False,
        enforce_eager: bool = False,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise CulturespaError(
                "backend 'vllm' needs vllm: on a GPU pip install 'culturespa[vllm]', on a CPU "
                "bash scripts/setup_vllm_cpu.sh (docs/vllm.md)"
            ) from exc
        kwargs = dict(
            model=model,  # resolved where the name entered (`resolve_model`)
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
            enable_prefix_caching=True,
            trust_remote_code=trust_remote_code,
            enforce_eager=enforce_eager,
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
        """Sum of the log-probabilities of each option's answer tokens, read where they are generated.

        Every context (a prompt, or a prompt followed by the first tokens of an answer) is sent
        once, as a one-token request whose `logprob_token_ids` are the answer tokens that follow it
        there. The prompts go first; the longer contexts then reuse their key/value blocks through
        vLLM's prefix cache. Prompt log-probabilities (one request per option, `prompt_logprobs`)
        give the same values, but vLLM does not read the prefix cache for such requests: every
        option recomputed its whole prompt (3x slower with SmolLM2 on a CPU, measured).
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = self.chat.encode_prompts(conversations)
        answers = [[self.chat.label_tokens(lab) for lab in labs] for labs in labels]
        following: dict[tuple[int, tuple[int, ...]], set[int]] = {}
        for i, options in enumerate(answers):
            for answer in options:
                for j, token in enumerate(answer):
                    following.setdefault((i, tuple(answer[:j])), set()).add(token)
        logprob: dict[tuple[int, tuple[int, ...], int], float] = {}
        for prompts_only in (True, False):
            contexts = [c for c in following if (not c[1]) == prompts_only]
            if not contexts:
                continue
            rows = [TokensPrompt(prompt_token_ids=[*prompts[i], *prefix]) for i, prefix in contexts]
            params = [
                SamplingParams(
                    max_tokens=1, temperature=0.0, logprob_token_ids=sorted(following[c])
                )
                for c in contexts
            ]
            outputs = self.llm.generate(rows, params, use_tqdm=False)
            for (i, prefix), out in zip(contexts, outputs):
                table = out.outputs[0].logprobs[0]
                for token in following[i, prefix]:
                    logprob[i, prefix, token] = table[token].logprob
        return [
            [
                sum(logprob[i, tuple(answer[:j]), token] for j, token in enumerate(answer))
                for answer in options
            ]
            for i, options in enumerate(answers)
        ]

    def close(self) -> None:
        from culturespa.inference.vllm_shutdown import shutdown_engine

        shutdown_engine(self.llm)  # before Python exits: see culturespa.inference.vllm_shutdown
        del self.llm
