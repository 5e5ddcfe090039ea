from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from culturespa.alignment import alignment_from_arrays
from culturespa.errors import CulturespaError
from culturespa.scoring.answers import ScoredItem, answer_decided, parse_answer
from culturespa.scoring.bootstrap import ItemDraw, bootstrap_interval, percentile_interval
from culturespa.scoring.country_scores import score_countries, score_country
from culturespa.scoring.distributions import (
    distribution_scores,
    jensen_shannon_score,
    majority_match,
    wasserstein_score,
)
from culturespa.scoring.replies import parse_replies, read_reply_file
from culturespa.survey.items import get_item, items_with_data, survey_majority

REFERENCE = Path(__file__).parent / "data" / "reference_generations"

# The published figures (shared/data/README.md), x100 to 2 decimals.
PAPER_SCORES = [
    ("wvs_result_culture_unaware_0.json", "USA", 68.34),
    ("wvs_result_culture_unaware_0.json", "CHN", 62.19),
    ("wvs_result_culture_unaware_0.json", "NGA", 52.05),
    ("wvs_result_culture_aware_USA_0.json", "USA", 71.12),
    ("wvs_result_culture_aware_CHN_0.json", "CHN", 66.54),
    ("wvs_result_culture_aware_self_alignment_USA_0.json", "USA", 66.99),
]


@pytest.mark.parametrize(("name", "country", "expected"), PAPER_SCORES)
def test_reference_scores_reproduce_the_paper(name, country, expected):
    answers = parse_replies(read_reply_file(REFERENCE / name))
    score = score_country(answers, country, n_resamples=200)
    assert round(100 * score.alignment, 2) == expected
    assert score.ci_low < score.alignment < score.ci_high
    assert 0.9 < score.coverage <= 1.0


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("3", 3),
        ("Answer: 2.Rather important", 2),
        ("0", 0),
        ("10", 10),
        ("11", None),
        ("I cannot answer", None),
        ("", None),
        ("Option 4, because 1", 4),
        (7, 7),
        (None, None),
    ],
)
def test_parse_answer(reply, expected):
    assert parse_answer(reply) == expected


# The rule, case by case: every answer is text (a JSON number becomes its text); the first run of
# digits is the answer, negative when a minus sign directly precedes it and that minus sign is
# not itself preceded by a letter or a digit; valid only in 0..10 (the paper's range).
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("-1", None),  # the paper's \\d+ would read 1
        ("answer: -3", None),
        ("(-2)", None),
        ("--1", None),  # the minus before 1 follows another minus, not a letter or digit
        ("-0", 0),  # minus zero is zero, in range
        ("1-4", 1),  # a range: the first number, unsigned
        ("5-", 5),
        ("Option-2", 2),  # a hyphen after a letter joins words, it is no sign
        ("Q-7", 7),
        ("A3-1", 3),
        ("x-10", 10),
        ("3 - 4", 3),
        ("2.0", 2),
        ("-11", None),
        (-1, None),  # a JSON number: its text "-1"
        (-1.0, None),
        (2.0, 2),  # its text "2.0"
        (7.5, 7),
        (10, 10),
        (11, None),
        (0, 0),
    ],
)
def test_parse_answer_reads_a_leading_minus_as_a_sign(reply, expected):
    assert parse_answer(reply) == expected


@pytest.mark.parametrize(
    "reply",
    ["Answer: 2.Rather important", "Option 4, because 1", "1-4", "A3-1", "x-10 or 9", "-11 then 3",
     "answer: -3.", "(-2)", "I think 3, maybe 4. Option 10 is also fine", "10\n", "12 because"],
)  # fmt: skip
def test_a_decided_prefix_parses_as_the_whole_reply(reply):
    """Generation may stop once `answer_decided`: from the first prefix that is decided on, every
    prefix parses as the whole reply does (the rule: a non-digit follows the first digits)."""
    decided = [i for i in range(len(reply) + 1) if answer_decided(reply[:i])]
    first_digits = re.search(r"\d+", reply)
    assert decided[0] == first_digits.end() + 1  # the first prefix holding a character after them
    assert decided == list(range(decided[0], len(reply) + 1))  # and it stays decided
    assert {parse_answer(reply[:i]) for i in decided} == {parse_answer(reply)}


def test_a_boolean_is_no_answer():
    with pytest.raises(CulturespaError, match="boolean"):
        parse_answer(True)


