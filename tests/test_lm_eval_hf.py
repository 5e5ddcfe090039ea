"""`culturespa-hf`: the log-likelihoods of lm-eval's hf model, and stopping once answered."""

from __future__ import annotations

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("torch")

from culturespa.inference.option_scoring import (
    MIN_SHARED_PREFIX,
    PREFIX_CALL_COST,
    SORT_PREFIX,
    common_prefix_length,
    item_prefixes,
    opening_prefixes,
    plan_batches,
)
from culturespa.scoring.answers import answer_decided


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5, 6], [5, 6]]) == 2
    assert common_prefix_length([[1], [2]]) == 0


def test_opening_prefixes_are_what_an_opening_shares():
    a, b = [1] * SORT_PREFIX, [2] * SORT_PREFIX  # two system prompts
    prompts = [[*a, 5, 6, 7], [*a, 5, 6, 9], [*a, 5, 8], [*b, 3, 4], [*b, 3]]
    # one prefix per opening, leaving its shortest prompt a token of its own
    assert opening_prefixes(prompts) == [SORT_PREFIX + 1] * 3 + [SORT_PREFIX] * 2
    alone = [[*a, 5, 6], [9] * SORT_PREFIX + [1, 2]]  # nothing shared: nothing split off
    assert opening_prefixes(alone) == [0, 0]


def _orders(opening, question, options):
    """One prompt per cyclic order of `options` after `opening` + `question` (a permuted item)."""
    k = len(options)
    return [[*opening, *question, *(options[(s + j) % k] for j in range(k))] for s in range(k)]


def test_item_prefixes_share_each_items_question():
    """Two permuted items under one system prompt: the orders of each share the opening and the
    question (12 tokens), so the question becomes a second prefix; what one pair shares that is
    shorter than MIN_SHARED_PREFIX, or too short to pay for its call, stays in the rest."""
    opening = [1] * SORT_PREFIX
    x = _orders(opening, list(range(100, 112)), [20, 21, 22])
    y = _orders(opening, list(range(200, 212)), [30, 31, 32, 33])
    prompts = x + y
    openings = opening_prefixes(prompts)
    assert openings == [SORT_PREFIX] * 7
    assert item_prefixes(prompts, openings) == [SORT_PREFIX + 12] * 7
    short = MIN_SHARED_PREFIX - 1
    pair = [[*opening, *range(300, 300 + short), 40], [*opening, *range(300, 300 + short), 41]]
    alone = [[*opening, 9, 9]]
    assert item_prefixes(pair + alone, opening_prefixes(pair + alone)) == [SORT_PREFIX] * 3
    # two orders sharing 12 tokens save 12, less than a call costs: not worth a second prefix
    assert PREFIX_CALL_COST > 12
    two = _orders(opening, list(range(400, 412)), [20, 21])
    assert item_prefixes(two + alone, opening_prefixes(two + alone)) == [SORT_PREFIX] * 3


def test_item_prefixes_keep_a_token_of_each_prompts_own():
    """An order that ends where the others' shared part does keeps its last token out."""
    opening = [1] * SORT_PREFIX
    question = list(range(100, 120))
    prompts = [[*opening, *question], [*opening, *question, 5], [*opening, *question, 6]]
    assert item_prefixes(prompts, opening_prefixes(prompts)) == [SORT_PREFIX + 19] * 3


