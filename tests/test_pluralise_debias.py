"""The answer stage's `answer.debias`: fakes whose preferences are known (a strong pull to the
last listed place plus a preference among option texts that depends on the persona)."""

from __future__ import annotations

import pytest
from support.pluralise_fakes import PlaceBiasedBackend, ScriptedBackend, ShuffledReplicas

from culturespa.errors import CulturespaError
from culturespa.pluralise.answer import answer_questions
from culturespa.pluralise.collect import collect_differences
from culturespa.pluralise.questions import Question
from culturespa.pluralise.sections import AnswerSection
from culturespa.prompts.templates import system_prompt
from culturespa.survey.items import TOPIC_NAMES

QUESTIONS = [
    Question("t00-a", TOPIC_NAMES[0], "Colour?", ("Red", "Green", "Blue")),
    Question("t01-b", TOPIC_NAMES[1], "Pet?", ("Cat", "Dog", "Fish", "Bird"), first_option=0),
]
LIKED = {"Red": 2.0, "Cat": 1.5, "Green": 1.0, "Dog": 1.0}
"""Culture-unaware and Chinese preferences; the American persona likes Blue and Fish best."""


def last_place(p: int, k: int) -> float:
    return 8.0 if p == k - 1 else 0.3 * p  # much stronger than any preference


def preference(system: str, text: str) -> float:
    if system == system_prompt("aware", "USA") and text in ("Blue", "Fish"):
        return 3.0
    return LIKED.get(text, 0.0)


def answers(debias: str, backend=None, **settings) -> dict:
    backend = backend or PlaceBiasedBackend(last_place, preference)
    section = AnswerSection(debias=debias, cross_culture_thinking=False, **settings)
    records = answer_questions(backend, QUESTIONS, ["USA", "CHN"], section)
    return {(r["question_id"], r["country"]): r for r in records}


def test_without_debiasing_the_answer_follows_the_place():
    got = answers("none")
    assert {k: r["answer"] for k, r in got.items()} == {
        ("t00-a", None): 3, ("t00-a", "USA"): 3, ("t00-a", "CHN"): 3,
        ("t01-b", None): 3, ("t01-b", "USA"): 3, ("t01-b", "CHN"): 3,
    }  # fmt: skip


@pytest.mark.parametrize("debias", ["permute", "calibrate"])
def test_debiased_answers_follow_the_content(debias):
    got = answers(debias)
    assert {k: r["answer"] for k, r in got.items()} == {
        ("t00-a", None): 1, ("t00-a", "USA"): 3, ("t00-a", "CHN"): 1,  # Red, Blue, Red
        ("t01-b", None): 0, ("t01-b", "USA"): 2, ("t01-b", "CHN"): 0,  # Cat, Fish, Cat
    }  # fmt: skip
    # the distribution is the softmax of the preferences alone, in the question's own order
    unaware = got[("t00-a", None)]["probs"]
    weights = [2.718281828**2.0, 2.718281828**1.0, 1.0]
    assert unaware == pytest.approx([w / sum(weights) for w in weights], abs=1e-5)


@pytest.mark.parametrize("debias", ["permute", "calibrate"])
def test_pairs_are_kept_where_the_persona_changes_the_debiased_answer(debias):
    records = list(answers(debias).values())
    rows, _ = collect_differences(QUESTIONS, records, ["USA", "CHN"], cross_culture_thinking=False)
    assert sorted((r["question_id"], r["country"], r["answer"]) for r in rows) == [
        ("t00-a", "USA", 3),
        ("t01-b", "USA", 2),
    ]
    plain = list(answers("none").values())
    assert collect_differences(QUESTIONS, plain, ["USA", "CHN"], False)[0] == []


def test_permuted_orders_list_every_option_in_every_place_numbered_by_place():
    backend = PlaceBiasedBackend(last_place, preference)
    answers("permute", backend)
    colour = [p for p in backend.prompts if "Colour?" in p]
    assert len(colour) == 3 * 3  # three orders for each of three system prompts
    assert {p.split("#Options: ")[1].split("\n")[0] for p in colour} == {
        "1.Red 2.Green 3.Blue",
        "1.Green 2.Blue 3.Red",
        "1.Blue 2.Red 3.Green",
    }


def test_calibration_scores_each_content_free_question_once():
    backend = PlaceBiasedBackend(last_place, preference)
    answers("calibrate", backend, chunk_size=2)
    content_free = [p for p in backend.prompts if "#Question: N/A" in p]
    # one per system prompt (unaware, USA, CHN) and numbering (1..3, 0..3), whatever the chunks
    assert len(content_free) == 3 * 2
    assert sum("0.N/A 1.N/A 2.N/A 3.N/A" in p for p in content_free) == 3


def test_a_tie_once_the_place_is_out_leaves_no_answer():
    backend = PlaceBiasedBackend(last_place, lambda system, text: 0.0)
    got = answers("permute", backend)
    assert all(r["answer"] is None for r in got.values())


def test_a_killed_calibrated_run_resumes_to_the_same_records(tmp_path):
    section = AnswerSection(debias="calibrate", cross_culture_thinking=False, chunk_size=2)
    whole = answer_questions(ScriptedBackend(), QUESTIONS, ["USA"], section)
    log = tmp_path / "answers.log.jsonl"
    answer_questions(ScriptedBackend(), QUESTIONS, ["USA"], section, log_path=log)
    lines = log.read_text().splitlines()
    assert len(lines) == 4 + 4  # 2 system prompts x 2 numberings content-free, then 4 questions
    log.write_text("\n".join(lines[:5]) + "\n")  # killed in the first chunk of questions
    again = ScriptedBackend()
    resumed = answer_questions(again, QUESTIONS, ["USA"], section, log_path=log)
    assert resumed == whole and again.calls == [2, 2]  # only the two chunks of questions


