"""Steerability from a culture-unaware and a culture-aware run, on hand-built answers."""

from __future__ import annotations

import math

import pytest

from culturespa.steerability import steer, steer_countries
from culturespa.survey import get_item, items_with_data, survey_majority


def far_from(country: str, qid: str) -> int:
    """The option farthest from the country's majority."""
    options = get_item(qid).option_numbers
    majority = survey_majority(country, qid)
    return max(options, key=lambda n: abs(n - majority))


def test_persona_that_finds_every_majority():
    qids = items_with_data("USA")[:40]
    unaware = {q: far_from("USA", q) for q in qids}
    aware = {q: survey_majority("USA", q) for q in qids}
    s = steer(unaware, aware, "USA", n_resamples=200)
    assert (s.closer, s.away, s.unchanged) == (1.0, 0.0, 0.0)
    distance = math.sqrt(sum((unaware[q] - survey_majority("USA", q)) ** 2 for q in qids))
    span = math.sqrt(sum(get_item(q).max_distance ** 2 for q in qids))
    assert s.delta == pytest.approx(1 - (1 - distance / span))  # from far answers to 100
    assert 0 < s.delta_low <= s.delta <= s.delta_high


def test_persona_that_changes_nothing():
    qids = items_with_data("CHN")[:30]
    answers = {q: get_item(q).option_numbers[0] for q in qids}
    s = steer(answers, dict(answers), "CHN", n_resamples=100)
    assert (s.closer, s.away, s.unchanged, s.delta) == (0.0, 0.0, 1.0, 0.0)
    assert s.delta_low == s.delta_high == 0.0


def test_counts_by_hand_and_invalid_items_left_out():
    q1, q2, q3, q4 = items_with_data("NGA")[:4]
    m = {q: survey_majority("NGA", q) for q in (q1, q2, q3, q4)}
    unaware = {q1: far_from("NGA", q1), q2: m[q2], q3: m[q3], q4: None}
    aware = {q1: m[q1], q2: far_from("NGA", q2), q3: m[q3], q4: m[q4]}
    s = steer(unaware, aware, "NGA", n_resamples=0)
    assert s.n_items == 3  # q4 has no valid culture-unaware answer
    assert (s.closer, s.away, s.unchanged) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert math.isnan(s.delta_low)


def test_countries_share_one_draw_and_average_the_paper_countries():
    unaware, aware = {}, {}
    for cc in ("USA", "CHN", "MEX"):
        qids = items_with_data(cc)[:30]
        unaware[cc] = {q: far_from(cc, q) for q in qids}
        aware[cc] = {q: survey_majority(cc, q) for q in qids}
    results, (mean, low, high) = steer_countries(unaware, aware, n_resamples=200)
    assert [s.country for s in results] == ["USA", "CHN", "MEX"]
    paper = [s.delta for s in results if s.country != "MEX"]  # MEX is not in the paper's AVG
    assert mean == pytest.approx(sum(paper) / 2)
    assert low <= mean <= high
