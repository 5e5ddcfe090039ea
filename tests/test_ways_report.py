"""Ways of asking in a report: one row per way, order consistency, agreement between ways.

Answers are built by hand so the expected shares and scores can be written down: forward answers
all hit the survey majority; the reversed ones miss on a known set of items.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
from test_report import write_run

from culturespa.report.writer import ReportOptions, build_report
from culturespa.scoring.agreement import consistency_countries, pooled_agreement
from culturespa.survey.items import get_item, items_with_data, survey_majority

N = 10
MISSED = 4  # the reversed run misses the majority on the last 4 of 10 items


def other_option(qid: str, code: int) -> int:
    """An option that is not `code`: the first, or the last if `code` is the first."""
    numbers = get_item(qid).option_numbers
    return numbers[0] if code != numbers[0] else numbers[-1]


def forward_and_reversed(country: str) -> tuple[dict[str, int], dict[str, int]]:
    items = items_with_data(country)[:N]
    forward = {q: survey_majority(country, q) for q in items}
    reversed_ = {
        q: (m if i < N - MISSED else other_option(q, m)) for i, (q, m) in enumerate(forward.items())
    }
    return forward, reversed_


def paper_score(country: str, answers: dict[str, int]) -> float:
    """The paper's formula, written out: 1 - sqrt(sum (a - m)^2 / sum (n - 1)^2)."""
    num = sum((a - survey_majority(country, q)) ** 2 for q, a in answers.items())
    den = sum(get_item(q).max_distance ** 2 for q in answers)
    return 1 - math.sqrt(num / den)


def test_order_consistency_on_hand_built_answers():
    forward, reversed_ = {}, {}
    for cc in ("USA", "DEU"):
        forward[cc], reversed_[cc] = forward_and_reversed(cc)
    results, average = consistency_countries(forward, reversed_, n_resamples=200, seed=1)
    for result in results:
        assert result.n_items == N
        assert result.same == pytest.approx((N - MISSED) / N)
        assert result.forward == pytest.approx(1.0)
        assert result.reversed == pytest.approx(
            paper_score(result.country, reversed_[result.country])
        )
        assert result.delta == pytest.approx(1.0 - result.reversed)
        assert result.delta_low <= result.delta <= result.delta_high
    assert average.n_countries == 2 and average.same == pytest.approx(0.6)
    assert average.delta == pytest.approx(sum(r.delta for r in results) / 2)
    # One draw for both orders: identical answers give a difference of exactly 0 in every
    # replicate (independent draws would scatter it).
    same, _ = consistency_countries(forward, forward, n_resamples=200, seed=1)
    assert all(r.delta_low == r.delta_high == 0.0 and r.same == 1.0 for r in same)


def test_pooled_agreement_counts_items_both_answered():
    first = {"USA": {"Q1": 1, "Q2": 2, "Q3": 3, "Q4": None}, "DEU": {"Q1": 1, "Q2": 1}}
    second = {"USA": {"Q1": 1, "Q2": 3, "Q3": 3, "Q4": 2}, "DEU": {"Q1": 1}, "CHN": {"Q1": 1}}
    # USA: Q1, Q2, Q3 answered by both (Q4 unusable in the first), 2 the same; DEU: Q1, same.
    assert pooled_agreement(first, second) == (4, pytest.approx(3 / 4))
    assert pooled_agreement({"USA": {}}, second)[0] == 0


@pytest.fixture()
def four_ways(tmp_path):
    """One model, culture-aware, USA and DEU, asked in four ways, with sample logs."""
    tasks = {}
    for cc in ("USA", "DEU"):
        forward, reversed_ = forward_and_reversed(cc)
        cc = cc.lower()
        tasks[f"wvs_culture_aware_{cc}"] = forward
        tasks[f"wvs_rev_culture_aware_{cc}"] = reversed_
        # generation: the majority on every other item, another option elsewhere
        tasks[f"wvs_gen_culture_aware_{cc}"] = {
            q: (m if i % 2 == 0 else other_option(q, m)) for i, (q, m) in enumerate(forward.items())
        }
        # stated distribution: the first two replies unusable, the rest at the majority
        tasks[f"wvs_dist_culture_aware_{cc}"] = {
            q: (None if i < 2 else m) for i, (q, m) in enumerate(forward.items())
        }
    write_run(tmp_path / "runs", "2025-01-01T00-00-00.0", tasks, {"pretrained": "org/m"})
    return build_report(
        [tmp_path / "runs"], tmp_path / "out", ReportOptions(seed=3)
    ), tmp_path / "out"