@pytest.mark.parametrize("debias", ["permute", "calibrate"])
def test_replicas_finishing_in_any_order_give_the_records_of_one_process(debias):
    section = AnswerSection(debias=debias, cross_culture_thinking=True, chunk_size=3)
    one = answer_questions(ScriptedBackend(), QUESTIONS, ["USA", "CHN"], section)
    spread = answer_questions(ShuffledReplicas(3), QUESTIONS, ["USA", "CHN"], section)
    assert spread == one and len(one) == 2 * 5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"debias": "shuffle"}, 'answer.debias = "shuffle": expected one of none, permute'),
        ({"debias": "permute", "method": "sample"}, "debiased answers need method loglik"),
    ],
)
def test_bad_debias_values_are_one_line_errors(values, message):
    with pytest.raises(CulturespaError, match=message.replace("(", r"\(")):
        AnswerSection(**values)


@pytest.mark.parametrize("backend", ["hf", "vllm", "openai"])
def test_every_backend_with_exact_option_scores_takes_debias(tmp_path, backend):
    from culturespa.pluralise.config import config_from_dict

    model = {"name": "m", "backend": backend}
    if backend == "openai":
        model["tokenizer"] = "m"  # exact scores; without it, the config is refused
    config = config_from_dict(
        {"model": model, "output_dir": str(tmp_path), "answer": {"debias": "permute"}}
    )
    assert config.answer.debias == "permute"


def _naive_probs(backend, conversation, labels) -> list[float]:
    """softmax over options of log p(label, end of turn | prompt), one full forward per option."""
    import torch

    prompt = backend.chat.encode_prompts([conversation])[0]
    scores = []
    for label in labels:
        answer = backend.chat.label_tokens(label)
        with torch.inference_mode():
            logits = backend.model(torch.tensor([prompt + answer])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        scores.append(sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(answer)))
    return torch.softmax(torch.tensor(scores), dim=0).tolist()


@pytest.mark.parametrize("batch_size", [2, 32])
def test_the_engine_answers_as_one_forward_per_option_on_a_tiny_model(tiny_model_dir, batch_size):
    """The builder's loglik answers through the shared engine (several system prompts per batch,
    or one batch) equal the naive loop's: the paper's rule, argmax of the option distribution."""
    pytest.importorskip("torch")
    from culturespa.inference.backends.hf import HFBackend
    from culturespa.pluralise.answer import plan_jobs

    backend = HFBackend(str(tiny_model_dir), batch_size=batch_size, device="cpu")
    section = AnswerSection(cross_culture_thinking=True)
    records = answer_questions(backend, QUESTIONS, ["USA", "CHN"], section)
    jobs = plan_jobs(QUESTIONS, ["USA", "CHN"], cross_culture_thinking=True)
    assert [r["id"] for r in records] == [j.id for j in jobs]
    for job, record in zip(jobs, records):
        labels = [str(n) for n in job.question.option_numbers]
        want = _naive_probs(backend, job.conversation(), labels)
        assert record["probs"] == pytest.approx(want, abs=1e-5)
        top = sorted(want, reverse=True)
        if top[0] - top[1] > 1e-4:
            assert record["answer"] == job.question.option_numbers[want.index(top[0])]


@pytest.mark.slow
@pytest.mark.parametrize("debias", ["permute", "calibrate"])
def test_build_data_with_debiased_answers_on_the_tiny_model(tmp_path, tiny_model_dir, debias):
    import json
    from pathlib import Path

    import yaml

    from culturespa.cli.main import main

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "recipes" / "data" / "tiny.yaml").read_text())
    out = tmp_path / "run"
    data.update(
        output_dir=str(out),
        countries=["USA", "CHN"],
        questions_limit_per_topic=1,
        answer={"debias": debias, "cross_culture_thinking": False, "chunk_size": 16},
        build={"variants": ["culture_joint", "culture_specific"]},
    )
    data["model"]["name"] = str(tiny_model_dir)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data))
    assert main(["build-data", "--config", str(config)]) == 0
    questions = {
        q["question_id"]: q
        for q in map(json.loads, (out / "questions" / "filtered.jsonl").read_text().splitlines())
    }
    answers = [json.loads(x) for x in (out / "answers" / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == len(questions) * 3  # culture-unaware, USA, CHN
    for record in answers:
        q = questions[record["question_id"]]
        numbers = list(
            range(q.get("first_option", 1), q.get("first_option", 1) + len(q["options"]))
        )
        assert len(record["probs"]) == len(numbers) and sum(record["probs"]) == pytest.approx(
            1, abs=1e-4
        )
        best = max(record["probs"])
        if record["answer"] is not None:
            assert record["probs"][numbers.index(record["answer"])] == best
    table = {(a["question_id"], a["country"]): a["answer"] for a in answers}
    for row in map(json.loads, (out / "collected" / "collected.jsonl").read_text().splitlines()):
        assert row["answer"] == table[(row["question_id"], row["country"])]
        assert row["answer"] != table[(row["question_id"], None)] is not None
    assert json.loads((out / "manifest.json").read_text())["answer"]["debias"] == debias
    data["answer"]["debias"] = "none"  # a folder built with another value is refused
    config.write_text(yaml.safe_dump(data))
    assert main(["build-data", "--config", str(config)]) == 2
