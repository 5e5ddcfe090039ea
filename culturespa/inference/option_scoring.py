"""Score answer options of many prompts with a causal LM, without work nobody reads: the one
option-scoring engine of the evaluation (`culturespa-hf`, `culturespa.inference.lm_eval_model`)
and the data builder (the transformers backend, `culturespa.inference.backends.hf`).

`score_prompts` takes prompts (token ids) and, per prompt, its candidate answers (token ids, e.g.
"3" + end of turn):

- a prompt given more than once (the calibrated way's content-free prompt) is scored once;
- prompts are cut into batches (`plan_batches`) so that a batch holds few openings (system
  prompts) and rests of similar length;
- in a batch, the prefix each opening's prompts share (chat header, system prompt, instruction)
  runs once per opening, the rest of every prompt once, with logits only at its last position;
- answer tokens after the first run from the prompts' key/value cache, one pass per option index
  over the batch, the cache being cut back after each pass (never copied per option).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

MIN_SHARED_PREFIX = 8
"""A common prefix shorter than this is not run separately (not worth the extra call)."""

SORT_PREFIX = 32
"""Prompts that agree on their first this many tokens share an opening (the system prompt)."""

ORDERINGS: tuple[str, ...] = ("opening", "rest", "length")
"""The prompt orders `plan_batches` compares: by opening then rest length, by rest length then
opening, by whole length; the one whose batches compute the fewest tokens is used."""


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
    """Per prompt, how many of its first tokens it shares with the other prompts of its opening
    (all of them), or, alone in its opening, with its nearest prompt; at most the opening's
    shortest prompt's length - 1, so that an opening has one prefix."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(tuple(prompt[:SORT_PREFIX]), []).append(i)
    split = [0] * len(prompts)
    ordered = sorted(range(len(prompts)), key=lambda i: tuple(prompts[i]))
    rank = {i: r for r, i in enumerate(ordered)}
    for members in groups.values():
        if len(members) > 1:
            shared = common_prefix_length([prompts[i] for i in members])
        else:
            r = rank[members[0]]
            near = [ordered[n] for n in (r - 1, r + 1) if 0 <= n < len(ordered)]
            pairs = [[prompts[members[0]], prompts[j]] for j in near]
            shared = max((common_prefix_length(p) for p in pairs), default=0)
        shared = min(shared, min(len(prompts[i]) for i in members) - 1)
        for i in members:
            split[i] = shared
    return split


def _batch_cost(
    batch: Sequence[int], lengths: Sequence[int], split: Sequence[int], prefix: Sequence[int]
) -> int:
    """Tokens a batch computes: one padded row per distinct prefix, one padded rest per prompt."""
    widest_prefix = max(split[i] for i in batch)
    widest_rest = max(lengths[i] - split[i] for i in batch)
    return len({prefix[i] for i in batch}) * widest_prefix + len(batch) * widest_rest


def plan_batches(
    prompts: Sequence[Sequence[int]],
    batch_size: int,
    orderings: Sequence[str] | None = None,
    split: Sequence[int] | None = None,
) -> list[list[int]]:
    """Prompt indices cut into batches of `batch_size`, in the order of `orderings` whose batches
    compute the fewest tokens (distinct prefixes plus rests, padding included).

    By opening suits many prompts per system prompt (one prefix per batch); by rest length suits
    few prompts per system prompt and the same questions under each (a batch then holds one
    question under many system prompts: no padding, each system prompt once); by length is the
    plain order. Ties go to the first in `orderings` (default `ORDERINGS`); `split`: the
    prompts' `opening_prefixes`, computed when not given.
    """
    split = opening_prefixes(prompts) if split is None else split
    lengths = [len(p) for p in prompts]
    opening = [tuple(p[:SORT_PREFIX]) for p in prompts]
    ids: dict[tuple[int, ...], int] = {}
    prefix = [ids.setdefault(tuple(p[:n]), len(ids)) for p, n in zip(prompts, split)]
    keys = {
        "opening": lambda i: (opening[i], lengths[i] - split[i], i),
        "rest": lambda i: (lengths[i] - split[i], opening[i], i),
        "length": lambda i: (lengths[i], i),
    }
    best: tuple[int, list[list[int]]] | None = None
    for name in orderings or ORDERINGS:
        order = sorted(range(len(prompts)), key=keys[name])
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        cost = sum(_batch_cost(b, lengths, split, prefix) for b in batches)
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
    weight: dict[tuple[int, ...], int] = {}
    for prompt, options in zip(prompts, answers, strict=True):
        key = tuple(prompt)
        slot = unique.setdefault(key, {})
        weight[key] = weight.get(key, 0) + 1
        for answer in options:
            slot.setdefault(tuple(answer), None)
    contexts = list(unique)
    split = opening_prefixes(contexts)
    with torch.inference_mode():
        for batch in plan_batches(contexts, batch_size, split=split):
            keys = [contexts[b] for b in batch]
            rows = score_options(
                model,
                keys,
                [[list(a) for a in unique[k]] for k in keys],
                pad_id,
                device,
                [split[b] for b in batch],
            )
            for key, row in zip(keys, rows):
                unique[key] = dict(zip(unique[key], row))
            if progress is not None:
                progress(sum(weight[k] for k in keys))
    return [[unique[tuple(p)][tuple(a)] for a in options] for p, options in zip(prompts, answers)]