def test_the_report_has_one_row_per_way_and_says_the_way(four_ways):
    report, out = four_ways
    methods = {r.method: r for r in report.models}
    assert set(methods) == {
        "org/m | Culture-aware (P1)",
        "org/m | Culture-aware (P1), reversed options",
        "org/m | Culture-aware (P1), generated",
        "org/m | Culture-aware (P1), stated distribution",
    }
    records = json.loads((out / "leaderboard.json").read_text())["rows"]
    assert sorted(r["way"] for r in records if r["kind"] == "model") == sorted(
        ["loglik", "rev", "gen", "dist"]
    )
    with (out / "leaderboard.csv").open() as handle:
        lines = [line for line in csv.DictReader(handle) if line["kind"] == "model"]
    assert sorted(line["way"] for line in lines) == ["dist", "gen", "loglik", "rev"]
    comparison = (out / "comparison.md").read_text()
    assert "Culture-aware (P1), reversed options" in comparison
    assert "Culture-aware (P1), stated distribution" in comparison
    # The stated distribution's unusable replies lower its coverage: 8 of 10 items per country.
    dist = methods["org/m | Culture-aware (P1), stated distribution"]
    assert dist.coverage == pytest.approx(0.8)
    assert methods["org/m | Culture-aware (P1), reversed options"].coverage == pytest.approx(1.0)


def test_the_report_shows_order_consistency(four_ways):
    report, out = four_ways
    (order,) = report.order_consistency
    assert order.name == "org/m | Culture-aware (P1)"
    assert order.average.same == pytest.approx(0.6)
    payload = json.loads((out / "leaderboard.json").read_text())
    (record,) = payload["order_consistency"]
    assert record["countries"]["USA"]["same"] == pytest.approx(0.6)
    assert record["countries"]["USA"]["n_items"] == N
    assert record["average"]["delta"] == pytest.approx(order.average.delta, abs=1e-6)
    markdown = (out / "order_consistency.md").read_text()
    assert "| USA | 10 | 60.0% | 100.0 |" in markdown
    with (out / "order_consistency.csv").open() as handle:
        lines = list(csv.DictReader(handle))
    assert [(line["country"], line["same"]) for line in lines] == [
        ("USA", "60.00"),
        ("DEU", "60.00"),
    ]
    assert (out / "plots" / "order_consistency_org-m-culture-aware-p1.png").stat().st_size > 5000
    page = (out / "index.html").read_text()
    assert 'id="order"' in page and "Order consistency" in page


def test_the_report_shows_agreement_between_ways(four_ways):
    report, out = four_ways
    pairs = {(a.first, a.second): (a.n_items, a.same) for a in report.agreement}
    # Per country, 10 items: forward vs reversed 6 same; forward vs generation 5 (every other);
    # forward vs stated 8 of the 8 usable; reversed vs generation: items 0, 2, 4 agree on the
    # majority (even, below 6), items 7, 9 on the same other option (odd, 6 and above): 5;
    # reversed vs stated: items 2..5 of the 8 usable: 4; generation vs stated: the even items
    # among 2..9: 4.
    assert pairs == {
        ("loglik", "rev"): (20, pytest.approx(0.6)),
        ("loglik", "gen"): (20, pytest.approx(0.5)),
        ("loglik", "dist"): (16, pytest.approx(1.0)),
        ("rev", "gen"): (20, pytest.approx(0.5)),
        ("rev", "dist"): (16, pytest.approx(0.5)),
        ("gen", "dist"): (16, pytest.approx(0.5)),
    }
    payload = json.loads((out / "leaderboard.json").read_text())
    assert {tuple(a["ways"]) for a in payload["agreement"]} == set(pairs)
    markdown = (out / "agreement.md").read_text()
    assert (
        "| org/m | Culture-aware (P1) | log-likelihood | stated distribution | 16 | 100.0% |"
        in (markdown)
    )
    assert "Agreement between ways of asking" in (out / "index.html").read_text()
