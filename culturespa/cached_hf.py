"""An lm-eval `hf` model that scores log-likelihoods with a shared-prefix KV cache (fast on CPU).

The WVS prompts of one task share a long prefix (chat markup, persona, instructions), and every
item asks for a few short continuations ("1<|im_end|>", "2<|im_end|>", ...). lm-eval's `hf`
model runs one full forward pass per continuation. This one runs each distinct context once,
reusing the key/value cache of the prefix it shares with the previous context, and scores all
continuations of a context in one small batched pass. Tokenisation is lm-eval's own, so the
numbers are those of `hf` up to floating-point rounding. Registered as `hf-prefix-cache`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

logger = logging.getLogger(__name__)

Request = tuple[tuple[str, str], list[int], list[int]]


def common_prefix_length(first: Sequence[int], second: Sequence[int]) -> int:
    """Number of leading tokens two sequences share."""
    n = 0
    for a, b in zip(first, second):
        if a != b:
            break
        n += 1
    return n


@register_model("hf-prefix-cache")
class PrefixCachedHFLM(HFLM):
    """HFLM whose log-likelihood pass reuses the KV cache of the prefix shared with the last context."""

    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, override_bs: int | None = None
    ) -> list[tuple[float, bool]]:
        """(log-likelihood, is greedy) of each continuation, in request order."""
        import torch
        from tqdm import tqdm
        from transformers import DynamicCache

        if self.backend != "causal":
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, (_, context, continuation) in enumerate(requests):
            if not context or not continuation:
                return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
            if len(context) + len(continuation) > self.max_length:
                return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
            groups.setdefault(tuple(context), []).append(index)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        cache, cached = None, ()
        bar = tqdm(
            total=len(groups),
            desc="Scoring prompts (prefix cache)",
            disable=disable_tqdm or self.rank != 0,
        )
        with torch.inference_mode():
            for context in sorted(groups):  # neighbours share the longest prefixes
                keep = min(common_prefix_length(cached, context), len(context) - 1)
                if cache is None or keep == 0:
                    cache, keep = DynamicCache(config=self.model.config), 0
                elif cache.get_seq_length() > keep:
                    cache.crop(keep - cache.get_seq_length())  # a negative count removes tokens
                ids = torch.tensor([context[keep:]], device=self.device)
                out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
                cache, cached = out.cache, context
                first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
                self._score_group(requests, groups[context], first, cache, results)
                bar.update(1)
        bar.close()
        return results  # type: ignore[return-value]

    def _score_group(self, requests, indices, first, cache, results) -> None:
        """Score every continuation of one context; longer ones in one batched pass."""
        import torch

        longer = [i for i in indices if len(requests[i][2]) > 1]
        for i in indices:
            token = requests[i][2][0]
            if i not in longer:
                results[i] = self._record(
                    requests[i], float(first[token]), int(first.argmax()) == token
                )
        if not longer:
            return
        width = max(len(requests[i][2]) for i in longer) - 1
        batch = torch.zeros((len(longer), width), dtype=torch.long, device=self.device)
        for row, i in enumerate(longer):
            tail = requests[i][2][:-1]
            batch[row, : len(tail)] = torch.tensor(tail)
        shared = copy.deepcopy(cache)
        shared.batch_repeat_interleave(len(longer))
        # Right padding needs no mask: a causal model's earlier positions never see later ones.
        logits = self.model(input_ids=batch, cache=shared, use_cache=True).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for row, i in enumerate(longer):
            continuation = requests[i][2]
            total, greedy = float(first[continuation[0]]), int(first.argmax()) == continuation[0]
            for pos, token in enumerate(continuation[1:]):
                total += float(logprobs[row, pos, token])
                greedy = greedy and int(logprobs[row, pos].argmax()) == token
            results[i] = self._record(requests[i], total, greedy)

    def _record(self, request: Request, logprob: float, greedy: bool) -> tuple[float, bool]:
        answer = (logprob, greedy)
        self.cache_hook.add_partial("loglikelihood", request[0], answer)
        return answer
