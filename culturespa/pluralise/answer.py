"""Stage 3: answer every kept question culture-unaware once and, per country, culture-aware and
with cross-culture thinking (CCT), with the paper's system prompts and plain user message.

Two methods behind one call, `answer_questions(backend, questions, countries, settings)` (settings:
the config's `answer` section, whose `method` picks one):

- `loglik` (default): one scoring pass per batch gives log p of every option number (plus the end
  of turn); the answer is the argmax and the softmax over options is kept as a distribution.
- `sample`: the paper's way: sample a reply (temperature 0.6, top_p 0.9) and take the first
  integer; a reply without a valid option number gives no answer.

With `loglik`, `debias` takes the listed place out of the answer, the way the permuted-order and
calibrated evaluation tasks do (`culturespa.prompts.debiased`, `culturespa.scoring.debiasing`):
`permute` asks each question in its k cyclic orders numbered 1..k by place and pools the orders'
distributions, mapped back to the question's own options, by geometric mean; `calibrate` divides
the distribution by that of a content-free question with the same numbers under the same system
prompt, scored once (its own units, first in the log) and reused. A tie leaves no answer. `none`
is the paper's rule.

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
from culturespa.pluralise.questions import Question
from culturespa.pluralise.sections import AnswerSection
from culturespa.pluralise.store import UnitLog, write_jsonl_atomic
from culturespa.prompts.debiased import content_free_plain, permuted_plain
from culturespa.prompts.templates import system_prompt
from culturespa.run_files import ANSWER_LOG, ANSWERS_FILE
from culturespa.scoring.answers import parse_answer
from culturespa.scoring.debiasing import Debiased, calibrated, pooled_over_orders
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

    def conversation(self, user: str | None = None) -> list[dict[str, str]]:
        """The system prompt and the question's user turn (or `user`)."""
        return [
            {"role": "system", "content": system_prompt(KINDS[self.kind], self.country)},
            {"role": "user", "content": self.question.user_message() if user is None else user},
        ]

    @property
    def content_free_id(self) -> str:
        """The content-free question calibrating this one: same system prompt, same numbers."""
        numbers = ",".join(str(n) for n in self.question.option_numbers)
        return f"content-free|{self.kind}|{self.country or '-'}|{numbers}"


@dataclass(frozen=True)
class ContentFree:
    """The content-free question of one system prompt and one numbering (calibration)."""

    job: Job

    @property
    def id(self) -> str:
        return self.job.content_free_id

    def conversation(self) -> list[dict[str, str]]:
        return self.job.conversation(content_free_plain(self.job.question.option_numbers))


def job_requests(job: Job, debias: str) -> tuple[list[list[dict[str, str]]], list[list[str]]]:
    """The conversations one job asks and the option numbers scored for each."""
    numbers = [str(n) for n in job.question.option_numbers]
    if debias != "permute":
        return [job.conversation()], [numbers]
    q = job.question
    asked = permuted_plain(q.question, q.options, q.option_numbers)
    shown = [str(n) for n in asked.shown]
    return [job.conversation(user) for user in asked.users], [shown] * len(asked.users)


def debiased_answer(job: Job, debias: str, logliks: list, content_free: dict) -> Debiased:
    """A job's distribution over its options (own order) with the listed place taken out."""
    q = job.question
    if debias == "permute":
        listed = permuted_plain(q.question, q.options, q.option_numbers).listed_codes
        return pooled_over_orders(q.option_numbers, listed, logliks)
    return calibrated(q.option_numbers, logliks[0], content_free[job.content_free_id])


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
    debias: str = "none",
    content_free: dict | None = None,
) -> list[dict]:
    """Answer a batch of prompts with one backend call; one record per job (`content_free`:
    the content-free log-likelihoods by id, for `calibrate`)."""
    if method == "loglik":
        return _loglik_records(backend, jobs, debias, content_free or {})
    if method != "sample":
        raise CulturespaError(f"unknown answer method {method!r}; use one of {', '.join(METHODS)}")
    if settings is None:
        raise ValueError("sampling needs settings")
    replies = backend.generate([job.conversation() for job in jobs], settings)
    records = []
    for job, reply in zip(jobs, replies):
        number = parse_answer(reply)
        if number not in job.question.option_numbers:
            number = None
        records.append({**_head(job), "answer": number, "reply": reply[:200]})
    return records


def _head(job: Job) -> dict:
    return {
        "id": job.id,
        "question_id": job.question.question_id,
        "kind": job.kind,
        "country": job.country,
    }


