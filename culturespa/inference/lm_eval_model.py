"""`culturespa-hf`: lm-eval's hf model without the work the WVS tasks never read.

lm-eval's own hf model (`--model hf`, lm-eval 0.4.13) scores a multiple-choice item by running
the whole prompt once per option (continuations of more than one token are not grouped: ours are
"<number><end of turn>") and computes full-vocabulary logits and their log-softmax at every
position of every row. For sampled generation it runs every row of a batch to the end of its
reply, up to 256 tokens. This subclass changes these things and nothing else:

- Log-likelihood: requests go through `culturespa.inference.option_scoring.score_prompts`, the
  data builder's engine too: requests are grouped by context (a repeated context runs once); the
  token prefix the contexts of one opening share (system prompt, instruction) runs once per call,
  the rest of every context once, keeping only the last position's logits; the answer tokens
  after the first are scored from the context's key/value cache. Results equal lm-eval's within
  float tolerance (tests/test_lm_eval_hf.py).
- Generation, with `stop_at_answer=True` (the default): the batch's common prompt prefix runs
  once (`culturespa.inference.generation_prefix`), and a reply stops as soon as its first integer is
  complete (digits followed by another character). The paper's parser reads only the first
  integer, so the parsed answer is the one the full reply would give; the logged reply is cut
  there. Set `stop_at_answer=False` for lm-eval's own generation, full replies. Tasks that read
  the whole reply (the stated-distribution tasks `wvs_dist_*`, and any task that is not one of
  ours, e.g. GSM8K) always get full replies.
- Nothing else: tokenisation, chat templates, batching order and caching are lm-eval's.

Used through `culturespa.evaluation` as backend `culturespa-hf`, or from Python after
`import culturespa.inference.lm_eval_model` (the import registers the name with lm-eval).
"""

from __future__ import annotations

import logging
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from culturespa.inference.generation_prefix import generate_with_shared_prefix
from culturespa.inference.option_scoring import score_prompts
from culturespa.prompts.task_names import parse_task_name
from culturespa.scoring.answers import answer_decided

logger = logging.getLogger(__name__)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def reads_first_integer_only(request: Any) -> bool:
    """Whether a request's task reads only the first integer of its reply, so that generation may
    stop once it is complete: the WVS generation tasks (the paper's parser) do; the
    stated-distribution tasks and every task that is not ours get whole replies."""
    name = getattr(request, "task_name", None)
    parsed = parse_task_name(name) if isinstance(name, str) else None
    return parsed is not None and parsed.first_integer_reply


def _answer_stopper(tokenizer, prompt_width: int, batch_size: int):
    """A transformers stopping criterion: per row, stop once the reply's answer is decided."""
    import torch
    from transformers import StoppingCriteria

    class AnswerDecided(StoppingCriteria):
        def __init__(self) -> None:
            self.done = torch.zeros(batch_size, dtype=torch.bool)

        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, prompt_width:]
            for row in range(new.shape[0]):
                if not self.done[row]:
                    text = tokenizer.decode(new[row], skip_special_tokens=True)
                    self.done[row] = answer_decided(text)
            return self.done.to(input_ids.device)

    return AnswerDecided()


SHARED_PREFIX_FAILURES = (AttributeError, NotImplementedError, RuntimeError, TypeError)
"""What a model's cache raises when it cannot be repeated over a batch or cut back (recurrent
or hybrid caches, sliding windows already full)."""


def shared_prefix_unsupported(model, longest: int) -> str | None:
    """Why shared-prefix scoring cannot be trusted for this model and request length, or None.

    A sliding-window (or chunked) attention layer keeps only the last `window` positions in its
    cache; once a request is that long, cutting the cache back after an answer token is not
    possible, so such requests go through lm-eval's own scoring.
    """
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    config = config or model.config
    window = getattr(config, "sliding_window", None) or getattr(
        config, "attention_chunk_size", None
    )
    if not window:
        return None
    layer_types = getattr(config, "layer_types", None) or []
    windowed = any(t in ("sliding_attention", "chunked_attention") for t in layer_types)
    if not layer_types:
        windowed = getattr(config, "use_sliding_window", True) is not False
    if windowed and longest >= window:
        return (
            f"the model attends over a sliding window of {window} tokens and a request is "
            f"{longest} tokens long"
        )
    return None


