"""How the tasks ask: persona kept in the prompt, option numbers scored whole, per-item scores."""

from __future__ import annotations

import math

import pytest

from culturespa.errors import CulturespaError
from culturespa.prompts.templates import render
from culturespa.survey.items import items_with_data
from culturespa_tasks import TASK_DIR

pytest.importorskip("lm_eval")

END = "<|im_end|>"


@pytest.fixture(scope="module")
def manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASK_DIR), include_defaults=False)


@pytest.fixture(scope="module")
def tokenizer():
    from support.tiny_model import build_tiny_tokenizer

    return build_tiny_tokenizer()


def _reply_model(tokenizer, replies: dict[str, float], text: str | None = None):
    """An LM whose replies have fixed probabilities; it scores a continuation token by token.
    `text`: what it generates (every request), recording the requests' generation settings."""
    from lm_eval.api.model import LM

    class ReplyModel(LM):
        def __init__(self) -> None:
            super().__init__()
            self.tokenizer = tokenizer
            self.pieces: list[list[str]] = []

        @property
        def tokenizer_name(self) -> str:
            return "tiny"

        def chat_template(self, chat_template=False):
            return tokenizer.chat_template

        def apply_chat_template(self, chat_history, add_generation_prompt=True):
            return tokenizer.apply_chat_template(
                chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
            )

        def prefix_mass(self, continuation: str) -> float:
            """P(the reply starts with these tokens), or P(reply == digits) once the answer ends."""
            ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
            pieces = [tokenizer.decode([i]) for i in ids]
            self.pieces.append(pieces)
            digits = "".join(p for p in pieces if p.strip() and p != END)
            if pieces[-1] in (END, "\n"):
                return replies.get(digits, 1e-9)
            return sum(p for r, p in replies.items() if r.startswith(digits)) or 1e-9

        def loglikelihood(self, requests):
            return [(math.log(self.prefix_mass(r.args[1])), False) for r in requests]

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            if text is None:
                raise NotImplementedError
            self.pieces.extend([r.args[1] for r in requests])
            return [text for _ in requests]

    return ReplyModel()


def _evaluate(lm, manager, task: str, qid: str | list[str], chat: bool) -> dict:
    import lm_eval

    country = task.rsplit("_", 1)[1].upper()
    qids = [qid] if isinstance(qid, str) else qid
    indices = [items_with_data(country).index(q) for q in qids]
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=[task],
        task_manager=manager,
        samples={task: indices},
        apply_chat_template=chat,
        log_samples=True,
    )


def test_the_tokenizer_splits_digits(tokenizer):
    ids = tokenizer("10" + END, add_special_tokens=False)["input_ids"]
    assert [tokenizer.decode([i]) for i in ids] == ["1", "0", END]


@pytest.mark.parametrize("chat", [True, False])
def test_ten_beats_one_when_the_model_answers_ten(tokenizer, manager, chat):
    # Q48 has options 1..10. The model answers "10" with p=0.6 and "1" with p=0.1.
    replies = {"10": 0.6, "1": 0.1, **{str(n): 0.3 / 8 for n in range(2, 10)}}
    lm = _reply_model(tokenizer, replies)
    # Scoring the bare numbers would pick "1": P(starts with 1) = 0.7 > P(starts with 10) = 0.6.
    assert lm.prefix_mass("1") > lm.prefix_mass("10")
    lm.pieces.clear()
    out = _evaluate(lm, manager, "wvs_culture_aware_usa", "Q48", chat)
    sample = out["samples"]["wvs_culture_aware_usa"][0]
    assert sample["alignment"]["answer"] == 10
    end = END if chat else "\n"
    assert lm.pieces[0][-1] == end and lm.pieces[-1][-2:] == ["0", end]
    continuation = sample["arguments"][9][1]
    assert continuation == ("10" + END if chat else " 10\n")


def test_the_persona_is_the_system_message(tokenizer, manager):
    lm = _reply_model(tokenizer, {"1": 1.0})
    out = _evaluate(lm, manager, "wvs_culture_aware_chn", "Q1", chat=True)
    prompt = out["samples"]["wvs_culture_aware_chn"][0]["arguments"][0][0]
    system = render("culture_aware", "Q1", "CHN").system
    assert prompt.startswith(f"<|im_start|>system\n{system}{END}\n<|im_start|>user\n")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_without_a_chat_template_the_persona_opens_the_prompt(tokenizer, manager):
    lm = _reply_model(tokenizer, {"1": 1.0})
    out = _evaluate(lm, manager, "wvs_culture_aware_chn", "Q1", chat=False)
    prompt = out["samples"]["wvs_culture_aware_chn"][0]["arguments"][0][0]
    expected = render("culture_aware", "Q1", "CHN")
    assert prompt == f"{expected.system}\n\n{expected.user}"


def _loaded(manager, name: str):
    return manager.load([name])["tasks"][name]


