"""Stage 2: clean and filter generated questions, with counts per rule and per topic.

Rules, applied in this order (a question is dropped by the first rule that removes it):

1. `malformed`: empty question, or an option that is not a non-empty string or number.
2. `exact_duplicate`: the same question text as an earlier question (any topic).
3. Options are cleaned (not a drop): numbering such as "1 - Strongly disagree", "2. Often" or
   "3) Never" is stripped (`numbering_stripped`); a scale written as "1 - X", "2", ..., "10 - Y"
   becomes a numeric card: options "1".."10" and the question gains
   "Using this card on which 1 means 'X' and 10 means 'Y'." (`numeric_card`), as in WVS Q49.
4. `numbers_only`: options that are only numbers, unless they run 0.. or 1.. in steps of one
   and the question explains both ends (e.g. "where 1 means ... and 10 means ...").
5. `option_count`: fewer than 2 or more than 11 options.
6. `duplicate_options`: the same option twice (compared in normalised form): two numbers would
   mean the same answer.
7. `wvs_duplicate`: the question's normalised form equals that of a WVS item.
8. `near_duplicate`: the normalised form equals an earlier kept question's.

Then, with `filter.per_topic: N`, a subset stratified by topic: of each topic's kept questions,
the N whose SHA-1 of "<seed>:<question id>" is smallest (`stratified_subset`), in input order.

The normalised form: lower case, punctuation removed, articles dropped, spaces collapsed.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from culturespa.pluralise.questions import Question, question_id
from culturespa.survey.items import TOPIC_NAMES, all_items

DROP_RULES: tuple[str, ...] = (
    "malformed",
    "exact_duplicate",
    "numbers_only",
    "option_count",
    "duplicate_options",
    "wvs_duplicate",
    "near_duplicate",
)
EDIT_RULES: tuple[str, ...] = ("numbering_stripped", "numeric_card")

_NUMBERED = re.compile(r"^\(?(\d{1,2})\s*(?:[-–—.:=)]|\))\s+(\S.*)$")
_BARE_NUMBER = re.compile(r"^\d{1,2}$")
_ARTICLES = {"a", "an", "the"}


def normalised(text: str) -> str:
    """Lower case, punctuation removed, articles dropped, whitespace collapsed."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(w for w in words if w not in _ARTICLES)


def _explains_end(question: str, number: int) -> bool:
    """Whether the question says what the scale point `number` means."""
    pattern = (
        rf"(?<![\d.]){number}(?![\d.])['\"]?\s*(?:=|:|\(|-\s|means?\b|meaning\b|being\b|is\b|"
        r"indicates?\b|represents?\b|stands? for\b|signif\w*\b|equals?\b)"
    )
    return re.search(pattern, question, flags=re.IGNORECASE) is not None


@dataclass
class CleanResult:
    question: str
    options: list[str]
    first_option: int = 1
    edits: list[str] = field(default_factory=list)
    drop: str | None = None


def clean_options(question: str, options: list[str]) -> CleanResult:
    """Strip numbering, build numeric cards, and flag unexplained number-only lists."""
    options = [str(o).strip() for o in options]
    parsed = []
    for text in options:
        bare = _BARE_NUMBER.match(text)
        numbered = _NUMBERED.match(text)
        if bare:
            parsed.append((int(text), None))
        elif numbered:
            parsed.append((int(numbered.group(1)), numbered.group(2).strip()))
        else:
            parsed.append(None)
    if any(p is None for p in parsed):
        return CleanResult(question, options)
    numbers = [n for n, _ in parsed]
    labels = [lab for _, lab in parsed]
    consecutive = numbers[0] in (0, 1) and numbers == list(
        range(numbers[0], numbers[0] + len(numbers))
    )
    if all(lab is not None for lab in labels):
        return CleanResult(question, labels, edits=["numbering_stripped"])
    if not consecutive:
        return CleanResult(question, options, drop="numbers_only")
    first, last = numbers[0], numbers[-1]
    digits = [str(n) for n in numbers]
    if labels[0] is not None and labels[-1] is not None:
        card = (
            f"{question.rstrip()} Using this card on which {first} means '{labels[0]}' and "
            f"{last} means '{labels[-1]}'."
        )
        return CleanResult(card, digits, first_option=first, edits=["numeric_card"])
    if _explains_end(question, first) and _explains_end(question, last):
        return CleanResult(question, digits, first_option=first)
    return CleanResult(question, options, drop="numbers_only")