@register_model("culturespa-hf")
class CulturespaHFLM(HFLM):
    """lm-eval's HFLM with shared-prefix option scoring and answer-aware stopping."""

    def __init__(self, *args: Any, stop_at_answer: bool | str = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_at_answer = _as_bool(stop_at_answer)
        self._fallback_warned = False

    # -- generation ---------------------------------------------------------------------------

    def generate_until(self, requests, disable_tqdm: bool = False):
        """lm-eval's generation; requests of tasks that read the whole reply never stop early."""
        whole = [i for i, r in enumerate(requests) if not reads_first_integer_only(r)]
        if not self.stop_at_answer or not whole:
            return super().generate_until(requests, disable_tqdm)
        rest = sorted(set(range(len(requests))) - set(whole))
        replies: list[str | None] = [None] * len(requests)
        if rest:
            for i, reply in zip(rest, super().generate_until([requests[i] for i in rest], True)):
                replies[i] = reply
        self.stop_at_answer = False
        try:
            full = super().generate_until([requests[i] for i in whole], disable_tqdm)
        finally:
            self.stop_at_answer = True
        for i, reply in zip(whole, full):
            replies[i] = reply
        return replies

    def _model_generate(self, context, max_length: int, stop: list[str], **generation_kwargs):
        """lm-eval's sampling call, plus the per-row stop once the answer is decided."""
        if not self.stop_at_answer:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        import torch
        from lm_eval.models.utils_hf import stop_sequences_criteria

        kwargs = dict(generation_kwargs)
        if not kwargs.get("do_sample") and not kwargs.get("temperature"):
            kwargs["do_sample"] = False
            kwargs.pop("temperature", None)
        width, rows = context.shape[1], context.shape[0]
        criteria = stop_sequences_criteria(self.tokenizer, stop, width, rows)
        criteria.append(_answer_stopper(self.tokenizer, width, rows))
        mask = kwargs.pop("attention_mask", None)
        if mask is None:
            mask = torch.ones_like(context)
        dtype = self.mixed_precision_dtype
        with torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None):
            return generate_with_shared_prefix(
                self.model,
                context,
                mask,
                self.tokenizer.pad_token_id,
                max_length=max_length,
                stopping_criteria=criteria,
                pad_token_id=self.tokenizer.pad_token_id,
                use_cache=True,
                **kwargs,
            )

    # -- log-likelihood -----------------------------------------------------------------------

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        fits = all(len(c) + len(k) <= self.max_length for _, c, k in requests)
        if self.backend != "causal" or self.batch_size == "auto" or not fits or not requests:
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        longest = max(len(c) + len(k) for _, c, k in requests)
        reason = shared_prefix_unsupported(self.model, longest)
        if reason is None:
            try:
                return self._shared_prefix_loglikelihoods(requests, disable_tqdm, override_bs)
            except SHARED_PREFIX_FAILURES as exc:
                reason = f"shared-prefix scoring failed ({type(exc).__name__}: {exc})"
        if not self._fallback_warned:
            self._fallback_warned = True
            logger.warning(
                "culturespa-hf: %s; scoring with lm-eval's own hf path instead (same results, "
                "slower)",
                reason,
            )
        return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)

    def _shared_prefix_loglikelihoods(self, requests, disable_tqdm: bool, override_bs):
        """The requests through `option_scoring.score_prompts`, the data builder's engine too: a
        repeated request (the calibrated way's content-free prompt, asked with every item) is
        scored once."""
        from tqdm import tqdm

        bar = tqdm(
            total=len(requests),
            disable=disable_tqdm or self.rank != 0,
            desc="Scoring options (shared prompts)",
        )
        with bar:
            rows = score_prompts(
                self.model,
                [context for _, context, _ in requests],
                [[continuation] for _, _, continuation in requests],
                self.tokenizer.pad_token_id or 0,
                self.device,
                int(override_bs or self.batch_size),
                bar.update,
            )
        results = [row[0] for row in rows]
        for (cache_key, _, _), answer in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", cache_key, answer)
        return results
