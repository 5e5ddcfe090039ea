"""The permuted and calibrated ways take the answer's place and label out of the score.

The rule (issue 24): a model whose log-likelihood of an option number is any function of the
place the option is listed at and of the number shown, plus a fixed preference for one survey
option, answers that option on every item under `wvs_perm_*` and `wvs_cal_*`; a model whose
log-likelihood depends on the place alone gets the uniform distribution from `wvs_perm_*`; the
paper's forward task, asked the same model, answers whatever is listed at its favourite place.
The fake models below read only the prompt text and the scored continuation, as a real one would.
"""

from __future__ import annotations

import re

import pytest

from culturespa.survey.items import get_item, items_with_data
from culturespa_tasks import TASK_DIR

pytest.importorskip("lm_eval")

END = "<|im_end|>"
PLACE_SCORE = (3.0, -2.0, 1.5, 0.0, 4.5, -1.0, 2.5, 0.5, -3.0, 1.0, 3.5)
"""Log-likelihood by listed place (0 = first): no order, no pattern; place 4 is the favourite
where there are five options or more, place 0 otherwise."""
PREFERENCE = 0.4
"""Added for the preferred option: far smaller than the gaps between places."""
ITEMS = ("Q7", "Q94", "Q1", "Q119", "Q33", "Q171", "Q172", "Q48", "Q241")
"""2, 3 (coded from 0), 4, 5 (from 0), 5 (agree..disagree), 7, 8, 10 (1..10) and 11 (0..10)
options."""
OPTIONS_LINE = re.compile(r"#Options: (.*)")
LISTED = re.compile(r"(?:^| )(\d+)\.(.*?)(?= \d+\.|$)")


def label_score(label: int) -> float:
    """Log-likelihood by the number shown: any function will do."""
    return 0.9 * ((label * 7) % 5)


def preferred_code(qid: str) -> int:
    """The survey option the fake model prefers: the second one (a middle one, where there is)."""
    return get_item(qid).option_numbers[1]


def shown_text(qid: str, code: int) -> set[str]:
    """How the prompts may write an option's text (scale values read 'scale point 4' by place)."""
    text = get_item(qid).option_text(code)
    return {text, f"scale point {text}"}


def listed_options(prompt: str) -> list[tuple[int, str]]:
    """(number, text) of the asked item's options, in the order the prompt lists them."""
    line = OPTIONS_LINE.findall(prompt)[-1]
    return [(int(n), text) for n, text in LISTED.findall(line)]


def _fake_model(preference: float, tokenizer=None):
    """An lm-eval LM: log-likelihood = PLACE_SCORE[place] + label_score(number), plus
    `preference` for the preferred survey option of the item the request belongs to."""
    from lm_eval.api.model import LM

    class PlaceAndLabelModel(LM):
        def __init__(self) -> None:
            super().__init__()
            self.tokenizer = tokenizer
            self.requests: list[tuple[str, str]] = []

        @property
        def tokenizer_name(self) -> str:
            return "tiny"

        def chat_template(self, chat_template=False):
            return tokenizer.chat_template

        def apply_chat_template(self, chat_history, add_generation_prompt=True):
            return tokenizer.apply_chat_template(
                chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
            )

        def score(self, qid: str, prompt: str, continuation: str) -> float:
            number = int(continuation.strip().removesuffix(END).strip())
            listed = listed_options(prompt)
            labels = [n for n, _ in listed]
            place = labels.index(number)
            texts = {text for _, text in listed}
            assert len(labels) == len(get_item(qid).options), (qid, listed)
            assert texts == {"N/A"} or len(texts) == len(labels), (qid, listed)
            bonus = preference if listed[place][1] in shown_text(qid, preferred_code(qid)) else 0.0
            return PLACE_SCORE[place] + label_score(number) + bonus

        def loglikelihood(self, requests):
            self.requests.extend(r.args for r in requests)
            return [(self.score(r.doc["qid"], *r.args), False) for r in requests]

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            raise NotImplementedError

    return PlaceAndLabelModel()


@pytest.fixture(scope="module")
def manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASK_DIR), include_defaults=False)


@pytest.fixture(scope="module")
def tokenizer():
    from support.tiny_model import build_tiny_tokenizer

    return build_tiny_tokenizer()


def _samples(lm, manager, task: str, chat: bool = False) -> dict[str, dict]:
    import lm_eval

    country = task.rsplit("_", 1)[1].upper()
    indices = [items_with_data(country).index(q) for q in ITEMS]
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=manager, samples={task: indices},
        apply_chat_template=chat, log_samples=True,
    )  # fmt: skip
    return {s["doc"]["qid"]: s for s in out["samples"][task]}, out["results"][task]


