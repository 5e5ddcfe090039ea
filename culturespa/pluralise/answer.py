"""Stage 3: answer every kept question culture-unaware once and, per country, culture-aware and
with cross-culture thinking (CCT), with the paper's system prompts and plain user message.

Two methods behind one call, `answer_questions(backend, questions, countries, settings)` (settings:
the config's `answer` section, whose `method` picks one):

- `loglik` (default): one scoring pass per batch gives log p of every option number (plus the end
  of turn); the answer is the argmax and the softmax over options is kept as a distribution.
- `sample`: the paper's way: sample a reply (temperature 0.6, top_p 0.9) and take the first
  integer; a reply without a valid option number gives no answer.

Work is cut into fixed chunks of prompts (`chunk_size`) in a deterministic order; a chunk is one
backend call and one unit of the append-only log. The chunks run on the backend of this process or
on model replicas on Ray (`culturespa.inference.replicas`); this process appends each finished
chunk to the log, in the order they finish, and writes `answers.jsonl` in job order, so the files
do not depend on where or in which order the chunks ran.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from culturespa.errors import CulturespaError
from culturespa.inference.backends.base import Backend, SamplingSettings
from culturespa.inference.replicas import Replicas, as_replicas
from culturespa.pluralise.config import AnswerSection
from culturespa.pluralise.questions import Question
from culturespa.pluralise.store import UnitLog, write_jsonl_atomic
from culturespa.prompts.templates import system_prompt
from culturespa.scoring.answers import parse_answer
from culturespa.scoring.distributions import softmax

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("loglik", "sample")
KINDS: dict[str, str] = {
    "unaware": "unaware",
    "aware": "aware",
    "cross_culture_thinking": "cross_culture_thinking",
}
"""Answer kinds and the system prompt kind of `culturespa.prompts.templates.system_prompt` each uses."""


@dataclass(frozen=True)
class Job:
    """One prompt: a question asked with one system prompt (for one country or none)."""

    question: Question
    kind: str
    country: str | None

    @property
    def id(self) -> str:
        return f"{self.question.question_id}|{self.kind}|{self.country or '-'}"

    def conversation(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": system_prompt(KINDS[self.kind], self.country)},
            {"role": "user", "content": self.question.user_message()},
        ]


def plan_jobs(
    questions: Sequence[Question], countries: Sequence[str], cross_culture_thinking: bool = True
) -> list[Job]:
    """Every prompt of the stage in a fixed order, grouped by system prompt: all questions
    culture-unaware, then all culture-aware for each country, then all CCT for each country.

    Grouping by system prompt lets a batch of prompts share it (and the instruction after it),
    which the transformers backend then runs once per batch (`culturespa.inference.option_scoring`).
    """
    jobs = [Job(q, "unaware", None) for q in questions]
    kinds = ("aware", "cross_culture_thinking") if cross_culture_thinking else ("aware",)
    for kind in kinds:
        for c in countries:
            jobs.extend(Job(q, kind, c) for q in questions)
    return jobs


def answer_chunk(
    backend: Backend,
    jobs: Sequence[Job],
    method: str,
    settings: SamplingSettings | None = None,
) -> list[dict]:
    """Answer a batch of prompts with one backend call; one record per prompt."""
    conversations = [job.conversation() for job in jobs]
    records = []
    if method == "loglik":
        labels = [[str(n) for n in job.question.option_numbers] for job in jobs]
        scores = backend.option_logprobs(conversations, labels)
        for job, row in zip(jobs, scores):
            probs = [float(p) for p in softmax(row)]
            best = max(range(len(probs)), key=lambda i: (probs[i], -i))
            records.append(
                {
                    "id": job.id,
                    "question_id": job.question.question_id,
                    "kind": job.kind,
                    "country": job.country,
                    "answer": job.question.option_numbers[best],
                    "probs": [round(p, 6) for p in probs],
                }
            )
    elif method == "sample":
        if settings is None:
            raise ValueError("sampling needs settings")
        replies = backend.generate(conversations, settings)
        for job, reply in zip(jobs, replies):
            number = parse_answer(reply)
            if number not in job.question.option_numbers:
                number = None
            records.append(
                {
                    "id": job.id,
                    "question_id": job.question.question_id,
                    "kind": job.kind,
                    "country": job.country,
                    "answer": number,
                    "reply": reply[:200],
                }
            )
    else:
        raise CulturespaError(f"unknown answer method {method!r}; use one of {', '.join(METHODS)}")
    return records


def answer_unit(backend: Backend, unit: tuple) -> list[dict]:
    """One unit of work as replicas run it: `unit` is (jobs, method, sampling settings)."""
    return answer_chunk(backend, *unit)


def answer_questions(
    backend: Backend | Replicas,
    questions: Sequence[Question],
    countries: Sequence[str],
    settings: AnswerSection | None = None,
    *,
    seed: int = 42,
    log_path: str | Path | None = None,
    progress: bool = False,
) -> list[dict]:
    """Answer questions for countries; the Python API of the stage (`settings`: the config's
    `answer` section, its defaults when None; `backend`: a backend, or model replicas).

    With `log_path`, finished chunks are appended there and skipped when the call is repeated
    (resume). Returns every record in job order.
    """
    from tqdm.auto import tqdm

    settings = settings or AnswerSection()
    method, chunk_size = settings.method, settings.chunk_size
    if method not in METHODS:
        raise CulturespaError(f"unknown answer method {method!r}; use one of {', '.join(METHODS)}")
    jobs = plan_jobs(questions, countries, settings.cross_culture_thinking)
    chunks = [jobs[i : i + chunk_size] for i in range(0, len(jobs), chunk_size)]
    log = UnitLog(log_path) if log_path is not None else None
    results: dict[int, list[dict]] = {}
    if log is not None:
        for record in log.records.values():
            results.setdefault(record["unit"], []).append(record)
    todo = [c for c in range(len(chunks)) if c not in results]
    bar = tqdm(
        total=len(jobs),
        initial=len(jobs) - sum(len(chunks[c]) for c in todo),
        unit="prompt",
        desc=f"answer ({method})",
        disable=not progress,
    )
    units = [(chunks[c], method, _sampling(settings, seed, c)) for c in todo]
    for position, records in as_replicas(backend).map_unordered(answer_unit, units):
        c = todo[position]
        if log is not None:
            log.append_unit(c, records)
        results[c] = records
        bar.update(len(records))
    bar.close()
    return [_strip(r) for c in range(len(chunks)) for r in results[c]]


def _sampling(settings: AnswerSection, seed: int, chunk: int) -> SamplingSettings | None:
    """The sampling settings of one chunk, seeded by its number (None for `loglik`)."""
    if settings.method != "sample":
        return None
    return SamplingSettings(
        settings.max_new_tokens, settings.temperature, settings.top_p, seed * 1_000_003 + chunk
    )


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("unit", "unit_size")}


def run_answer_stage(
    backend: Backend | Replicas,
    questions: Sequence[Question],
    countries: Sequence[str],
    out_dir: Path,
    settings: AnswerSection | None = None,
    *,
    seed: int = 42,
) -> dict:
    """Answer with a resumable log under `out_dir`, then write `answers.jsonl` in job order."""
    settings = settings or AnswerSection()
    records = answer_questions(
        backend,
        questions,
        countries,
        settings,
        seed=seed,
        log_path=out_dir / ANSWER_LOG,
        progress=True,
    )
    written = write_jsonl_atomic(out_dir / "answers.jsonl", records)
    return {
        "prompts": len(records),
        "method": settings.method,
        "invalid": sum(r["answer"] is None for r in records),
        "written": written,
    }


ANSWER_LOG = "answers.log.jsonl"
