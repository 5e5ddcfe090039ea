"""Stage 1: self-instruct requests, JSON parsing, bounded retries and resumption."""

from __future__ import annotations

import json
import random

import pytest
from support.pluralise_fakes import ScriptedBackend, ShuffledReplicas

from culturespa.errors import CulturespaError
from culturespa.pluralise.generate import (
    RESPONSE_PREFIX,
    build_request,
    generate_questions,
    parse_generated,
    wvs_examples_by_topic,
)
from culturespa.pluralise.sections import GenerateSection
from culturespa.survey.items import TOPIC_NAMES

TOPICS = list(TOPIC_NAMES[:3])


def per_topic(n: int, **settings) -> GenerateSection:
    """The config's generate section asking for n questions per topic."""
    return GenerateSection(questions_per_topic=n, **settings)


def test_parse_generated():
    good = 'Sure:\n{"question": "How often?", "options": ["Often", 2]}\nThanks'
    assert parse_generated(good) == {"question": "How often?", "options": ["Often", "2"]}
    for bad in (
        "no json",
        '{"question": "Q"}',
        '{"question": "Q", "options": ["only"]}',
        '{"question": "", "options": ["a", "b"]}',
        '{"question": "Q", "options": [["a"], "b"]}',
    ):
        assert parse_generated(bad) is None


def test_parse_generated_takes_the_first_usable_object():
    # a small model's habits: an unusable object first, a second one, prose, other key names
    reply = (
        '{"question": "Q1?"}\n{"question": "How often?", "choices": ["Often", "Never"]}\n'
        '{"question": "Later?", "options": ["a", "b"]} and some more {broken'
    )
    assert parse_generated(reply) == {"question": "How often?", "options": ["Often", "Never"]}
    assert parse_generated('{"question": "Q?", "answers": ["Yes", "No"]') is None  # unclosed


def test_request_opens_the_reply_with_the_prefix():
    pool = wvs_examples_by_topic()[TOPICS[0]]
    chat = build_request(TOPICS[0], pool, [], random.Random(0))
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert chat[-1]["content"] == RESPONSE_PREFIX
    bare = build_request(TOPICS[0], pool, [], random.Random(0), response_prefix="")
    assert [m["role"] for m in bare] == ["user"]
    assert bare[0] == chat[0]


