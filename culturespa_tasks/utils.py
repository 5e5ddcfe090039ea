"""Functions the WVS task YAMLs call: docs from the installed survey, per-item scores, aggregations.

lm-eval loads this file by path, so every import is absolute (`culturespa`, `culturespa_tasks`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from culturespa.alignment import alignment_from_arrays
from culturespa.inference.vllm_shutdown import install_exit_hook
from culturespa.prompts.debiased import AskedPrompts, calibration_prompts, permuted_prompts
from culturespa.prompts.task_names import WAYS
from culturespa.prompts.templates import get_template, render
from culturespa.scoring.answers import parse_answer
from culturespa.scoring.debiasing import Debiased, calibrated, per_order_answers, pooled_over_orders
from culturespa.scoring.distributions import distribution_scores, softmax
from culturespa.scoring.stated import parse_stated_distribution
from culturespa.survey.items import consensus_majority, get_item, items_with_data, survey_majority
from culturespa_tasks.wvs_task import WVSTask

__all__ = [
    "WVSTask",
    "alignment_aggregate",
    "alignment_specific_aggregate",
    "build_doc",
    "count",
    "doc_to_choice",
    "doc_to_target",
    "doc_to_text",
    "load_docs",
    "mean_of_valid",
    "process_calibrated_results",
    "process_distribution_results",
    "process_generation_results",
    "process_loglikelihood_results",
    "process_permuted_results",
]

# `lm_eval --model vllm` leaves vLLM's engine running at exit, which can abort a finished run;
# the hook stops it first (culturespa.inference.vllm_shutdown). A no-op where vLLM is not loaded.
install_exit_hook()

DEBIASED_PROMPTS = {"perm": permuted_prompts, "cal": calibration_prompts}
"""The ways that ask one item with several prompts (one doc, every prompt's requests)."""


def build_doc(template: str, country: str, qid: str, way: str = "loglik") -> dict[str, Any]:
    """One eval doc: the item's user message for the way of asking, template and country, and
    its survey answer.

    `options` are the survey's codes in the order the prompt lists them, `shown` the numbers the
    prompt gives them (the same, except with the options reversed: shown 1..k, codes last to
    first), `texts` their texts. A model's choice of the i-th listed option is `options[i]`.
    """
    if way in DEBIASED_PROMPTS:
        return _debiased_doc(
            template, country, qid, way, DEBIASED_PROMPTS[way](template, qid, country)
        )
    item = get_item(qid)
    reverse = way == "rev"
    listing = item.listing(reverse)
    return {
        "qid": qid,
        "way": way,
        "template": template,
        "country": country,
        "user": render(template, qid, country, reverse=reverse, shares=way == "dist").user,
        "options": [o.code for o in listing],
        "shown": [o.shown for o in listing],
        "texts": [o.text for o in listing],
        "majority": survey_majority(country, qid),
        "consensus": consensus_majority(qid),
        "max_distance": item.max_distance,
    }


def _debiased_doc(
    template: str, country: str, qid: str, way: str, asked: AskedPrompts
) -> dict[str, Any]:
    """A doc asked with several user turns (`users`, the first also as `user`); `orders` holds
    each turn's survey codes in the order listed, `options` the first turn's."""
    return {
        "qid": qid,
        "way": way,
        "template": template,
        "country": country,
        "user": asked.users[0],
        "users": list(asked.users),
        "orders": [list(codes) for codes in asked.listed_codes],
        "options": list(asked.listed_codes[0]),
        "shown": list(asked.shown),
        "texts": list(asked.texts),
        "majority": survey_majority(country, qid),
        "consensus": consensus_majority(qid),
        "max_distance": get_item(qid).max_distance,
    }


def load_docs(
    template: str,
    country: str,
    way: str = "loglik",
    survey: str | None = None,
    survey_sha256: str | None = None,
    **_: Any,
):
    """The task's dataset (`custom_dataset`): the items that have survey data for the country,
    in the survey folder the task names (`culturespa tasks build`, which records the folder's
    content SHA-256: a folder changed since is refused) or the shipped survey."""
    import datasets

    from culturespa.survey.folder import check_survey_content, use_survey_folder

    use_survey_folder(survey)
    if survey and survey_sha256:
        check_survey_content(survey, survey_sha256)
    get_template(template)
    if way not in WAYS:
        raise ValueError(f"unknown way of asking {way!r}; known: {', '.join(WAYS)}")
    rows = [build_doc(template, country, qid, way) for qid in items_with_data(country)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def doc_to_text(doc: dict[str, Any]) -> str:
    """The user turn (the persona is the task's `description`, i.e. the system message)."""
    return doc["user"]


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    """The option numbers as the prompt shows them, in the order it lists them."""
    return [str(n) for n in doc.get("shown", doc["options"])]


def doc_to_target(doc: dict[str, Any]) -> int:
    """Index of the survey's majority option (logged as the sample's target)."""
    return doc["options"].index(doc["majority"])


def _alignment_row(doc: dict[str, Any], answer: int | None) -> dict[str, Any]:
    return {"answer": answer, "majority": doc["majority"], "max_distance": doc["max_distance"]}


def _specific_row(doc: dict[str, Any], answer: int | None) -> dict[str, Any]:
    """The alignment row, flagged when the country's majority differs from the consensus."""
    return {**_alignment_row(doc, answer), "specific": doc["majority"] != doc.get("consensus")}


def in_survey_order(doc: dict[str, Any], listed: Sequence[float]) -> np.ndarray:
    """Values given per listed option, put in the survey's option order (for W1 and JSD)."""
    codes = list(get_item(doc["qid"]).option_numbers)
    out = np.zeros(len(codes))
    for code, value in zip(doc["options"], listed):
        out[codes.index(code)] = value
    return out


def process_loglikelihood_results(
    doc: dict[str, Any], results: Sequence[tuple[float, bool]]
) -> dict[str, Any]:
    """Scores of one item from its options' log-likelihoods (one per listed option, in the
    order listed); the choice is mapped back to the survey's code before scoring."""
    probs = softmax([ll for ll, _ in results])
    answer = doc["options"][int(np.argmax(probs))]
    scores = distribution_scores(in_survey_order(doc, probs), doc["country"], doc["qid"])
    return {
        "alignment": _alignment_row(doc, answer),
        "alignment_specific": _specific_row(doc, answer),
        "alignment_w1": scores.alignment_w1,
        "alignment_jsd": scores.alignment_jsd,
        "majority_match": scores.majority_match,
    }


def _per_prompt(doc: dict[str, Any], results: Sequence[tuple[float, bool]]) -> list[list[float]]:
    """The log-likelihoods of a doc asked with several prompts, one list per prompt."""
    k = len(doc["shown"])
    scores = [ll for ll, _ in results]
    return [scores[i : i + k] for i in range(0, len(scores), k)]


def _debiased_scores(doc: dict[str, Any], debiased: Debiased, **logged: Any) -> dict[str, Any]:
    """Scores of one item from its debiased distribution; `logged` goes into the sample log."""
    shares = dict(zip(debiased.codes, debiased.probs))
    survey = [float(shares[c]) for c in get_item(doc["qid"]).option_numbers]
    scores = distribution_scores(survey, doc["country"], doc["qid"])
    answer = debiased.answer
    row = {**_alignment_row(doc, answer), "shares": survey, **logged}
    return {
        "alignment": row,
        "alignment_specific": _specific_row(doc, answer),
        "alignment_w1": scores.alignment_w1,
        "alignment_jsd": scores.alignment_jsd,
        "majority_match": None if answer is None else float(answer == doc["majority"]),
        "coverage": float(answer is not None),
        "tied": float(answer is None),
    }


def process_permuted_results(
    doc: dict[str, Any], results: Sequence[tuple[float, bool]]
) -> dict[str, Any]:
    """Scores of one item asked in every cyclic order: the orders' distributions pooled
    (culturespa.scoring.debiasing); the sample log keeps each order's own answer."""
    scores = _per_prompt(doc, results)
    codes = get_item(doc["qid"]).option_numbers
    pooled = pooled_over_orders(codes, doc["orders"], scores)
    return _debiased_scores(doc, pooled, per_order=per_order_answers(doc["orders"], scores))


def process_calibrated_results(
    doc: dict[str, Any], results: Sequence[tuple[float, bool]]
) -> dict[str, Any]:
    """Scores of one item divided by the content-free prompt's distribution; the sample log
    keeps the uncalibrated answer. `position_led`: whether that answer, the forward task's, is
    the option listed where the content-free prompt puts its largest probability."""
    item, content_free = _per_prompt(doc, results)
    uncalibrated, favourite = per_order_answers([doc["options"]] * 2, [item, content_free])
    scores = _debiased_scores(
        doc, calibrated(doc["options"], item, content_free), uncalibrated=uncalibrated
    )
    led = None if uncalibrated is None or favourite is None else float(uncalibrated == favourite)
    return {**scores, "position_led": led}


def process_generation_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """Scores of one sampled reply, parsed as in the paper (first integer in 0..10, else invalid).

    The paper's score takes every parsed answer, also a number that is not one of the item's
    options (e.g. 7 for a 4-option item); `coverage` counts only answers that are options, and
    `out_of_range` counts the others.
    """
    answer = parse_answer(results[0])
    in_options = answer in doc["options"]
    w1 = jsd = None
    if in_options:
        point = np.zeros(len(doc["options"]))
        point[doc["options"].index(answer)] = 1.0
        scores = distribution_scores(point, doc["country"], doc["qid"])
        w1, jsd = scores.alignment_w1, scores.alignment_jsd
    return {
        "alignment": _alignment_row(doc, answer),
        "alignment_specific": _specific_row(doc, answer),
        "alignment_w1": w1,
        "alignment_jsd": jsd,
        "coverage": float(in_options),
        "out_of_range": float(answer is not None and not in_options),
    }


def process_distribution_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """Scores of one stated distribution: W1, JSD and majority match of the stated shares, and
    the paper's score of the option with the largest share (the first listed among ties).

    A reply that gives no share for some option, or only zeros, is unusable: no scores, counted
    in `unparsed` and missing from `coverage`.
    """
    stated = parse_stated_distribution(results[0], doc["shown"], doc["texts"])
    if not stated.usable:
        none = {"alignment_w1": None, "alignment_jsd": None, "majority_match": None}
        return {
            "alignment": _alignment_row(doc, None),
            "alignment_specific": _specific_row(doc, None),
            **none,
            "coverage": 0.0,
            "unparsed": 1.0,
        }
    answer = doc["options"][int(np.argmax(stated.shares))]
    scores = distribution_scores(in_survey_order(doc, stated.shares), doc["country"], doc["qid"])
    return {
        "alignment": _alignment_row(doc, answer),
        "alignment_specific": _specific_row(doc, answer),
        "alignment_w1": scores.alignment_w1,
        "alignment_jsd": scores.alignment_jsd,
        "majority_match": scores.majority_match,
        "coverage": 1.0,
        "unparsed": 0.0,
    }


def alignment_aggregate(rows: Sequence[dict[str, Any]]) -> float:
    """The paper's alignment score over the task's valid answers (0..1; the paper reports x100)."""
    valid = [r for r in rows if r["answer"] is not None]
    return alignment_from_arrays(
        [r["answer"] for r in valid],
        [r["majority"] for r in valid],
        [r["max_distance"] for r in valid],
    )


def alignment_specific_aggregate(rows: Sequence[dict[str, Any]]) -> float:
    """The paper's score on the items where the country's majority differs from the majority of
    the 18 countries' pooled shares: answering the world's consensus scores low here."""
    return alignment_aggregate([r for r in rows if r["specific"]])


def count(values: Sequence[float]) -> float:
    """How many items have the property (per-item values 0 or 1)."""
    return float(sum(values))


def mean_of_valid(values: Sequence[float | None]) -> float:
    """Mean over the items that have a value (invalid replies give None)."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")