def test_numbers_and_their_text_score_alike_in_reply_files(tmp_path):
    """A reply file's JSON numbers and the same numbers as text give the same answers."""
    numbers = [
        {"Q_id": "Q1", "answer": -1},
        {"Q_id": "Q2", "answer": 2.0},
        {"Q_id": "Q3", "answer": 3},
    ]
    texts = [
        {"Q_id": "Q1", "answer": "-1"},
        {"Q_id": "Q2", "answer": "2.0"},
        {"Q_id": "Q3", "answer": "3"},
    ]
    paths = [tmp_path / "numbers.json", tmp_path / "texts.json"]
    for path, rows in zip(paths, (numbers, texts)):
        path.write_text(json.dumps(rows))
    expected = {"Q1": None, "Q2": 2, "Q3": 3}
    assert [parse_replies(read_reply_file(p)) for p in paths] == [expected, expected]
    (tmp_path / "bool.json").write_text('[{"Q_id": "Q1", "answer": false}]')
    with pytest.raises(CulturespaError, match=r"entry 0 \(Q1\).*not false"):
        read_reply_file(tmp_path / "bool.json")


def test_no_released_reply_is_read_differently_from_the_papers_regex():
    """Why the published scores hold: on the paper's four reply files (1,036 replies) the sign
    rule changes no answer; the paper's parser is its regex, the first `\\d+` if <= 10."""

    def papers_parser(reply: str) -> int | None:
        match = re.search(r"\d+", reply)
        return int(match.group()) if match and int(match.group()) <= 10 else None

    names = sorted({name for name, _, _ in PAPER_SCORES})
    replies = [r for name in names for r in read_reply_file(REFERENCE / name).values()]
    assert len(replies) == 4 * 259
    assert [parse_answer(r) for r in replies] == [papers_parser(r) for r in replies]


def test_alignment_formula_by_hand():
    # two items of 4 options (max distance 3 each), answers off by 1 and 2
    expected = 1 - math.sqrt(1 + 4) / math.sqrt(9 + 9)
    assert alignment_from_arrays([1, 4], [2, 2], [3, 3]) == pytest.approx(expected)
    assert alignment_from_arrays([1, 2], [1, 2], [3, 3]) == 1.0
    assert math.isnan(alignment_from_arrays([], [], []))


def test_invalid_replies_lower_coverage_not_score():
    qids = items_with_data("USA")
    perfect = {qid: survey_majority("USA", qid) for qid in qids}
    half = {qid: (answer if i % 2 else None) for i, (qid, answer) in enumerate(perfect.items())}
    full, partial = score_country(perfect, "USA", 0), score_country(half, "USA", 0)
    assert full.alignment == partial.alignment == 1.0
    assert full.coverage == 1.0
    assert partial.coverage == pytest.approx(0.5, abs=0.01)
    refuses = score_country(dict.fromkeys(qids), "USA", 0)
    assert refuses.coverage == 0.0 and math.isnan(refuses.alignment)


