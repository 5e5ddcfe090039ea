"""`culturespa-hf`: the log-likelihoods of lm-eval's hf model, and stopping once answered."""

from __future__ import annotations

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("torch")

from culturespa.lm_eval_hf import answer_decided
from culturespa.option_scoring import SORT_PREFIX, batches_by_opening, common_prefix_length


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5, 6], [5, 6]]) == 2
    assert common_prefix_length([[1], [2]]) == 0


def test_batches_group_prompts_that_open_alike():
    a, b = [1] * SORT_PREFIX, [2] * SORT_PREFIX  # two system prompts
    prompts = [[*b, 1, 1], [*a, 5], [*b, 1], [*a, 5, 6, 7]]
    assert batches_by_opening(prompts, 2, min_group=1) == [[1, 3], [2, 0]]
    # openings too small for batches of their own are pooled and batched by length
    assert batches_by_opening(prompts, 2) == [[1, 2], [0, 3]]
    big = [[*a, n] for n in range(8, 0, -1)]  # 8 prompts of one opening: 4 batches of 2
    mixed = [*big, [*b, 9, 9, 9], [*b]]
    assert batches_by_opening(mixed, 2) == [[0, 1], [2, 3], [4, 5], [6, 7], [9, 8]]


@pytest.mark.parametrize(
    ("text", "decided"),
    [
        ("", False),
        ("The answer is", False),
        ("The answer is 1", False),  # could still become 10
        ("The answer is 10", False),
        ("The answer is 10.", True),
        ("4", False),
        ("4\n", True),
        ("Option 12 because", True),  # decided too: the parser rejects 12 whatever follows
    ],
)
def test_answer_decided(text, decided):
    assert answer_decided(text) is decided


def test_decided_prefix_parses_as_the_whole_reply():
    from culturespa.scoring import parse_answer

    reply = "I think 3, maybe 4. Option 10 is also fine"
    cut = next(i for i in range(len(reply) + 1) if answer_decided(reply[:i]))
    assert parse_answer(reply[:cut]) == parse_answer(reply) == 3


@pytest.mark.slow
def test_loglikelihoods_equal_lm_eval_hf(tiny_model_dir):
    """Same numbers as lm-eval's own hf model: plain, self-alignment and 10-option items."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from culturespa.evaluation import task_manager
    from culturespa.lm_eval_hf import CulturespaHFLM

    tasks = ["wvs_culture_aware_usa", "wvs_cct_self_alignment_chn"]
    got = {}
    for cls in (HFLM, CulturespaHFLM):
        lm = cls(pretrained=str(tiny_model_dir), batch_size=3, device="cpu")
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=tasks,
            task_manager=task_manager(),
            samples={t: [0, 1, 2, 3, 47] for t in tasks},  # 47: a 10-option item
            log_samples=True,
            apply_chat_template=True,
        )
        got[cls] = {
            (t, s["doc_id"]): [r[0] for r in s["resps"]] for t in tasks for s in out["samples"][t]
        }
    stock, ours = got[HFLM], got[CulturespaHFLM]
    assert stock.keys() == ours.keys() and len(stock) == 10
    for key, rows in stock.items():
        assert len(rows) == len(ours[key])
        for (ll, greedy), (ll2, greedy2) in zip(rows, ours[key]):
            assert ll2 == pytest.approx(ll, abs=1e-4), key
            assert greedy2 == greedy, key


def test_stopper_stops_each_row_once_answered(tiny_model_dir):
    import torch
    from transformers import AutoTokenizer

    from culturespa.lm_eval_hf import _answer_stopper

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = tok.encode("Q?", add_special_tokens=False)
    rows = [prompt + tok.encode(t, add_special_tokens=False) for t in ("It is 3.", "It is 1")]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
    stopper = _answer_stopper(tok, len(prompt), 2)
    assert stopper(ids, None).tolist() == [True, False]