def test_batches_keep_the_orders_of_an_item_together():
    """Orders whose rests differ by a token (one option listed as two tokens) would interleave
    with another item's by length; they stay together, so each question's states are dropped
    right after its orders ran."""
    opening = [1] * SORT_PREFIX
    x = [[*opening, *range(100, 112), *rest] for rest in ([5], [6, 6], [7])]
    y = [[*opening, *range(200, 212), *rest] for rest in ([5, 5], [6], [7, 7])]
    prompts = [x[0], y[0], x[1], y[1], x[2], y[2]]
    openings = opening_prefixes(prompts)
    split = item_prefixes(prompts, openings)
    assert split == [SORT_PREFIX + 12] * 6
    order = [i for b in plan_batches(prompts, 2, split, openings) for i in b]
    items = ["x" if i % 2 == 0 else "y" for i in order]
    assert items in (["x"] * 3 + ["y"] * 3, ["y"] * 3 + ["x"] * 3)
    # without the second prefixes the order is by rest length, as before
    assert [i for b in plan_batches(prompts, 2) for i in b] != order


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [2, 16])
def test_second_prefixes_give_each_prompts_own_log_likelihoods(tiny_model_dir, batch_size):
    """score_prompts with second prefixes (three permuted items, batches that split an item's
    orders or hold them all) against each prompt and answer run whole, with no cache."""
    import torch
    from transformers import AutoModelForCausalLM

    from culturespa.inference.option_scoring import score_prompts

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    opening = [7, 8, 9] * 12
    prompts, answers = [], []
    for item, k in enumerate((3, 4, 5)):
        question = [50 + 3 * item + t % 5 for t in range(15 + item)]
        prompts += _orders(opening, question, [60 + j for j in range(k)])
        answers += [[[30 + j, 2] for j in range(k)]] * k
    openings = opening_prefixes(prompts)
    assert any(a > b for a, b in zip(item_prefixes(prompts, openings), openings))
    got = score_prompts(model, prompts, answers, pad_id=0, batch_size=batch_size)
    for prompt, options, row in zip(prompts, answers, got, strict=True):
        for answer, (logp, _) in zip(options, row, strict=True):
            ids = torch.tensor([prompt + answer])
            with torch.inference_mode():
                logits = model(input_ids=ids).logits[0].float().log_softmax(-1)
            whole = sum(float(logits[len(prompt) - 1 + q, a]) for q, a in enumerate(answer))
            assert logp == pytest.approx(whole, abs=1e-4)


def test_batches_follow_the_order_that_pads_least():
    """4 system prompts x 2 questions (rests of 2 and 40 tokens), batches of 4. By opening each
    batch pads to 40: 2 x 4 x 40 = 320 rest tokens; by rest length 4 x 2 + 4 x 40 = 168: one
    question under every system prompt per batch (each prefix runs once either way)."""
    short, long = [7] * 2, [8] * 40
    prompts = [[o] * SORT_PREFIX + q for o in (1, 2, 3, 4) for q in (long, short)]
    assert plan_batches(prompts, 4) == [[1, 3, 5, 7], [0, 2, 4, 6]]
    # rests of one length: a tie, so by opening (a prefix is dropped after its last batch)
    prompts = [[o] * SORT_PREFIX + q for o in (1, 2, 3, 4) for q in ([8] * 10, [9] * 10)]
    assert plan_batches(prompts, 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]


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
    from culturespa.scoring.answers import parse_answer

    reply = "I think 3, maybe 4. Option 10 is also fine"
    cut = next(i for i in range(len(reply) + 1) if answer_decided(reply[:i]))
    assert parse_answer(reply[:cut]) == parse_answer(reply) == 3


def test_stated_distributions_get_whole_replies(monkeypatch):
    """Stopping at the first complete integer would cut "1: 40%, 2: ..." after "1:": requests of
    the stated-distribution tasks (and of any task that is not ours) are generated without that
    stop, the WVS generation tasks with it, and the replies come back in the order asked."""
    from types import SimpleNamespace

    from lm_eval.models.huggingface import HFLM

    from culturespa.inference.lm_eval_model import CulturespaHFLM

    calls = []

    def generate(self, requests, disable_tqdm=False):
        calls.append((self.stop_at_answer, [r.task_name for r in requests]))
        return [f"{r.task_name} stop={self.stop_at_answer}" for r in requests]

    monkeypatch.setattr(HFLM, "generate_until", generate)
    lm = object.__new__(CulturespaHFLM)  # no model needed: only the routing is tested
    lm.stop_at_answer = True
    names = [
        "wvs_dist_culture_aware_usa",
        "wvs_gen_culture_aware_usa",
        "wvs_dist_culture_unaware_chn",
        "gsm8k",
    ]
    requests = [SimpleNamespace(task_name=n) for n in names]
    assert lm.generate_until(requests) == [
        "wvs_dist_culture_aware_usa stop=False",
        "wvs_gen_culture_aware_usa stop=True",
        "wvs_dist_culture_unaware_chn stop=False",
        "gsm8k stop=False",  # a task that is not ours reads its whole reply
    ]
    assert lm.stop_at_answer is True
    assert sorted(calls) == [
        (False, ["wvs_dist_culture_aware_usa", "wvs_dist_culture_unaware_chn", "gsm8k"]),
        (True, ["wvs_gen_culture_aware_usa"]),
    ]
    calls.clear()
    lm.stop_at_answer = False  # stop_at_answer=False: lm-eval's own generation for all, once
    lm.generate_until(requests)
    assert calls == [(False, names)]