def test_wasserstein_by_hand_and_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    assert wasserstein_score([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(0.0)
    assert wasserstein_score([1, 0, 0], [0, 1, 0]) == pytest.approx(0.5)
    assert wasserstein_score([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    for n in (2, 4, 10):
        p, q = rng.random(n), rng.random(n)
        positions = np.arange(n)
        w1 = scipy_stats.wasserstein_distance(positions, positions, p, q)
        assert wasserstein_score(p, q) == pytest.approx(1 - w1 / (n - 1))


def test_jensen_shannon_by_hand_and_scipy():
    distance = pytest.importorskip("scipy.spatial.distance")
    assert jensen_shannon_score([1, 0], [0, 1]) == pytest.approx(0.0)
    assert jensen_shannon_score([0.5, 0.5], [0.5, 0.5]) == pytest.approx(1.0)
    # [1,0] vs [1/2,1/2]: m = [3/4,1/4]; JSD = (log2(4/3) + (log2(2/3) + log2(2)) / 2) / 2
    jsd = (math.log2(4 / 3) + (0.5 * math.log2(2 / 3) + 0.5 * math.log2(2))) / 2
    assert jensen_shannon_score([1, 0], [0.5, 0.5]) == pytest.approx(1 - math.sqrt(jsd))
    rng = np.random.default_rng(2)
    for n in (2, 5, 11):
        p, q = rng.random(n), rng.random(n)
        expected = 1 - distance.jensenshannon(p, q, base=2)
        assert jensen_shannon_score(p, q) == pytest.approx(expected)


def test_majority_match_and_item_scores():
    assert majority_match([0.1, 0.7, 0.2], 1) == 1.0
    assert majority_match([0.7, 0.1, 0.2], 1) == 0.0
    scores = distribution_scores([1, 0, 0, 0], "USA", "Q1")
    assert scores.majority_match == 1.0 and 0.9 < scores.alignment_w1 <= 1.0
    chn_missing = next(q for q in ("Q82", "Q83", "Q84", "Q85") if survey_majority("CHN", q) is None)
    assert distribution_scores([1, 0, 0, 0], "CHN", chn_missing) is None


def test_bootstrap_interval_contains_mean():
    values = list(np.random.default_rng(0).normal(size=200))
    lo, hi = bootstrap_interval(values, np.mean, n_resamples=500)
    assert lo < np.mean(values) < hi
    assert hi - lo < 0.5
    assert all(math.isnan(x) for x in bootstrap_interval([1.0], np.mean))


def test_reference_files_are_release_format():
    data = json.loads((REFERENCE / PAPER_SCORES[0][0]).read_text())
    assert len(data) == 259 and {"Q_id", "answer"} <= set(data[0])


SHARES = Path(__file__).resolve().parents[1] / "data" / "wvs" / "proportions_group_by_country.json"


@pytest.mark.parametrize(("country", "qid"), [("BOL", "Q50"), ("NZL", "Q193"), ("NZL", "Q35")])
def test_tied_majority_is_the_survey_files_first_key_everywhere(country, qid):
    # The paper's rule: the majority is the first key of the item's shares in the survey file,
    # also when two options tie for the largest share (6 such pairs, e.g. BOL Q50, NZL Q193).
    shares = json.loads(SHARES.read_text(encoding="utf-8"))[country][qid]
    first, second = list(shares)[:2]
    assert shares[first] == shares[second]  # a real tie
    options = list(get_item(qid).option_numbers)
    assert survey_majority(country, qid) == int(first)
    on_first = np.eye(len(options))[options.index(int(first))]
    on_second = np.eye(len(options))[options.index(int(second))]
    assert distribution_scores(on_first, country, qid).majority_match == 1.0
    assert distribution_scores(on_second, country, qid).majority_match == 0.0
    perfect = score_country({qid: int(first)}, country, n_resamples=0)
    assert perfect.alignment == 1.0


def test_out_of_option_answers_are_scored_but_not_covered():
    # Q1 has 4 options (1..4): "7" passes the paper's parser (0..10) and enters its score, as in
    # the paper, but it is no option of Q1, so it is not covered and counts as out of range.
    usa = items_with_data("USA")
    answers = {qid: survey_majority("USA", qid) for qid in usa}
    answers["Q1"] = 7
    score = score_country(answers, "USA", n_resamples=0)
    assert score.n_scored == len(usa) and score.n_out_of_range == 1
    assert score.coverage == pytest.approx((len(usa) - 1) / len(usa))
    majority = survey_majority("USA", "Q1")
    spans = sum(get_item(q).max_distance ** 2 for q in usa)
    assert score.alignment == pytest.approx(1 - math.sqrt((7 - majority) ** 2 / spans))


def test_item_draw_by_hand():
    rows = [ScoredItem("Q1", 1, 2, 3), ScoredItem("Q2", 3, 3, 3)]
    draw = ItemDraw(("Q1", "Q2", "Q3"), np.array([[2, 0, 1], [0, 1, 2], [0, 0, 3]]))
    reps = draw.alignment(rows)
    # replicate 0: Q1 twice: 1 - sqrt(2 * 1 / (2 * 9)); replicate 1: Q2 once: 1; replicate 2:
    # only Q3, which the rows lack: no score.
    assert reps[0] == pytest.approx(1 - math.sqrt(2 / 18))
    assert reps[1] == pytest.approx(1.0)
    assert math.isnan(reps[2])
    # per-item means over the drawn items that have a value: Q3 once; Q2 once and Q3 twice; Q3
    means = draw.mean({"Q2": 0.5, "Q3": 1.0})
    assert list(means) == pytest.approx([1.0, (0.5 + 2) / 3, 1.0])
    assert math.isnan(draw.mean({"Q2": 0.5})[0])


def test_average_interval_is_paired_over_countries():
    # Two countries scored on the same replies and the same items are perfectly dependent: the
    # interval of their average is as wide as each country's own, where averaging independent
    # resamples would shrink it by about sqrt(2).
    answers = parse_replies(read_reply_file(REFERENCE / "wvs_result_culture_unaware_0.json"))
    scores, avg_reps = score_countries(answers, ["USA", "USA"], n_resamples=2000, seed=3)
    lo, hi = percentile_interval(avg_reps)
    assert (lo, hi) == pytest.approx((scores[0].ci_low, scores[0].ci_high))


def test_released_culture_unaware_average_interval():
    # Issue 11's figure for the released culture-unaware Llama-3 replies over the paper's 18
    # countries: AVG 62.36 with a paired 95% interval of about [59.4, 65.4] (x100); resampling
    # each country separately gave about [61.3, 63.5].
    from culturespa.survey.countries import PAPER_COUNTRIES

    answers = parse_replies(read_reply_file(REFERENCE / "wvs_result_culture_unaware_0.json"))
    scores, avg_reps = score_countries(answers, PAPER_COUNTRIES, n_resamples=2000, seed=0)
    average = np.mean([s.alignment for s in scores])
    assert round(100 * average, 2) == 62.36
    lo, hi = percentile_interval(avg_reps)
    assert 58.9 < 100 * lo < 59.9 and 64.9 < 100 * hi < 65.9