@dataclass
class FilterReport:
    """Counts of the filter: input, kept, dropped per rule and edits, each also per topic."""

    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    edited: Counter = field(default_factory=Counter)
    per_topic: dict = field(default_factory=lambda: defaultdict(Counter))
    subset: dict | None = None
    """With filter.per_topic: {"per_topic", "seed", "questions", "topics": {topic: count}}."""

    def as_dict(self) -> dict:
        return {
            "subset": self.subset,
            "total": self.total,
            "kept": self.kept,
            "dropped": {rule: self.dropped.get(rule, 0) for rule in DROP_RULES},
            "edited": {rule: self.edited.get(rule, 0) for rule in EDIT_RULES},
            "per_topic": {
                topic: {
                    k: self.per_topic[topic].get(k, 0)
                    for k in ("total", "kept", *DROP_RULES, *EDIT_RULES)
                }
                for topic in TOPIC_NAMES
                if topic in self.per_topic
            },
        }

    def markdown(self) -> str:
        """The report as Markdown tables (overall, then per topic)."""
        lines = [
            f"Input {self.total}, kept {self.kept}, dropped {self.total - self.kept}.",
            "",
            "| rule | questions |",
            "| --- | ---: |",
        ]
        lines += [f"| drop: {rule} | {self.dropped.get(rule, 0)} |" for rule in DROP_RULES]
        lines += [f"| edit: {rule} | {self.edited.get(rule, 0)} |" for rule in EDIT_RULES]
        if self.subset:
            lines += [
                "",
                f"Subset after the filter: up to {self.subset['per_topic']} kept questions per "
                f"topic (seed {self.subset['seed']}), {self.subset['questions']} questions.",
            ]
        cols = ("total", "kept", *DROP_RULES, *EDIT_RULES)
        if self.subset:
            cols = (*cols, "subset")
        lines += ["", "| topic | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(cols)]
        for topic in TOPIC_NAMES:
            if topic in self.per_topic:
                counts = dict(self.per_topic[topic])
                if self.subset:
                    counts["subset"] = self.subset["topics"].get(topic, 0)
                lines.append(
                    f"| {topic} | " + " | ".join(str(counts.get(c, 0)) for c in cols) + " |"
                )
        return "\n".join(lines) + "\n"


def _malformed(row: dict) -> bool:
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        return True
    options = row.get("options")
    if not isinstance(options, list) or not options:
        return True
    return any(
        not isinstance(o, (str, int)) or isinstance(o, bool) or not str(o).strip() for o in options
    )


def _repeats_an_option(options: list[str]) -> bool:
    forms = [normalised(o) or o for o in options]
    return len(set(forms)) < len(forms)


def filter_questions(
    rows: list[dict], min_options: int = 2, max_options: int = 11
) -> tuple[list[Question], FilterReport]:
    """Apply the rules in order to raw rows {"topic", "question", "options"}; keep input order."""
    report = FilterReport()
    wvs_forms = {normalised(item.question) for item in all_items().values()}
    seen_exact: set[str] = set()
    seen_forms: set[str] = set()
    kept: list[Question] = []
    for row in rows:
        topic = row["topic"]
        report.total += 1
        counts = report.per_topic[topic]
        counts["total"] += 1

        def drop(rule: str, counts=counts) -> None:
            report.dropped[rule] += 1
            counts[rule] += 1

        if _malformed(row):
            drop("malformed")
            continue
        text = row["question"].strip()
        if text in seen_exact:
            drop("exact_duplicate")
            continue
        seen_exact.add(text)
        result = clean_options(text, row["options"])
        if result.drop:
            drop(result.drop)
            continue
        if not min_options <= len(result.options) <= max_options:
            drop("option_count")
            continue
        if _repeats_an_option(result.options):
            drop("duplicate_options")
            continue
        form = normalised(text)
        if form in wvs_forms:
            drop("wvs_duplicate")
            continue
        if form in seen_forms:
            drop("near_duplicate")
            continue
        seen_forms.add(form)
        for edit in result.edits:
            report.edited[edit] += 1
            counts[edit] += 1
        options = tuple(result.options)
        qid = question_id(topic, result.question, options, result.first_option)
        kept.append(Question(qid, topic, result.question, options, result.first_option))
        report.kept += 1
        counts["kept"] += 1
    return kept, report


def subset_rank(seed: int, qid: str) -> str:
    """The draw's sort key of a question: SHA-1 of "<seed>:<question id>" (no Python RNG, so the
    subset is the same on every Python version and does not depend on other topics)."""
    return hashlib.sha1(f"{seed}:{qid}".encode()).hexdigest()


def stratified_subset(
    questions: list[Question], per_topic: int, seed: int
) -> tuple[list[Question], dict]:
    """Up to `per_topic` questions of each topic (those of smallest `subset_rank`), in input
    order; and the subset's counts for the filter report."""
    by_topic: dict[str, list[Question]] = defaultdict(list)
    for q in questions:
        by_topic[q.topic].append(q)
    chosen = set()
    for topic_questions in by_topic.values():
        ranked = sorted(topic_questions, key=lambda q: subset_rank(seed, q.question_id))
        chosen.update(q.question_id for q in ranked[:per_topic])
    subset = [q for q in questions if q.question_id in chosen]
    counts = Counter(q.topic for q in subset)
    info = {
        "per_topic": per_topic,
        "seed": seed,
        "questions": len(subset),
        "topics": {t: counts[t] for t in TOPIC_NAMES if t in by_topic},
    }
    return subset, info


def single_rule_counts(
    rows: list[dict], min_options: int = 2, max_options: int = 11
) -> dict[str, int]:
    """What each drop rule removes when applied alone to the raw rows (for the docs)."""
    wvs_forms = {normalised(item.question) for item in all_items().values()}
    alone: dict[str, int] = {}
    alone["malformed"] = sum(_malformed(r) for r in rows)
    valid = [r for r in rows if not _malformed(r)]
    texts = [r["question"].strip() for r in valid]
    alone["exact_duplicate"] = len(texts) - len(set(texts))
    cleaned = [clean_options(r["question"].strip(), r["options"]) for r in valid]
    alone["numbers_only"] = sum(c.drop == "numbers_only" for c in cleaned)
    alone["option_count"] = sum(
        not c.drop and not min_options <= len(c.options) <= max_options for c in cleaned
    )
    alone["duplicate_options"] = sum(not c.drop and _repeats_an_option(c.options) for c in cleaned)
    forms = [normalised(t) for t in texts]
    alone["wvs_duplicate"] = sum(f in wvs_forms for f in forms)
    alone["near_duplicate"] = len(forms) - len(set(forms))
    return alone
