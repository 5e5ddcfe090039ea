"""Score answer options of many prompts with a causal LM, without work nobody reads: the one
option-scoring engine of the evaluation (`culturespa-hf`, `culturespa.inference.lm_eval_model`)
and the data builder (the transformers backend, `culturespa.inference.backends.hf`).

`score_prompts` takes prompts (token ids) and, per prompt, its candidate answers (token ids, e.g.
"3" + end of turn):

- a prompt given more than once (the calibrated way's content-free prompt) is scored once;
- the prefix the prompts of one opening share (chat header, system prompt, instruction) runs
  once per call: its key/value states are kept (`PrefixCache`) and laid into every batch that
  needs them, then dropped after the last;
- prompts of one opening that share more after it (the orders of one permuted item share the
  system prompt and the question) share that too: a second prefix, run once from the first's
  states (`item_prefixes`);
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


PREFIX_CALL_COST = 16
"""Tokens a second prefix is charged for (its call's fixed work) when `item_prefixes` weighs it."""

SECOND_PREFIX_WINDOW = 32
"""The most prompts (consecutive in token order) one second prefix is looked for among."""


def item_prefixes(prompts: Sequence[Sequence[int]], split: Sequence[int]) -> list[int]:
    """Per prompt, the prefix it shares: its opening's (`split`), lengthened by what it shares with
    a run of prompts of that opening that agree on at least `MIN_SHARED_PREFIX` more tokens (the
    k orders of one permuted item: the question). Runs are chosen, in token order, to compute the
    fewest tokens, each second prefix charged `PREFIX_CALL_COST`; every prompt keeps a token of its
    own."""
    full = list(split)
    openings: dict[tuple[int, ...], list[int]] = {}
    for i, (prompt, n) in enumerate(zip(prompts, split)):
        if n:
            openings.setdefault(tuple(prompt[:n]), []).append(i)
    for members in openings.values():
        order = sorted(members, key=lambda i: list(prompts[i][split[i] :]))
        rests = [prompts[i][split[i] :] for i in order]
        for start, end, shared in _runs_sharing_more(rests):
            for i in order[start:end]:
                full[i] += shared
    return full


def _runs_sharing_more(rests: Sequence[Sequence[int]]) -> list[tuple[int, int, int]]:
    """(start, end, shared tokens) of the runs of sorted `rests` worth a second prefix: the
    segmentation that saves the most tokens, (size - 1) x shared - PREFIX_CALL_COST per run."""
    n = len(rests)
    adjacent = [common_prefix_length((rests[t], rests[t + 1])) for t in range(n - 1)]
    best = [0] * (n + 1)
    last: list[tuple[int, int] | None] = [None] * (n + 1)  # (start, shared) of the run ending here
    for end in range(1, n + 1):
        best[end] = best[end - 1]
        shared, shortest = 10**9, len(rests[end - 1])
        for start in range(end - 2, max(-1, end - 1 - SECOND_PREFIX_WINDOW), -1):
            shared = min(shared, adjacent[start])
            shortest = min(shortest, len(rests[start]))
            length = min(shared, shortest - 1)
            if length < MIN_SHARED_PREFIX:
                break
            gain = best[start] + (end - start - 1) * length - PREFIX_CALL_COST
            if gain > best[end]:
                best[end], last[end] = gain, (start, length)
    runs, end = [], n
    while end > 0:
        if last[end] is None:
            end -= 1
            continue
        start, length = last[end]
        runs.append((start, end, length))
        end = start
    return runs[::-1]


def plan_batches(
    prompts: Sequence[Sequence[int]],
    batch_size: int,
    split: Sequence[int] | None = None,
    openings: Sequence[int] | None = None,
) -> list[list[int]]:
    """Prompt indices cut into batches of `batch_size`, in the order of `ORDERINGS` whose batches
    compute the fewest rest tokens, padding included (each prefix runs once whatever the order).
    `split`: the prompts' whole shared prefixes (`opening_prefixes` when not given); `openings`:
    their openings' part, where `item_prefixes` lengthened `split`.

    By opening suits many prompts per system prompt; by rest length suits few prompts per system
    prompt and the same questions under each (a batch then holds one question under many system
    prompts: no padding). Either way the prompts of one second prefix stay together, ordered by
    their longest rest, so its states are dropped within a batch or two of being made.
    """
    split = opening_prefixes(prompts) if split is None else split
    rest = [len(p) - n for p, n in zip(prompts, split)]
    opening = [tuple(p[:SORT_PREFIX]) for p in prompts]
    lead = list(range(len(prompts)))  # the first prompt of each one's second prefix
    firsts: dict[tuple[int, ...], int] = {}
    for i, (p, n, base) in enumerate(zip(prompts, split, openings or split)):
        if n > base:
            lead[i] = firsts.setdefault(tuple(p[:n]), i)
    longest = Counter()
    for i, first in enumerate(lead):
        longest[first] = max(longest[first], rest[i])
    keys = {
        "opening": lambda i: (opening[i], longest[lead[i]], lead[i], rest[i], i),
        "rest": lambda i: (longest[lead[i]], opening[i], lead[i], rest[i], i),
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
    alone (no padding), when a batch first needs it, and is dropped after its last batch. A second
    prefix (`item_prefixes`) runs from its opening's states: `split` is each prompt's whole shared
    prefix, `openings` its opening's part (the same when it has no second prefix)."""

    def __init__(
        self,
        model,
        prompts: Sequence[Sequence[int]],
        split: Sequence[int],
        openings: Sequence[int] | None = None,
    ) -> None:
        self.model = model
        self.name = cache_kwarg(model)
        self.uses = Counter(tuple(p[:n]) for p, n in zip(prompts, split) if n)
        self.parents: dict[tuple[int, ...], tuple[int, ...]] = {}
        for prompt, n, base in zip(prompts, split, openings or split):
            if 0 < base < n:
                self.parents[tuple(prompt[:n])] = tuple(prompt[:base])
        self.uses.update(self.parents.values())  # each second prefix runs once from its opening
        self.states: dict[tuple[int, ...], list[tuple[Any, Any]]] = {}

    def _states(self, prefix: tuple[int, ...], device: Any) -> list[tuple[Any, Any]]:
        import torch

        if prefix not in self.states:
            parent = self.parents.get(prefix)
            cache = self._cache_of(parent, device) if parent else None
            ids = torch.tensor([list(prefix[len(parent or ()) :])], device=device)
            _, cache = _forward(self.model, self.name, cache, input_ids=ids, logits_to_keep=1)
            self.states[prefix] = [(layer.keys, layer.values) for layer in cache.layers]
            if parent:
                self._used(parent)
        return self.states[prefix]

    def _cache_of(self, prefix: tuple[int, ...], device: Any):
        """A fresh cache holding `prefix`'s states (the stored tensors are not written to)."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        for layer, (keys, values) in enumerate(self._states(prefix, device)):
            cache.update(keys, values, layer)
        return cache

    def _used(self, prefix: tuple[int, ...]) -> None:
        self.uses[prefix] -= 1
        if self.uses[prefix] <= 0:
            self.states.pop(prefix, None)

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
                self._used(key)
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
    openings = opening_prefixes(contexts)
    split = item_prefixes(contexts, openings)
    prefixes = PrefixCache(model, contexts, split, openings)
    with torch.inference_mode():
        for batch in plan_batches(contexts, batch_size, split, openings):
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