def _loglikelihoods(classes, model_dir, tasks, samples, **model_kwargs):
    import lm_eval

    from culturespa.evaluation.tasks import task_manager

    got = {}
    for cls in classes:
        lm = cls(pretrained=str(model_dir), batch_size=3, device="cpu", **model_kwargs)
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=tasks,
            task_manager=task_manager(),
            samples={t: samples for t in tasks},
            log_samples=True,
            apply_chat_template=True,
        )
        got[cls] = {
            (t, s["doc_id"]): [r[0] for r in s["resps"]] for t in tasks for s in out["samples"][t]
        }
    return got


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_loglikelihoods_equal_lm_eval_hf(tiny_model_dir, dtype):
    """Same answers as lm-eval's own hf model: plain, self-alignment and 10-option items.

    float32: the same log-likelihoods to 1e-4 and the same answers. bfloat16: lm-eval takes the
    log-softmax of bf16 logits in bf16, so its log-likelihoods come in steps of bf16 rounding
    (0.125 around -20), while culturespa-hf takes it in float32; the two agree within about one
    such step. Where lm-eval's best option leads by more than its rounding the answers are the
    same; where lm-eval's rounding ties two options (its argmax then takes the first), our
    answer is one of the tied options. The rule is `support.lm_eval_parity.compare`, which
    scripts/gpu_check.py applies on a GPU too.
    """
    from support.lm_eval_parity import TOLERANCE, compare, loglikelihoods

    stock, ours = loglikelihoods(tiny_model_dir, dtype=dtype)
    assert len(stock) == 2 * 9
    parity = compare(stock, ours, TOLERANCE[dtype], same_greedy=dtype == "float32")
    assert parity.problems == []
    if dtype == "float32":
        assert parity.decided == len(stock)
    assert parity.decided >= len(stock) // 2  # the comparison is not vacuous


@pytest.mark.slow
def test_sliding_window_model_falls_back_to_lm_eval_scoring(tmp_path, caplog):
    """A model whose sliding window is shorter than the prompts cannot reuse a cut-back cache:
    culturespa-hf warns and scores with lm-eval's own path, with lm-eval's results."""
    from lm_eval.models.huggingface import HFLM
    from support.tiny_model import build_tiny_model

    from culturespa.inference.lm_eval_model import CulturespaHFLM

    model_dir = build_tiny_model(tmp_path / "mistral", sliding_window=16)
    with caplog.at_level("WARNING", logger="culturespa.inference.lm_eval_model"):
        got = _loglikelihoods(
            (HFLM, CulturespaHFLM), model_dir, ["wvs_culture_aware_usa"], [0, 1, 2]
        )
    assert got[HFLM] == got[CulturespaHFLM]
    assert "sliding window of 16 tokens" in caplog.text and "lm-eval's own hf path" in caplog.text


def test_failing_cache_operations_fall_back_with_a_warning(tiny_model_dir, monkeypatch, caplog):
    """A cache that cannot be repeated over a batch (recurrent or hybrid models) is not fatal."""
    from lm_eval.models.huggingface import HFLM

    from culturespa.inference import lm_eval_model as lm_eval_hf

    lm = lm_eval_hf.CulturespaHFLM(pretrained=str(tiny_model_dir), batch_size=2, device="cpu")

    def broken(*args, **kwargs):
        raise NotImplementedError("this cache cannot be repeated over a batch")

    monkeypatch.setattr(lm_eval_hf, "score_prompts", broken)
    calls = []
    monkeypatch.setattr(
        HFLM, "_loglikelihood_tokens", lambda self, requests, *a, **k: calls.append(requests) or []
    )
    requests = [(("ctx", "1"), list(range(1, 40)), [5, 6])]
    with caplog.at_level("WARNING", logger="culturespa.inference.lm_eval_model"):
        lm._loglikelihood_tokens(requests)
    assert calls == [requests]
    assert "NotImplementedError: this cache cannot be repeated" in caplog.text


def test_stopper_stops_each_row_once_answered(tiny_model_dir):
    import torch
    from transformers import AutoTokenizer

    from culturespa.inference.lm_eval_model import _answer_stopper

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = tok.encode("Q?", add_special_tokens=False)
    rows = [prompt + tok.encode(t, add_special_tokens=False) for t in ("It is 3.", "It is 1")]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
    stopper = _answer_stopper(tok, len(prompt), 2)
    assert stopper(ids, None).tolist() == [True, False]
