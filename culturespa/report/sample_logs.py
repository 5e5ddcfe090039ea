"""Read lm-eval's sample logs (`samples_<task>_<date>.jsonl`, written with `--log_samples`): the
option each item's reply chose and the item's own metric values."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from culturespa.bounded_input import BoundExceeded, iter_json_lines
from culturespa.errors import CulturespaError
from culturespa.fields import show
from culturespa.report.damage import DamagedSample, check_sample_shape, metric_problem
from culturespa.report.run_scores import Notes
from culturespa.scoring.answers import MAX_VALID_ANSWER, parse_answer
from culturespa.scoring.metric_names import REPORTED_METRICS
from culturespa.scoring.stated import parse_stated_distribution
from culturespa.survey.items import scored_items

_QID_KEYS = ("qid", "Q_id", "question_id", "item")


def _qid_of(sample: dict[str, Any]) -> str | None:
    doc = sample.get("doc") if isinstance(sample.get("doc"), dict) else {}
    for source in (doc, sample):
        for key in _QID_KEYS:
            value = source.get(key)
            if isinstance(value, str) and value in scored_items():
                return value
    return None


def _first(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return value


def sample_answer(sample: dict[str, Any], qid: str, way: str) -> int | None:
    """The option (survey code) a logged sample chose: its logged answer, else re-read from the
    responses (for reversed options through the doc's `options`, the codes in listed order)."""
    logged = sample.get("alignment")  # culturespa_tasks log {"answer", "majority", "max_distance"}
    if isinstance(logged, dict) and "answer" in logged:
        answer = logged["answer"]
        if not isinstance(answer, int) or isinstance(answer, bool):
            return None
        if not 0 <= answer <= MAX_VALID_ANSWER:
            raise DamagedSample(
                f"field 'alignment.answer' is {show(answer)}, beyond what the paper's parser "
                f"gives (0..{MAX_VALID_ANSWER})"
            )
        return answer
    responses = sample.get("filtered_resps") or sample.get("resps") or []
    doc = sample.get("doc") if isinstance(sample.get("doc"), dict) else {}
    check_sample_shape(responses, doc)
    if way == "gen":
        reply = _first(responses)
        return parse_answer(reply) if isinstance(reply, str) else None
    if way == "dist":
        return _stated_choice(_first(responses), qid, doc)
    scores = []
    for resp in responses:
        head = resp
        while isinstance(head, list) and head:
            head = head[0]
        if not isinstance(head, (int, float)) or isinstance(head, bool):
            return None
        scores.append(float(head))
    numbers = doc.get("options") or list(scored_items()[qid].option_numbers)
    if not scores or len(scores) != len(numbers):
        return None
    return int(numbers[max(range(len(scores)), key=scores.__getitem__)])


def _stated_choice(reply: Any, qid: str, doc: dict[str, Any]) -> int | None:
    """The option with the largest share of a stated-distribution reply (None if unusable)."""
    item = scored_items()[qid]
    codes = doc.get("options") or list(item.option_numbers)
    shown = doc.get("shown") or codes
    texts = doc.get("texts") or list(item.options)
    if not isinstance(reply, str) or len({len(codes), len(shown), len(texts)}) != 1:
        return None
    shares = parse_stated_distribution(reply, shown, texts).shares
    return None if shares is None else int(codes[max(range(len(codes)), key=shares.__getitem__)])


def read_samples(path: Path, way: str, notes: Notes) -> tuple[dict, dict]:
    """Per-item answers and numeric per-item metrics from one samples_<task>_<date>.jsonl,
    read a line at a time. A line that is not JSON (a killed run's last line) is skipped with a
    note; a line that breaks a bound or has a field of the wrong shape is an error naming the
    file, line and field."""
    answers: dict[str, int | None] = {}
    item_metrics: dict[str, dict[str, float]] = {}
    bad = 0
    fix = "fix or remove it, or move its results file away"
    # -Infinity is a real log-likelihood; as a metric it is refused (metric_problem).
    samples = iter_json_lines(path, allow_nan=True, what="sample log ", allow_infinity=True)
    for number, sample in samples:
        if isinstance(sample, BoundExceeded):
            raise CulturespaError(f"sample log {path}: line {number}: refused, {sample}; {fix}")
        qid = _qid_of(sample) if isinstance(sample, dict) else None
        if qid is None:
            bad += 1
            continue
        try:
            answers[qid] = sample_answer(sample, qid, way)
            item_metrics[qid] = _item_metrics(sample)
        except DamagedSample as exc:
            raise CulturespaError(f"sample log {path}: line {number}: {exc}; {fix}") from None
    if bad:
        notes.add(f"{path}: skipped {bad} unreadable line(s) (bad JSON or no WVS item id)")
    return answers, item_metrics


def _item_metrics(sample: dict[str, Any]) -> dict[str, float]:
    """The numeric per-item metrics of a sample (NaN dropped); impossible values raise."""
    out = {}
    for metric in REPORTED_METRICS:
        value = sample.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = metric_problem(metric, float(value))
            if problem:
                raise DamagedSample(f"field {metric!r}: {problem}")
            if not math.isnan(value):
                out[metric] = float(value)
    return out
