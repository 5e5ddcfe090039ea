"""Score answer options of many prompts with a causal LM, without work nobody reads: the one
option-scoring engine of the evaluation (`culturespa-hf`, `culturespa.inference.lm_eval_model`)
and the data builder (the transformers backend, `culturespa.inference.backends.hf`).

`score_prompts` takes prompts (token ids) and, per prompt, its candidate answers (token ids, e.g.
"3" + end of turn):

- a prompt given more than once (the calibrated way's content-free prompt) is scored once;
- the prefix the prompts of one opening share (chat header, system prompt, instruction) runs
  once per call: its key/value states are kept (`PrefixCache`) and laid into every batch that
  needs them, then dropped after the last;
- prompts are cut into batches whose rests (the prompt after its prefix) have similar lengths
  (`plan_batches`); the rest of every prompt runs once, with logits only at its last position;
- answer tokens after the first run from the prompts' key/value cache, one pass per option index
  over the batch, the cache being cut back after each pass (never copied per option).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

MIN_SHARED_PREFIX = 8
"""A common prefix shorter than this is not run separately (not worth the extra call)."""

SORT_PREFIX = 32
"""Prompts that agree on their first this many tokens share an opening (the system prompt)."""

ORDERINGS: tuple[str, ...] = ("opening", "rest")
"""The prompt orders `plan_batches` compares: by opening then rest length (a prefix's states
are dropped sooner), or by rest length then opening (least padding); the one whose batches
compute the fewest rest tokens, padding included, is used (the first on a tie)."""


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix all rows share."""
    first = rows[0]
    n = min(len(r) for r in rows)
    for i in range(n):
        token = first[i]
        if any(r[i] != token for r in rows):
            return i
    return n


def opening_prefixes(prompts: Sequence[Sequence[int]]) -> list[int]:
    """Per prompt, how many of its first tokens it shares with every other prompt of its opening,
    at most the opening's shortest prompt's length - 1 (one prefix per opening); 0 for a prompt
    alone in its opening or a prefix shorter than `MIN_SHARED_PREFIX`."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(tuple(prompt[:SORT_PREFIX]), []).append(i)
    split = [0] * len(prompts)
    for members in groups.values():
        if len(members) < 2:
            continue
        rows = [prompts[i] for i in members]
        shared = min(common_prefix_length(rows), min(len(r) for r in rows) - 1)
        for i in members:
            split[i] = shared if shared >= MIN_SHARED_PREFIX else 0
    return split


def plan_batches(
    prompts: Sequence[Sequence[int]],
    batch_size: int,
    split: Sequence[int] | None = None,
) -> list[list[int]]:
    """Prompt indices cut into batches of `batch_size`, in the order of `ORDERINGS` whose batches
    compute the fewest rest tokens, padding included (each prefix runs once whatever the order).
    `split`: the prompts' `opening_prefixes`, computed when not given.

    By opening suits many prompts per system prompt; by rest length suits few prompts per system
    prompt and the same questions under each (a batch then holds one question under many system
    prompts: no padding).
    """
    split = opening_prefixes(prompts) if split is None else split
    rest = [len(p) - n for p, n in zip(prompts, split)]
    opening = [tuple(p[:SORT_PREFIX]) for p in prompts]
    keys = {
        "opening": lambda i: (opening[i], rest[i], i),
        "rest": lambda i: (rest[i], opening[i], i),
    }
    best: tuple[int, list[list[int]]] | None = None
    for name in ORDERINGS:
        order = sorted(range(len(prompts)), key=keys[name])
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        cost = sum(len(b) * max(rest[i] for i in b) for b in batches)
        if best is None or cost < best[0]:
            best = (cost, batches)
    return best[1] if best else []


def cache_kwarg(model) -> str:
    """The name under which this transformers version's model takes a key/value cache."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _forward(model, name: str, cache=None, **inputs: Any):
    if cache is not None:
        inputs[name] = cache
    out = model(use_cache=True, **inputs)
    new = getattr(out, "cache", None)
    return out, out.past_key_values if new is None else new


class PrefixCache:
    """The key/value states of every shared prefix of one call's prompts: each prefix runs once,
    alone (no padding), when a batch first needs it, and is dropped after its last batch."""

    def __init__(self, model, prompts: Sequence[Sequence[int]], split: Sequence[int]) -> None:
        self.model = model
        self.name = cache_kwarg(model)
        self.uses = Counter(tuple(p[:n]) for p, n in zip(prompts, split) if n)
        self.states: dict[tuple[int, ...], list[tuple[Any, Any]]] = {}

    def _states(self, prefix: tuple[int, ...], device: Any) -> list[tuple[Any, Any]]:
        import torch

        if prefix not in self.states:
            ids = torch.tensor([list(prefix)], device=device)
            _, cache = _forward(self.model, self.name, input_ids=ids, logits_to_keep=1)
            self.states[prefix] = [(layer.keys, layer.values) for layer in cache.layers]
        return self.states[prefix]

    def for_batch(self, prompts: Sequence[Sequence[int]], split: Sequence[int], device: Any):
        """The batch's cache, one row per prompt (its prefix right-aligned after padding), and
        the attention mask over it; (None, a width-0 mask) when no prompt has a prefix."""
        import torch
        from transformers import DynamicCache

        width = max(split)
        mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
        if width == 0:
            return None, mask
        rows = [tuple(p[:n]) if n else None for p, n in zip(prompts, split)]
        states = {key: self._states(key, device) for key in rows if key is not None}
        like = next(iter(states.values()))
        cache = DynamicCache(config=self.model.config)
        for layer, (keys, values) in enumerate(like):
            new_keys = keys.new_zeros((len(rows), keys.shape[1], width, keys.shape[3]))
            new_values = values.new_zeros((len(rows), values.shape[1], width, values.shape[3]))
            for row, key in enumerate(rows):
                if key is not None:
                    k, v = states[key][layer]
                    new_keys[row, :, width - len(key) :] = k[0]
                    new_values[row, :, width - len(key) :] = v[0]
            cache.update(new_keys, new_values, layer)
        for row, key in enumerate(rows):
            if key is not None:
                mask[row, width - len(key) :] = 1
                self.uses[key] -= 1
                if self.uses[key] <= 0:
                    self.states.pop(key, None)
        return cache, mask