def forward_favourite(qid: str) -> int:
    """The code the forward listing puts where place and number score highest (the number
    shown is the survey's code)."""
    codes = get_item(qid).option_numbers
    return max(codes, key=lambda c: PLACE_SCORE[codes.index(c)] + label_score(c))


def test_the_forward_task_follows_the_place(manager):
    lm = _fake_model(PREFERENCE)
    samples, _ = _samples(lm, manager, "wvs_culture_aware_usa")
    for qid in ITEMS:
        assert samples[qid]["alignment"]["answer"] == forward_favourite(qid), qid
    missed = [q for q in ITEMS if forward_favourite(q) != preferred_code(q)]
    assert len(missed) >= len(ITEMS) - 2  # the preferred option loses on nearly every item


@pytest.mark.parametrize(
    ("task", "chat"),
    [
        ("wvs_perm_culture_aware_usa", False),
        ("wvs_perm_aware_self_alignment_deu", True),
        ("wvs_cal_culture_aware_usa", False),
        ("wvs_cal_cct_self_alignment_nga", True),
    ],
)
def test_the_preferred_option_is_the_answer_on_every_item(manager, tokenizer, task, chat):
    lm = _fake_model(PREFERENCE, tokenizer)
    samples, results = _samples(lm, manager, task, chat)
    assert set(samples) == set(ITEMS)
    for qid, sample in samples.items():
        codes = list(get_item(qid).option_numbers)
        row = sample["alignment"]
        assert row["answer"] == preferred_code(qid), (qid, row)
        # The rest is exactly even: the preference is all that is left.
        shares = row["shares"]
        others = [s for c, s in zip(codes, shares) if c != preferred_code(qid)]
        assert max(others) == pytest.approx(min(others), abs=1e-9), (qid, shares)
        assert shares[codes.index(preferred_code(qid))] > max(others)
    assert results["coverage,none"] == 1.0 and results["tied,none"] == 0.0


@pytest.mark.parametrize("preference", [PREFERENCE, 50.0])
def test_position_led_marks_forward_answers_at_the_content_free_favourite(manager, preference):
    """A weak preference: the forward answer is the place's, on every item (position-led); a
    preference stronger than any place effect: the forward answer is the preferred option,
    position-led only where that option is listed at the favourite place."""
    lm = _fake_model(preference)
    samples, results = _samples(lm, manager, "wvs_cal_culture_aware_usa")
    for qid, sample in samples.items():
        forward = forward_favourite(qid) if preference == PREFERENCE else preferred_code(qid)
        assert sample["alignment"]["uncalibrated"] == forward, qid
        assert sample["position_led"] == float(forward == forward_favourite(qid)), qid
    if preference == PREFERENCE:
        assert results["position_led,none"] == 1.0
    else:
        assert results["position_led,none"] < 0.5


def test_each_order_lists_every_option_at_every_place_numbered_by_place(manager):
    lm = _fake_model(PREFERENCE)
    samples, _ = _samples(lm, manager, "wvs_perm_culture_aware_usa")
    for qid in ("Q1", "Q94", "Q48"):
        sample = samples[qid]
        k = len(get_item(qid).options)
        prompts = list(dict.fromkeys(a[0] for a in sample["arguments"]))
        assert len(sample["arguments"]) == k * k and len(prompts) == k
        listings = [listed_options(p) for p in prompts]
        for listing in listings:
            assert [n for n, _ in listing] == list(range(1, k + 1))
        for place in range(k):  # every option once at every place
            assert len({listing[place][1] for listing in listings}) == k
        # The sample log holds the answer each order alone gives: its favourite place.
        per_order = sample["alignment"]["per_order"]
        assert len(per_order) == k and len(set(per_order)) > 1


def test_a_model_of_the_place_alone_gets_the_uniform_distribution(manager):
    lm = _fake_model(0.0)
    samples, results = _samples(lm, manager, "wvs_perm_culture_aware_usa")
    for qid, sample in samples.items():
        k = len(get_item(qid).options)
        assert sample["alignment"]["shares"] == pytest.approx([1 / k] * k, abs=1e-12), qid
        # No option leads: no answer (counted as tied), not the first or the middle one.
        assert sample["alignment"]["answer"] is None
    assert results["tied,none"] == len(ITEMS) and results["coverage,none"] == 0.0


def test_calibration_sends_the_content_free_prompt_once_per_labels(manager):
    """Q1 and Q2 share labels 1..4, Q94 has 0..2: 2 content-free prompts for 3 items."""
    import lm_eval

    from culturespa.evaluation.dedup import DeduplicatingLM

    inner = _fake_model(PREFERENCE)
    lm = DeduplicatingLM(inner)
    task = "wvs_cal_culture_aware_usa"
    qids = ("Q1", "Q2", "Q94")
    lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=manager,
        samples={task: [items_with_data("USA").index(q) for q in qids]},
    )  # fmt: skip
    assert lm.received["loglikelihood"] == 2 * (4 + 4 + 3)
    assert lm.sent["loglikelihood"] == 4 + 4 + 3 + 4 + 3
    content_free = {p for p, _ in inner.requests if "#Question: N/A" in p}
    assert len(content_free) == 2