def batch_prefixes(prompts: Sequence[Sequence[int]], split: Sequence[int] | None) -> list[int]:
    """Per prompt of a batch, the prefix it runs once with the others that share it: rows with
    the same prefix (`split`) extend it to all they share in this batch. Without `split`, or if
    a prefix is shorter than `MIN_SHARED_PREFIX`: the batch's common prefix (0 if short)."""
    if split is not None and min(split) >= MIN_SHARED_PREFIX:
        groups: dict[tuple[int, ...], list[int]] = {}
        for row, (prompt, n) in enumerate(zip(prompts, split)):
            groups.setdefault(tuple(prompt[:n]), []).append(row)
        out = list(split)
        for rows in groups.values():
            members = [prompts[r] for r in rows]
            if len(members) > 1:
                shared = min(common_prefix_length(members), min(len(m) for m in members) - 1)
                for r in rows:
                    out[r] = shared
        return out
    shared = min(common_prefix_length(prompts), min(len(p) for p in prompts) - 1)
    return [shared if shared >= MIN_SHARED_PREFIX else 0] * len(prompts)


def _run_prefixes(model, name: str, prompts, split, pad_id: int, device: Any):
    """Run each distinct prefix of the batch once; the key/value cache laid out one row per
    prompt, and the prompts' attention mask over it (None, width 0 mask without prefixes)."""
    import torch

    index: dict[tuple[int, ...], int] = {}
    rows = [index.setdefault(tuple(p[:n]), len(index)) for p, n in zip(prompts, split)]
    prefixes = list(index)
    width = max(len(p) for p in prefixes)
    if width == 0:
        return None, torch.zeros((len(prompts), 0), dtype=torch.long, device=device)
    if len(prefixes) == 1:
        ids = torch.tensor([list(prefixes[0])], device=device)
        _, cache = _forward(model, name, input_ids=ids, logits_to_keep=1)
        cache.batch_repeat_interleave(len(prompts))
        return cache, torch.ones((len(prompts), width), dtype=torch.long, device=device)
    ids = torch.full((len(prefixes), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prefixes), width), dtype=torch.long)
    for row, prefix in enumerate(prefixes):
        ids[row, width - len(prefix) :] = torch.tensor(prefix)
        mask[row, width - len(prefix) :] = 1
    mask = mask.to(device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    _, cache = _forward(
        model,
        name,
        input_ids=ids.to(device),
        attention_mask=mask,
        position_ids=positions,
        logits_to_keep=1,
    )
    select = torch.tensor(rows, device=device)
    cache.batch_select_indices(select)
    return cache, mask[select]


def score_options(
    model,
    prompts: Sequence[Sequence[int]],
    answers: Sequence[Sequence[Sequence[int]]],
    pad_id: int,
    device: Any = "cpu",
    split: Sequence[int] | None = None,
) -> list[list[tuple[float, bool]]]:
    """(log p(answer | prompt), answer is greedy) for every answer of every prompt of one batch;
    `split`: the prompts' `opening_prefixes` (each distinct prefix runs once), or None (the
    batch's common prefix runs once)."""
    import torch

    name = cache_kwarg(model)
    split = batch_prefixes(prompts, split)
    cache, prefix_mask = _run_prefixes(model, name, prompts, split, pad_id, device)
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
        name,
        cache,
        input_ids=ids.to(device),
        attention_mask=mask,
        position_ids=positions[:, prefix_mask.shape[1] :],
        logits_to_keep=1,
    )
    return _answer_scores(model, name, cache, out, mask, answers, pad_id, device)


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
