"""Stages 3 and 4: the answer API (both methods) and the collection of differing answers."""

from __future__ import annotations

import pytest
from support.pluralise_fakes import ScriptedBackend, ShuffledReplicas

from culturespa.pluralise.answer import answer_questions, plan_jobs
from culturespa.pluralise.collect import collect_differences
from culturespa.pluralise.questions import Question
from culturespa.pluralise.sections import AnswerSection
from culturespa.prompts.templates import SYSTEM_UNAWARE, system_prompt
from culturespa.survey.items import TOPIC_NAMES

QUESTIONS = [
    Question("t00-a", TOPIC_NAMES[0], "Q a?", ("Yes", "No", "Maybe")),
    Question("t01-b", TOPIC_NAMES[1], "Q b?", tuple(str(n) for n in range(11)), first_option=0),
]


class Replies(ScriptedBackend):
    def generate(self, conversations, settings):
        self.calls.append(len(conversations))
        return ["2", "The answer is 12", "nothing", "1.Yes", "0"] * len(conversations)


def test_jobs_use_the_papers_prompts():
    jobs = plan_jobs(QUESTIONS[:1], ["USA", "CHN"], cross_culture_thinking=True)
    assert [(j.kind, j.country) for j in jobs] == [
        ("unaware", None),
        ("aware", "USA"),
        ("aware", "CHN"),
        ("cross_culture_thinking", "USA"),
        ("cross_culture_thinking", "CHN"),
    ]
    assert jobs[0].conversation()[0]["content"] == SYSTEM_UNAWARE
    assert jobs[3].conversation()[0]["content"] == system_prompt("cross_culture_thinking", "USA")
    assert "#Options: 1.Yes 2.No 3.Maybe\n" in jobs[1].conversation()[1]["content"]


def test_loglik_gives_argmax_and_distribution():
    backend = ScriptedBackend()
    records = answer_questions(
        backend,
        QUESTIONS,
        ["USA"],
        AnswerSection(method="loglik", cross_culture_thinking=False, chunk_size=3),
    )
    assert backend.calls == [3, 1]  # one backend call per chunk
    for record in records:
        assert sum(record["probs"]) == pytest.approx(1.0, abs=1e-5)
        options = 3 if record["question_id"] == "t00-a" else 11
        assert len(record["probs"]) == options
        best = record["probs"].index(max(record["probs"]))
        assert record["answer"] == best + (1 if options == 3 else 0)


def test_sampling_parses_the_first_integer_and_checks_the_range():
    records = answer_questions(
        Replies(),
        QUESTIONS[:1],
        ["USA", "CHN", "NGA", "DEU"],
        AnswerSection(method="sample", cross_culture_thinking=False),
    )
    assert [r["answer"] for r in records] == [2, None, None, 1, None]  # 12 and 0 are out of range


def test_replicas_finishing_out_of_order_give_the_same_records(tmp_path):
    """Chunks that come back last first (as from replicas on Ray) are logged as they come and
    returned in job order: the records of one backend in this process."""
    import json

    settings = AnswerSection(chunk_size=2)
    countries = ["USA", "CHN"]
    plain = answer_questions(
        ScriptedBackend(), QUESTIONS, countries, settings, log_path=tmp_path / "a.log"
    )
    replicas = ShuffledReplicas(2)
    spread = answer_questions(replicas, QUESTIONS, countries, settings, log_path=tmp_path / "b.log")
    assert spread == plain and len(plain) == 2 * (1 + 2 * 2)
    assert [len(b.calls) for b in replicas.backends] == [3, 2]  # 5 chunks, alternating
    units = [json.loads(x)["unit"] for x in (tmp_path / "b.log").read_text().splitlines()]
    assert units == sorted(units, reverse=True)  # logged in the order they finished
    again = ShuffledReplicas(2)  # a rerun finds every chunk in the log
    assert (
        answer_questions(again, QUESTIONS, countries, settings, log_path=tmp_path / "b.log")
        == plain
    )
    assert all(b.calls == [] for b in again.backends)


def test_collect_keeps_differing_valid_answers():
    answers = [
        {"question_id": "t00-a", "kind": "unaware", "country": None, "answer": 1},
        {"question_id": "t00-a", "kind": "aware", "country": "USA", "answer": 1},
        {"question_id": "t00-a", "kind": "aware", "country": "CHN", "answer": 3},
        {
            "question_id": "t00-a",
            "kind": "cross_culture_thinking",
            "country": "USA",
            "answer": None,
        },
        {"question_id": "t00-a", "kind": "cross_culture_thinking", "country": "CHN", "answer": 2},
    ]
    rows, report = collect_differences(
        QUESTIONS[:1], answers, ["USA", "CHN"], cross_culture_thinking=True
    )
    assert [(r["variant"], r["country"], r["answer"]) for r in rows] == [
        ("culture", "CHN", 3),
        ("cross_culture_thinking", "CHN", 2),
    ]
    assert report["culture"]["country"]["CHN"]["share"] == 1.0
    assert report["culture"]["country"]["USA"]["share"] == 0.0
    assert report["cross_culture_thinking"]["country"]["USA"]["invalid"] == 1
    assert report["culture"]["topic"][TOPIC_NAMES[0]] == {"compared": 2, "differs": 1, "share": 0.5}