def test_a_template_that_drops_the_system_message_gets_the_persona_in_the_user_turn(manager):
    task = _loaded(manager, "wvs_culture_aware_usa")
    doc = task.eval_docs[0]
    seen = []

    def drops_system(messages, add_generation_prompt=True):
        # what lm-eval's hf backend does when a template rejects the system role
        seen.append(messages)
        kept = [m for m in messages if m["role"] != "system"]
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in kept) + "<assistant>"

    ctx = task.fewshot_context(doc, 0, apply_chat_template=True, chat_template=drops_system)
    system = render("culture_aware", doc["qid"], "USA").system
    assert ctx.startswith(f"<user>{system}\n\n{doc['user']}</user>")
    assert [m["role"] for m in seen[-1]] == ["user"]


def test_a_template_that_loses_the_persona_stops_the_run(manager):
    task = _loaded(manager, "wvs_culture_aware_usa")

    def loses_everything(messages, add_generation_prompt=True):
        return "<assistant>"

    with pytest.raises(CulturespaError, match="drops the persona"):
        task.fewshot_context(
            task.eval_docs[0], 0, apply_chat_template=True, chat_template=loses_everything
        )


def test_loglikelihood_results_give_the_answer_and_distribution_scores():
    from culturespa_tasks.utils import process_loglikelihood_results

    doc = {"qid": "Q1", "country": "USA", "options": [1, 2, 3, 4], "majority": 1, "max_distance": 3}
    out = process_loglikelihood_results(
        doc, [(-3.0, False), (-0.1, True), (-5, False), (-6, False)]
    )
    assert out["alignment"] == {"answer": 2, "majority": 1, "max_distance": 3}
    assert out["majority_match"] == 0.0
    assert 0 <= out["alignment_w1"] <= 1 and 0 <= out["alignment_jsd"] <= 1


def test_generation_results_are_parsed_as_in_the_paper():
    from culturespa_tasks.utils import (
        alignment_aggregate,
        alignment_specific_aggregate,
        count,
        mean_of_valid,
        process_generation_results,
    )

    doc = {
        "qid": "Q1", "country": "USA", "options": [1, 2, 3, 4], "majority": 1, "consensus": 1,
        "max_distance": 3,
    }  # fmt: skip
    good = process_generation_results(doc, ["I choose 2. Rather important"])
    bad = process_generation_results(doc, ["It depends."])
    outside = process_generation_results(doc, ["7"])
    assert good["alignment"]["answer"] == 2 and good["coverage"] == 1.0
    assert bad["alignment"]["answer"] is None and bad["coverage"] == 0.0
    # "7" passes the paper's parser (0..10) and enters its score, but names no option of Q1:
    # not covered, counted out of range.
    assert outside["alignment"]["answer"] == 7 and outside["alignment_w1"] is None
    assert outside["coverage"] == 0.0 and outside["out_of_range"] == 1.0
    assert good["out_of_range"] == bad["out_of_range"] == 0.0
    assert count([good["out_of_range"], bad["out_of_range"], outside["out_of_range"]]) == 1
    rows = [good["alignment"], bad["alignment"]]
    assert alignment_aggregate(rows) == pytest.approx(1 - 1 / 3)
    # Culture-specific alignment keeps only items whose majority differs from the consensus.
    specific_doc = {**doc, "qid": "Q2", "consensus": 2}
    hit = process_generation_results(specific_doc, ["1"])
    assert hit["alignment_specific"]["specific"] and not good["alignment_specific"]["specific"]
    assert alignment_specific_aggregate(
        [good["alignment_specific"], hit["alignment_specific"]]
    ) == pytest.approx(1.0)
    assert mean_of_valid([good["coverage"], bad["coverage"]]) == 0.5
    assert mean_of_valid([None, 0.25]) == 0.25
    assert math.isnan(alignment_aggregate([bad["alignment"]]))


LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
INST = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)


@pytest.mark.parametrize(
    ("template", "expected"), [(LLAMA3, ("", "<|eot_id|>")), (INST, (" ", "<|im_end|>"))]
)
def test_the_end_of_an_answer_is_read_off_the_chat_template(tokenizer, template, expected):
    from culturespa.inference.chat_templates import answer_frame

    class Model:
        def __init__(self) -> None:
            self.tokenizer = tokenizer

        def apply_chat_template(self, chat_history, add_generation_prompt=True):
            return tokenizer.apply_chat_template(
                chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
                chat_template=template,
            )  # fmt: skip

    model = Model()
    tokenizer_template = tokenizer.chat_template
    tokenizer.chat_template = template
    try:
        messages = [{"role": "user", "content": "Pick 1 or 10."}]
        ctx = model.apply_chat_template(messages)
        assert answer_frame(messages, ctx, "1", model.apply_chat_template) == expected
    finally:
        tokenizer.chat_template = tokenizer_template


# Reversed options --------------------------------------------------------------------------

REVERSED_ITEMS = {"Q1": 4, "Q94": 2, "Q48": 10}
"""Items and their last survey code: Q1 is coded 1..4, Q94 0..2 (numbered from 0), Q48 1..10."""