# The pooling and the calibration on hand-made numbers -----------------------------------------


def test_orders_are_pooled_by_their_geometric_mean():
    import math

    from culturespa.scoring.debiasing import pooled_over_orders

    # Order A lists codes 1, 2 with probabilities .8, .2; order B lists 2, 1 with .6, .4.
    out = pooled_over_orders(
        (1, 2), [(1, 2), (2, 1)], [[math.log(0.8), math.log(0.2)], [math.log(0.6), math.log(0.4)]]
    )
    one, two = math.sqrt(0.8 * 0.4), math.sqrt(0.2 * 0.6)
    assert list(out.probs) == pytest.approx([one / (one + two), two / (one + two)])
    assert out.answer == 1


def test_calibration_divides_by_the_content_free_distribution():
    import math

    from culturespa.scoring.debiasing import calibrated

    item = [math.log(p) for p in (0.5, 0.3, 0.2)]
    content_free = [math.log(p) for p in (0.5, 0.25, 0.25)]
    out = calibrated((1, 2, 3), item, content_free)
    ratios = (0.5 / 0.5, 0.3 / 0.25, 0.2 / 0.25)  # 1.0, 1.2, 0.8
    assert list(out.probs) == pytest.approx([r / sum(ratios) for r in ratios])
    assert out.answer == 2  # the forward answer, 1, was the label's pull


@pytest.mark.parametrize(
    ("scores", "answer"),
    [((0.0, -1.0, -2.0), 1), ((-1.0, 0.0, 0.0), None), ((-1.0, -1e-12, 0.0), None)],
)
def test_a_tie_for_the_top_leaves_the_item_without_an_answer(scores, answer):
    from culturespa.scoring.debiasing import answer_of

    assert answer_of((1, 2, 3), scores) == answer


def test_culturespa_hf_scores_the_repeated_content_free_prompt_once(tiny_model_dir, monkeypatch):
    """Plain lm-eval (no culturespa eval deduplication): Q1, Q2 and Q3 share the labels 1..4,
    so 3 x 4 item requests and one content-free prompt's 4, not 3 x 4."""
    import lm_eval

    from culturespa.evaluation.tasks import task_manager
    from culturespa.inference import lm_eval_model, option_scoring

    scored = []
    real = option_scoring.score_options

    def counting(model, prompts, answers, *args, **kwargs):
        scored.extend(len(a) for a in answers)
        return real(model, prompts, answers, *args, **kwargs)

    monkeypatch.setattr(option_scoring, "score_options", counting)
    lm = lm_eval_model.CulturespaHFLM(pretrained=str(tiny_model_dir), batch_size=8, device="cpu")
    task = "wvs_cal_culture_aware_usa"
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=task_manager(), apply_chat_template=True,
        samples={task: [items_with_data("USA").index(q) for q in ("Q1", "Q2", "Q3")]},
        log_samples=True,
    )  # fmt: skip
    assert sorted(scored) == [4, 4, 4, 4]
    samples = out["samples"][task]
    content_free = {tuple(tuple(r[0]) for r in s["resps"][4:]) for s in samples}
    assert len(samples) == 3 and len(content_free) == 1  # the one answer given to every item


def test_self_alignment_examples_are_shifted_with_the_asked_item():
    """Shift 1 of Q1 lists 'Rather important' first; each example is listed with the same shift,
    numbered by place, and its answer is the country's majority option under that number."""
    from culturespa.prompts.templates import render
    from culturespa.survey.items import all_items, survey_majority

    user = render("self_alignment", "Q1", "USA", shift=1).user
    assert user.endswith(
        "#Options: 1.Rather important 2.Not very important 3.Not at all important "
        "4.Very important\n#Answer:"
    )
    examples = [line for line in user.splitlines() if line.startswith("Question: ")]
    assert len(examples) == 5
    by_question = {item.question: qid for qid, item in all_items().items()}
    for line in examples:
        question, rest = line.removeprefix("Question: ").split(" Options: ")
        options, answer = rest.split(" Answer: ")
        qid = by_question[question]
        item = get_item(qid)
        listed = [(int(n), text) for n, text in LISTED.findall(options)]
        texts = list(item.options)
        assert [t for _, t in listed] == texts[1:] + texts[:1], qid  # the same shift
        assert [n for n, _ in listed] == list(range(1, len(texts) + 1)), qid
        number, text = answer.split(".", 1)
        assert dict(listed)[int(number)] == text == item.option_text(survey_majority("USA", qid))