def test_prefix_and_stop_reach_the_backend_and_the_parser(tmp_path):
    backend = ScriptedBackend(valid_share=1.0)
    seen = []
    original = backend.generate

    def spy(conversations, settings):
        seen.append((conversations[0][-1], settings.stop))
        return original(conversations, settings)

    backend.generate = spy
    generate_questions(
        backend,
        tmp_path,
        TOPICS[:1],
        GenerateSection(questions_per_topic=2, stop=["}"]),
        progress=False,
    )
    assert seen[0] == ({"role": "assistant", "content": RESPONSE_PREFIX}, ("}",))
    rows = [json.loads(line) for line in (tmp_path / "generated.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["question"].startswith("How much") for r in rows)


def test_request_shows_five_examples_at_most_three_from_wvs():
    pool = wvs_examples_by_topic()[TOPICS[0]]
    generated = [{"question": f"Gen {i}?", "options": ["a", "b"]} for i in range(10)]
    content = build_request(TOPICS[0], pool, generated, random.Random(0))[0]["content"]
    lines = [json.loads(line) for line in content.splitlines() if line.startswith('{"question"')]
    assert len(lines) == 5
    assert sum(line["question"].startswith("Gen ") for line in lines) == 2
    early = build_request(TOPICS[0], pool, [], random.Random(0))[0]["content"]
    assert sum(line.startswith('{"question"') for line in early.splitlines()) == 5


def test_generation_counts_and_batching(tmp_path):
    backend = ScriptedBackend(valid_share=0.7)
    summary = generate_questions(
        backend, tmp_path, TOPICS, per_topic(5, requests_per_round=4), progress=False
    )
    rows = [json.loads(line) for line in (tmp_path / "generated.jsonl").read_text().splitlines()]
    assert summary["written"] == len(rows) == 15
    assert [r["topic"] for r in rows] == [t for t in TOPICS for _ in range(5)]
    assert max(backend.calls) <= 12 and len(backend.calls) < 15  # one call per round, all topics


def test_resumed_generation_is_identical(tmp_path):
    generate_questions(
        ScriptedBackend(0.6),
        tmp_path / "a",
        TOPICS,
        per_topic(6, requests_per_round=2),
        progress=False,
    )
    # an interrupted run: stop after two rounds by capping the tries, then resume
    with pytest.raises(CulturespaError):
        generate_questions(
            ScriptedBackend(0.6),
            tmp_path / "b",
            TOPICS,
            per_topic(6, requests_per_round=2, max_attempts_per_question=1),
            progress=False,
        )
    log = tmp_path / "b" / "generation.log.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:5]) + '{"torn')
    generate_questions(
        ScriptedBackend(0.6),
        tmp_path / "b",
        TOPICS,
        per_topic(6, requests_per_round=2),
        progress=False,
    )
    assert (tmp_path / "a" / "generated.jsonl").read_text() == (
        tmp_path / "b" / "generated.jsonl"
    ).read_text()


def test_model_without_json_stops_with_a_clear_message(tmp_path):
    backend = ScriptedBackend(valid_share=0.0)
    with pytest.raises(CulturespaError, match=r"too few usable JSON questions after 2 tries"):
        generate_questions(
            backend, tmp_path, TOPICS, per_topic(3, max_attempts_per_question=2), progress=False
        )
    assert sum(backend.calls) == 3 * 3 * 2  # bounded: N x max_attempts requests per topic
    assert (tmp_path / "generated.jsonl").read_text() == ""


def test_partial_success_keeps_valid_questions(tmp_path):
    with pytest.raises(CulturespaError, match="valid ones are kept"):
        generate_questions(
            ScriptedBackend(0.3),
            tmp_path,
            TOPICS,
            per_topic(4, max_attempts_per_question=1),
            progress=False,
        )
    kept = (tmp_path / "generated.jsonl").read_text().splitlines()
    assert 0 < len(kept) < 12


def test_replicas_split_each_round_into_topic_groups(tmp_path):
    """On 2 replicas a round is 2 calls, one per topic group (topic index mod 2), each with the
    round's seed: the questions are those of one run per group, whatever order the calls end in."""
    from culturespa.pluralise.questions import topic_index

    topics = list(TOPIC_NAMES[:4])
    replicas = ShuffledReplicas(2, valid_share=0.6)
    generate_questions(replicas, tmp_path / "ray", topics, per_topic(3), progress=False)
    assert replicas.backends[0].calls and replicas.backends[1].calls  # both replicas worked
    groups = [[t for t in topics if topic_index(t) % 2 == g] for g in (0, 1)]
    for g, group in enumerate(groups):
        generate_questions(
            ScriptedBackend(0.6), tmp_path / f"group{g}", group, per_topic(3), progress=False
        )
    ray = read_log(tmp_path / "ray")
    assert ray and all(r["groups"] == 2 for r in ray)
    generated = read_generated(tmp_path / "ray")
    for g, group in enumerate(groups):
        assert [same_round(r) for r in ray if r["topic"] in group] == [
            same_round(r) for r in read_log(tmp_path / f"group{g}")
        ]
        alone = read_generated(tmp_path / f"group{g}")
        assert [q for q in generated if q["topic"] in group] == alone
    # a finished log is read by any run; one with rounds left is resumed in its groups only
    backend = ScriptedBackend()
    generate_questions(backend, tmp_path / "ray", topics, per_topic(3), progress=False)
    assert backend.calls == []
    with pytest.raises(CulturespaError, match=r"2 topic group\(s\) per round and this run has 1"):
        generate_questions(backend, tmp_path / "ray", topics, per_topic(4), progress=False)


def test_one_replica_is_the_run_without_ray(tmp_path):
    plain, one = tmp_path / "plain", tmp_path / "one"
    generate_questions(ScriptedBackend(0.6), plain, TOPICS, per_topic(3), progress=False)
    generate_questions(ShuffledReplicas(1, 0.6), one, TOPICS, per_topic(3), progress=False)
    for name in ("generation.log.jsonl", "generated.jsonl"):
        assert (plain / name).read_bytes() == (one / name).read_bytes()


def read_log(folder) -> list[dict]:
    """The generation log's records in (round, topic, slot) order."""
    records = [json.loads(x) for x in (folder / "generation.log.jsonl").read_text().splitlines()]
    return sorted(records, key=lambda r: (r["round"], r["id"]))


def same_round(record: dict) -> dict:
    """A record without what depends on the other group's share of its round."""
    return {k: v for k, v in record.items() if k not in ("groups", "unit_size")}


def read_generated(folder) -> list[dict]:
    return [json.loads(x) for x in (folder / "generated.jsonl").read_text().splitlines()]