def score_prompts(
    model,
    prompts: Sequence[Sequence[int]],
    answers: Sequence[Sequence[Sequence[int]]],
    pad_id: int,
    device: Any = "cpu",
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[list[tuple[float, bool]]]:
    """(log p(answer | prompt), answer is greedy) for every answer of every prompt, in order.

    Identical prompts are scored once, with the union of their answers; `progress` is told how
    many of the given prompts each batch answered.
    """
    import torch

    unique: dict[tuple[int, ...], dict[tuple[int, ...], Any]] = {}
    weight: Counter = Counter()
    for prompt, options in zip(prompts, answers, strict=True):
        key = tuple(prompt)
        weight[key] += 1
        slot = unique.setdefault(key, {})
        for answer in options:
            slot.setdefault(tuple(answer), None)
    contexts = list(unique)
    split = opening_prefixes(contexts)
    prefixes = PrefixCache(model, contexts, split)
    with torch.inference_mode():
        for batch in plan_batches(contexts, batch_size, split=split):
            keys = [contexts[b] for b in batch]
            rows = score_options(
                model,
                keys,
                [[list(a) for a in unique[k]] for k in keys],
                pad_id,
                (prefixes, [split[b] for b in batch]),
                device,
            )
            for key, row in zip(keys, rows):
                unique[key] = dict(zip(unique[key], row))
            if progress is not None:
                progress(sum(weight[k] for k in keys))
    return [[unique[tuple(p)][tuple(a)] for a in options] for p, options in zip(prompts, answers)]


def score_options(
    model,
    prompts: Sequence[Sequence[int]],
    answers: Sequence[Sequence[Sequence[int]]],
    pad_id: int,
    prefixes: tuple[PrefixCache, Sequence[int]],
    device: Any = "cpu",
) -> list[list[tuple[float, bool]]]:
    """(log p(answer | prompt), answer is greedy) for every answer of every prompt of one batch
    of `score_prompts`. `prefixes`: the call's `PrefixCache` and the batch's prompts' prefix
    lengths."""
    import torch

    store, split = prefixes
    cache, prefix_mask = store.for_batch(prompts, split, device)
    rests = [list(p[n:]) for p, n in zip(prompts, split)]
    width = max(len(r) for r in rests)
    ids = torch.full((len(rests), width), pad_id, dtype=torch.long)
    rest_mask = torch.zeros((len(rests), width), dtype=torch.long)
    for row, rest in enumerate(rests):
        ids[row, width - len(rest) :] = torch.tensor(rest)
        rest_mask[row, width - len(rest) :] = 1
    mask = torch.cat([prefix_mask, rest_mask.to(device)], dim=1)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    out, cache = _forward(
        model,
        store.name,
        cache,
        input_ids=ids.to(device),
        attention_mask=mask,
        position_ids=positions[:, prefix_mask.shape[1] :],
        logits_to_keep=1,
    )
    return _answer_scores(model, store.name, cache, out, mask, answers, pad_id, device)


def _answer_scores(model, name: str, cache, out, mask, answers, pad_id: int, device: Any):
    """The answers' log-likelihoods: the first token from the prompts' last logits, the others
    from the cache, one pass per option index, the cache cut back after each pass."""
    import torch

    first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
    best = first.argmax(dim=-1).tolist()
    scores = [
        [[float(first[b, a[0]]), best[b] == a[0]] for a in options]
        for b, options in enumerate(answers)
    ]
    start = mask.sum(dim=1, keepdim=True)
    for j in range(max(len(options) for options in answers)):
        rows = [b for b, options in enumerate(answers) if j < len(options) and len(options[j]) > 1]
        if not rows:
            continue
        t_width = max(len(answers[b][j]) for b in rows) - 1
        t_ids = torch.full((len(answers), t_width), pad_id, dtype=torch.long)
        for b in rows:
            t_ids[b, : len(answers[b][j]) - 1] = torch.tensor(answers[b][j][:-1])
        attention = torch.cat([mask, torch.ones_like(t_ids, device=device)], dim=1)
        t_pos = start + torch.arange(t_width, device=device)
        t_out, cache = _forward(
            model,
            name,
            cache,
            input_ids=t_ids.to(device),
            attention_mask=attention,
            position_ids=t_pos,
        )
        cache.crop(-t_width)
        logp = torch.log_softmax(t_out.logits.float(), dim=-1)
        for b in rows:
            tail = answers[b][j]
            for q in range(1, len(tail)):
                scores[b][j][0] += float(logp[b, q - 1, tail[q]])
                scores[b][j][1] &= bool(logp[b, q - 1].argmax() == tail[q])
    return [[(s[0], s[1]) for s in row] for row in scores]