def _w1_of_last_option(country: str, qid: str) -> float:
    """1 - W1 / (n - 1) of all mass on the last option: W1 is then the sum of the survey's
    cumulative shares before the last option."""
    import numpy as np

    from culturespa.survey.items import survey_distribution

    survey = survey_distribution(country, qid)
    return 1 - float(np.cumsum(survey)[:-1].sum()) / (len(survey) - 1)


@pytest.mark.parametrize("chat", [True, False])
def test_a_model_that_always_picks_the_first_listed_option_gets_the_last_code(
    tokenizer, manager, chat
):
    from culturespa.survey.items import survey_majority

    lm = _reply_model(tokenizer, {"1": 1.0})  # always "1": the first option listed
    task = "wvs_rev_culture_aware_usa"
    out = _evaluate(lm, manager, task, list(REVERSED_ITEMS), chat)
    samples = {s["doc"]["qid"]: s for s in out["samples"][task]}
    for qid, last in REVERSED_ITEMS.items():
        sample = samples[qid]
        assert sample["alignment"]["answer"] == last, qid
        assert sample["alignment_w1"] == pytest.approx(_w1_of_last_option("USA", qid)), qid
        assert sample["majority_match"] == float(survey_majority("USA", qid) == last), qid
        # The model was shown 1..k, and the target is the majority's place in that listing.
        numbers = [a[1].strip().removesuffix(END) for a in sample["arguments"]]
        assert numbers == [str(n) for n in range(1, len(sample["doc"]["options"]) + 1)], qid
    prompt = samples["Q94"]["arguments"][0][0]
    assert "#Options: 1.Active member 2.Inactive member 3.Don't belong" in prompt
    # The same model on the forward task answers "1", the survey's code 1.
    forward = _evaluate(lm, manager, "wvs_culture_aware_usa", "Q1", chat)
    assert forward["samples"]["wvs_culture_aware_usa"][0]["alignment"]["answer"] == 1


def test_reversed_scores_equal_forward_scores_of_the_same_choice():
    """A distribution given over the reversed listing scores as the same distribution over the
    survey's order: every metric is comparable with the forward task."""
    from culturespa_tasks.utils import build_doc, process_loglikelihood_results

    forward = build_doc("culture_aware", "USA", "Q1", "loglik")
    backward = build_doc("culture_aware", "USA", "Q1", "rev")
    assert backward["options"] == [4, 3, 2, 1] and backward["shown"] == [1, 2, 3, 4]
    logliks = [-0.2, -1.5, -2.5, -4.0]  # per survey code 1, 2, 3, 4
    out_forward = process_loglikelihood_results(forward, [(x, False) for x in logliks])
    out_backward = process_loglikelihood_results(backward, [(x, False) for x in logliks[::-1]])
    assert out_backward == out_forward
    assert out_forward["alignment"]["answer"] == 1


# Stated distributions ----------------------------------------------------------------------


def test_a_stated_distribution_is_parsed_and_scored(tokenizer, manager):
    import numpy as np

    from culturespa.survey.items import survey_distribution, survey_majority

    reply = "1: 10%\n2: 20%\n3: 30%\n4: 40%"  # sums to 100; option 4 largest
    lm = _reply_model(tokenizer, {}, text=reply)
    task = "wvs_dist_culture_aware_usa"
    out = _evaluate(lm, manager, task, "Q1", chat=True)
    sample = out["samples"][task][0]
    stated = np.array([0.1, 0.2, 0.3, 0.4])
    survey = survey_distribution("USA", "Q1")
    w1 = np.abs(np.cumsum(stated) - np.cumsum(survey))[:-1].sum()
    assert sample["alignment_w1"] == pytest.approx(1 - w1 / 3)
    assert sample["alignment"]["answer"] == 4  # the paper's score on the largest share
    assert sample["majority_match"] == float(survey_majority("USA", "Q1") == 4)
    assert sample["coverage"] == 1.0 and sample["unparsed"] == 0.0
    prompt = sample["arguments"][0][0]
    assert "estimate how people with an American cultural background would answer" in prompt
    settings = lm.pieces[0]
    assert settings["do_sample"] is False and settings["max_gen_toks"] == 256
    results = out["results"][task]
    assert results["unparsed,none"] == 0.0 and results["coverage,none"] == 1.0


def test_an_unusable_stated_distribution_is_counted_not_dropped(tokenizer, manager):
    lm = _reply_model(tokenizer, {}, text="1: 60%\n2: 40%")  # two shares for four options
    task = "wvs_dist_culture_aware_usa"
    out = _evaluate(lm, manager, task, ["Q1", "Q2", "Q3"], chat=True)
    for sample in out["samples"][task]:
        assert sample["alignment"]["answer"] is None
        assert sample["alignment_w1"] is None and sample["coverage"] == 0.0
    results = out["results"][task]
    assert results["unparsed,none"] == 3.0 and results["coverage,none"] == 0.0
    assert math.isnan(results["alignment,none"])
