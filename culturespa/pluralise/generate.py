"""Stage 1: self-instruct generation of new survey questions, N per WVS topic.

Each request shows 5 example questions of the topic (up to 3 real WVS items, the rest drawn from
questions already generated for it, WVS items again while there are too few) and asks for one new
question with options as JSON; the reply is opened with `{"question": "` for the model and
ends at the first closing brace. Work goes in rounds: a round sends, for every unfinished topic,
up to `requests_per_round` requests in one batched call and appends all replies as one unit of
the log. Replies that are not usable JSON are logged as invalid and retried in later rounds; a
topic stops after `questions_per_topic * max_attempts_per_question` requests.

On N model replicas (`culturespa.inference.replicas`, the config's `ray` section) a round is cut
into N topic groups (topic index mod N), one batched call each, all with the round's seed; a
sampled reply depends on the batch it was drawn in, so the questions depend on N (with N = 1 they
are those of a run without Ray) and a log is resumed with the N it was started with.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from culturespa.errors import CulturespaError
from culturespa.inference.backends.base import Backend, SamplingSettings
from culturespa.inference.replicas import Replicas, as_replicas
from culturespa.pluralise.questions import topic_index
from culturespa.pluralise.sections import GenerateSection
from culturespa.pluralise.store import UnitLog, write_jsonl_atomic
from culturespa.run_files import GENERATED_QUESTIONS
from culturespa.survey.items import scored_items

logger = logging.getLogger(__name__)

GENERATION_PROMPT = (
    "You are helping to write a survey in the style of the World Values Survey.\n"
    "Topic: {topic}\n"
    "Here are example questions on this topic, each with its answer options, one JSON object "
    "per line:\n{examples}\n"
    "Write one new question on the same topic that differs from every example and asks about "
    "values, attitudes or behaviour that vary across cultures. Give between 2 and 11 answer "
    "options. Reply with a single JSON object and nothing else, in the form "
    '{{"question": "...", "options": ["...", "..."]}}.'
)
"""Our wording of the self-instruct request (the paper's own prompt is not reused)."""

RESPONSE_PREFIX = GenerateSection().response_prefix
"""The start of the reply, written for the model (`generate.response_prefix`): it then only
continues a JSON object. Small models that rarely open a JSON object on their own (SmolLM2-135M:
2 usable of 26) mostly do then. Its stop string (`generate.stop`, a closing brace) ends the reply
once the object is complete: flat objects only, as asked; a nested one is retried like any other."""

_OPTION_KEYS = ("options", "choices", "answers")
GENERATION_LOG = "generation.log.jsonl"


def _json_objects(text: str):
    """Every JSON object that starts at some '{' of `text`, in order of position."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        yield obj
        start = text.find("{", end)


def parse_generated(reply: str) -> dict | None:
    """{"question", "options"} from the first usable JSON object of a reply, or None.

    Lenient where small models are: text around the object, several objects (the first usable
    one counts), "choices"/"answers" for "options", numbers as options.
    """
    for obj in _json_objects(reply or ""):
        parsed = _question_from(obj)
        if parsed is not None:
            return parsed
    return None


def _question_from(obj) -> dict | None:
    if not isinstance(obj, dict):
        return None
    question = obj.get("question")
    options = next((obj[k] for k in _OPTION_KEYS if k in obj), None)
    if not isinstance(question, str) or not question.strip():
        return None
    if not isinstance(options, list) or len(options) < 2:
        return None
    if any(isinstance(o, bool) or not isinstance(o, (str, int, float)) for o in options):
        return None
    options = [str(o).strip() for o in options]
    if any(not o for o in options):
        return None
    return {"question": question.strip(), "options": options}


def wvs_examples_by_topic() -> dict[str, list[dict]]:
    """The scored WVS items of each topic as {"question", "options"} examples."""
    pools: dict[str, list[dict]] = {}
    for item in scored_items().values():
        if item.options:
            pools.setdefault(item.topic, []).append(
                {"question": item.question, "options": list(item.options)}
            )
    return pools


def build_request(
    topic: str,
    wvs_pool: list[dict],
    generated: list[dict],
    rng: random.Random,
    n_examples: int = 5,
    max_wvs: int = 3,
    response_prefix: str = RESPONSE_PREFIX,
) -> list[dict[str, str]]:
    """The chat for one request: up to `max_wvs` WVS items, then generated ones, 5 in all;
    the reply opened with `response_prefix` (none if empty)."""
    n_gen = min(len(generated), n_examples - min(max_wvs, len(wvs_pool)))
    chosen = rng.sample(generated, n_gen) if n_gen > 0 else []
    n_wvs = min(len(wvs_pool), n_examples - len(chosen))
    examples = rng.sample(wvs_pool, n_wvs) + chosen
    rng.shuffle(examples)
    lines = "\n".join(
        json.dumps({"question": e["question"], "options": e["options"]}, ensure_ascii=False)
        for e in examples
    )
    chat = [{"role": "user", "content": GENERATION_PROMPT.format(topic=topic, examples=lines)}]
    if response_prefix:
        chat.append({"role": "assistant", "content": response_prefix})
    return chat


def generation_state(records: list[dict]) -> tuple[dict[str, list[dict]], dict[str, int], int]:
    """Valid questions per topic (in log order), requests per topic, and the next round."""
    ordered = sorted(records, key=lambda r: (r["round"], topic_index(r["topic"]), r["slot"]))
    valid: dict[str, list[dict]] = {}
    tries: dict[str, int] = {}
    next_round = 0
    for r in ordered:
        tries[r["topic"]] = tries.get(r["topic"], 0) + 1
        if r["valid"]:
            valid.setdefault(r["topic"], []).append(r)
        next_round = max(next_round, r["round"] + 1)
    return valid, tries, next_round


def generate_unit(backend: Backend, unit: tuple) -> list[str]:
    """One topic group of a round as replicas run it: `unit` is (requests, sampling settings)."""
    requests, sampling = unit
    return backend.generate(requests, sampling)


@dataclass
class _GenerationState:
    """What the log holds so far: valid questions and tries per topic, the next round."""

    valid: dict[str, list[dict]]
    tries: dict[str, int]
    round_no: int
    pools: dict[str, list]


def _round_requests(
    todo: list[str], state: _GenerationState, settings: GenerateSection, seed: int
) -> tuple[list[list[dict]], list[tuple[str, int]]]:
    """One round's prompts for the topics still short of questions, seeded per topic and
    round, and the (topic, slot) of each."""
    requests, slots = [], []
    cap = settings.questions_per_topic * settings.max_attempts_per_question
    for t in todo:
        rng = random.Random(f"{seed}:{t}:{state.round_no}")
        need = settings.questions_per_topic - len(state.valid.get(t, []))
        for s in range(min(settings.requests_per_round, need, cap - state.tries.get(t, 0))):
            requests.append(
                build_request(
                    t, state.pools.get(t, []), state.valid.get(t, []), rng, settings.n_examples,
                    settings.max_wvs_examples, settings.response_prefix,
                )
            )  # fmt: skip
            slots.append((t, s))
    return requests, slots


def _round_replies(
    replicas: Replicas, requests: list, slots: list[tuple[str, int]], sampling: SamplingSettings,
    prefix: str,
) -> list[str]:  # fmt: skip
    """The replies of one round, each topic's requests on the replica group of its topic."""
    members: dict[int, list[int]] = {}
    for i, (t, _) in enumerate(slots):
        members.setdefault(topic_index(t) % replicas.size, []).append(i)
    parts = [members[g] for g in sorted(members)]
    units = [([requests[i] for i in part], sampling) for part in parts]
    replies = [""] * len(requests)
    for position, texts in replicas.map_unordered(generate_unit, units):
        for i, text in zip(parts[position], texts):
            replies[i] = prefix + text
    return replies


def _round_records(
    slots: list[tuple[str, int]], replies: list[str], round_no: int, groups: int
) -> list[dict]:
    """The log records of one round: the parsed question, or the (cut) reply when invalid."""
    unit = []
    for (t, s), reply in zip(slots, replies):
        parsed = parse_generated(reply)
        record = {
            "id": f"{topic_index(t):02d}:{round_no:06d}:{s:03d}",
            "topic": t,
            "round": round_no,
            "slot": s,
            "valid": parsed is not None,
        }
        if groups > 1:
            record["groups"] = groups
        if parsed:
            record.update(parsed)
        else:
            record["reply"] = reply[:500]
        unit.append(record)
    return unit


def _check_enough(
    log: UnitLog, state: _GenerationState, topics: list[str], settings: GenerateSection
) -> None:
    """Too few usable questions for a topic after every try: one line naming one, and where
    the valid ones are kept."""
    per_topic = settings.questions_per_topic
    short = [t for t in topics if len(state.valid.get(t, [])) < per_topic]
    if not short:
        return
    example = next((r.get("reply", "") for r in log.records.values() if not r["valid"]), "")
    raise CulturespaError(
        f"the model gave too few usable JSON questions after {settings.max_attempts_per_question} "
        f"tries per question for {len(short)} topic(s) (e.g. {short[0]!r}: "
        f"{len(state.valid.get(short[0], []))} of {per_topic}); the valid ones are kept in "
        f"{log.path}; a typical invalid reply: {example[:120]!r}"
    )


def generate_questions(
    backend: Backend | Replicas,
    out_dir: Path,
    topics: list[str],
    settings: GenerateSection | None = None,
    *,
    seed: int = 42,
    progress: bool = True,
) -> dict:
    """Run (or resume) generation and write `generated.jsonl`.

    `settings` is the config's `generate` section (its defaults when None); `backend` a backend
    or model replicas."""
    from tqdm.auto import tqdm

    settings = settings or GenerateSection()
    per_topic = settings.questions_per_topic
    replicas = as_replicas(backend)
    log = UnitLog(out_dir / GENERATION_LOG)
    made = {r.get("groups", 1) for r in log.records.values()} - {replicas.size}
    cap = per_topic * settings.max_attempts_per_question
    state = _GenerationState(*generation_state(list(log.records.values())), wvs_examples_by_topic())
    have = sum(min(len(state.valid.get(t, [])), per_topic) for t in topics)
    bar = tqdm(total=per_topic * len(topics), initial=have, unit="q", desc="generate",
               disable=not progress)  # fmt: skip
    while True:
        todo = [
            t
            for t in topics
            if len(state.valid.get(t, [])) < per_topic and state.tries.get(t, 0) < cap
        ]
        if not todo:
            break
        if made:  # more rounds to draw, in other groups than the log's: other questions
            raise CulturespaError(
                f"{log.path} was generated in {min(made)} topic group(s) per round and this run "
                f"has {replicas.size} (ray.replicas; 1 without ray): resume it with ray.replicas: "
                f"{min(made)}, or delete the log to start the questions again"
            )
        requests, slots = _round_requests(todo, state, settings, seed)
        sampling = SamplingSettings(
            settings.max_new_tokens, settings.temperature, settings.top_p,
            seed * 1_000_003 + state.round_no, tuple(settings.stop),
        )  # fmt: skip
        replies = _round_replies(replicas, requests, slots, sampling, settings.response_prefix)
        unit = _round_records(slots, replies, state.round_no, replicas.size)
        log.append_unit(state.round_no, unit)
        for record in unit:
            state.tries[record["topic"]] = state.tries.get(record["topic"], 0) + 1
            if record["valid"]:
                state.valid.setdefault(record["topic"], []).append(record)
                if len(state.valid[record["topic"]]) <= per_topic:
                    bar.update(1)
        state.round_no += 1
    bar.close()
    summary = {
        "requests": sum(state.tries.get(t, 0) for t in topics),
        "valid": sum(len(state.valid.get(t, [])) for t in topics),
        "per_topic": {t: min(len(state.valid.get(t, [])), per_topic) for t in topics},
        "written": finalise_generation(out_dir, topics, per_topic),
    }
    _check_enough(log, state, topics, settings)
    return summary


def finalise_generation(out_dir: Path, topics: list[str], questions_per_topic: int) -> int:
    """Write the generation log's valid questions as `generated.jsonl` (release format), the
    first N per topic."""
    valid, _, _ = generation_state(list(UnitLog(out_dir / GENERATION_LOG).records.values()))
    rows = []
    for t in topics:
        for r in valid.get(t, [])[:questions_per_topic]:
            rows.append({"topic": t, "question": r["question"], "options": r["options"]})
    return write_jsonl_atomic(out_dir / GENERATED_QUESTIONS, rows)