def _loglik_records(backend: Backend, jobs: Sequence[Job], debias: str, content_free: dict):
    if jobs and isinstance(jobs[0], ContentFree):
        labels = [[str(n) for n in c.job.question.option_numbers] for c in jobs]
        scores = backend.option_logprobs([c.conversation() for c in jobs], labels)
        return [{"id": c.id, "logliks": [float(x) for x in row]} for c, row in zip(jobs, scores)]
    asked = [job_requests(job, debias) for job in jobs]
    scores = backend.option_logprobs(
        [c for convs, _ in asked for c in convs], [lab for _, labs in asked for lab in labs]
    )
    records, pos = [], 0
    for job, (convs, _) in zip(jobs, asked):
        rows, pos = scores[pos : pos + len(convs)], pos + len(convs)
        if debias == "none":
            probs = [float(p) for p in softmax(rows[0])]
            best = max(range(len(probs)), key=lambda i: (probs[i], -i))
            answer = job.question.option_numbers[best]
        else:
            result = debiased_answer(job, debias, rows, content_free)
            probs, answer = [float(p) for p in result.probs], result.answer
        records.append({**_head(job), "answer": answer, "probs": [round(p, 6) for p in probs]})
    return records


def answer_unit(backend: Backend, unit: tuple) -> list[dict]:
    """One unit of work as replicas run it: `unit` is answer_chunk's arguments after the backend
    (jobs or content-free questions, method, sampling settings, debias, content-free scores)."""
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
    method, debias = settings.method, settings.debias
    if method not in METHODS:
        raise CulturespaError(f"unknown answer method {method!r}; use one of {', '.join(METHODS)}")
    jobs = plan_jobs(questions, countries, settings.cross_culture_thinking)
    chunks = cut_chunks(jobs, debias, settings.chunk_size)
    free = content_free_questions(jobs) if debias == "calibrate" else []
    free_chunks = [
        free[i : i + settings.chunk_size] for i in range(0, len(free), settings.chunk_size)
    ]
    log = UnitLog(log_path) if log_path is not None else None
    results: dict[int, list[dict]] = {}
    if log is not None:
        for record in log.records.values():
            results.setdefault(record["unit"], []).append(record)
    replicas, first = as_replicas(backend), len(free_chunks)
    done = sum(len(r) for r in results.values())
    with tqdm(
        total=len(jobs) + len(free), initial=done, unit="prompt", desc=f"answer ({method})",
        disable=not progress,
    ) as bar:  # fmt: skip
        units = {c: (free_chunks[c], "loglik") for c in range(first) if c not in results}
        _run_units(replicas, units, results, log, bar)
        scored = {r["id"]: r["logliks"] for c in range(first) for r in results[c]}
        units = {
            first + c: (
                chunk,
                method,
                _sampling(settings, seed, c),
                debias,
                {j.content_free_id: scored[j.content_free_id] for j in chunk} if free else None,
            )
            for c, chunk in enumerate(chunks)
            if first + c not in results
        }
        _run_units(replicas, units, results, log, bar)
    return [_strip(r) for c in range(first, first + len(chunks)) for r in results[c]]


def _run_units(replicas: Replicas, units: dict, results: dict, log: UnitLog | None, bar) -> None:
    """Run the units (number -> answer_chunk's arguments) on the replicas, logging each."""
    numbers = list(units)
    for position, records in replicas.map_unordered(answer_unit, list(units.values())):
        if log is not None:
            log.append_unit(numbers[position], records)
        results[numbers[position]] = records
        bar.update(len(records))


def cut_chunks(jobs: Sequence[Job], debias: str, chunk_size: int) -> list[list[Job]]:
    """Jobs in order, cut into chunks of at most `chunk_size` prompts (a job asked in k orders
    is k prompts; a chunk holds at least one job)."""
    chunks: list[list[Job]] = [[]]
    size = 0
    for job in jobs:
        n = len(job.question.options) if debias == "permute" else 1
        if chunks[-1] and size + n > chunk_size:
            chunks.append([])
            size = 0
        chunks[-1].append(job)
        size += n
    return chunks if chunks[-1] else []


def content_free_questions(jobs: Sequence[Job]) -> list[ContentFree]:
    """One content-free question per (system prompt, option numbers) of the jobs, in job order."""
    seen: dict[str, ContentFree] = {}
    for job in jobs:
        seen.setdefault(job.content_free_id, ContentFree(job))
    return list(seen.values())


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
    written = write_jsonl_atomic(out_dir / ANSWERS_FILE, records)
    return {
        "prompts": len(records),
        "method": settings.method,
        **({"debias": settings.debias} if settings.debias != "none" else {}),
        "invalid": sum(r["answer"] is None for r in records),
        "written": written,
    }
