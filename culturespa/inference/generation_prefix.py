"""Batched generation that runs the prompts' common token prefix once.

The prompts of one WVS task share their chat header, system prompt and instruction, often half
of every prompt. `generate_with_shared_prefix` runs that prefix once (batch 1), repeats its
key/value cache over the batch, and lets `model.generate` continue from it. To keep the prefix
at the same positions in every row, a left-padded batch is re-laid as
`[shared prefix][padding][rest of the prompt]`: the width (and so the place where the reply
starts in the returned rows) is unchanged, the padding is masked out, and position ids, which
transformers derives from the attention mask, run on without a gap after the padding.
"""

from __future__ import annotations

import logging
from typing import Any

from culturespa.inference.option_scoring import MIN_SHARED_PREFIX, cache_kwarg, common_prefix_length

logger = logging.getLogger(__name__)

_UNSUPPORTED: set[int] = set()
"""Model classes whose cache could not be shared; they generate the plain way."""


def relayout_with_prefix(input_ids, attention_mask, pad_id: int):
    """(ids, mask, shared) with the common prefix of the unpadded rows moved to the front.

    Rows are given left-padded (the layout of lm-eval's and transformers' batched generation);
    `shared` is 0 (and ids, mask unchanged) when the common prefix is shorter than
    `MIN_SHARED_PREFIX` or the rows are not left-padded.
    """
    import torch

    width = input_ids.shape[1]
    lengths = attention_mask.sum(dim=1).tolist()
    rows = []
    for r, n in enumerate(lengths):
        if not bool(attention_mask[r, width - n :].all()):  # not plain left padding
            return input_ids, attention_mask, 0
        rows.append(input_ids[r, width - n :].tolist())
    shared = min(common_prefix_length(rows), min(lengths) - 1)
    if shared < MIN_SHARED_PREFIX:
        return input_ids, attention_mask, 0
    ids = torch.full_like(input_ids, pad_id)
    mask = torch.zeros_like(attention_mask)
    prefix = torch.as_tensor(rows[0][:shared], dtype=input_ids.dtype, device=input_ids.device)
    ids[:, :shared] = prefix
    mask[:, :shared] = 1
    for r, (row, n) in enumerate(zip(rows, lengths)):
        rest = n - shared
        ids[r, width - rest :] = torch.as_tensor(
            row[shared:], dtype=input_ids.dtype, device=input_ids.device
        )
        mask[r, width - rest :] = 1
    return ids, mask, shared


def generate_with_shared_prefix(
    model, input_ids, attention_mask, pad_id: int, **generate_kwargs: Any
):
    """`model.generate(input_ids, attention_mask, ...)` with the common prefix computed once.

    Returns what `model.generate` returns: rows of width `input_ids.shape[1]` + the reply. Falls
    back to a plain call when there is no useful common prefix.
    """
    import torch

    ids, mask, shared = relayout_with_prefix(input_ids, attention_mask, pad_id)
    if shared == 0 or id(type(model)) in _UNSUPPORTED:
        return model.generate(input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs)
    try:
        with torch.inference_mode():
            out = model(input_ids=ids[:1, :shared], use_cache=True, logits_to_keep=1)
        cache = getattr(out, "cache", None) or out.past_key_values
        cache.batch_repeat_interleave(ids.shape[0])
    except (AttributeError, NotImplementedError, TypeError, ValueError) as exc:
        # a cache type that cannot be repeated over the batch (some hybrid or recurrent models)
        _UNSUPPORTED.add(id(type(model)))
        logger.warning(
            "%s: no shared-prefix cache for generation (%s); generating without it",
            type(model).__name__,
            exc,
        )
        return model.generate(input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs)
    generate_kwargs[cache_kwarg(model)] = cache
    return model.generate(input_ids=ids, attention_mask=mask, **generate_kwargs)
