"""Generated survey questions: the record type, stable ids, and reading question files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from culturespa.bounded_input import BoundExceeded, iter_json_lines
from culturespa.errors import CulturespaError
from culturespa.fields import show
from culturespa.prompts.templates import USER_PLAIN
from culturespa.survey.items import TOPIC_NAMES


@dataclass(frozen=True)
class Question:
    """A kept survey question; options are numbered from `first_option` in prompts."""

    question_id: str
    topic: str
    question: str
    options: tuple[str, ...]
    first_option: int = 1

    @property
    def option_numbers(self) -> tuple[int, ...]:
        return tuple(range(self.first_option, self.first_option + len(self.options)))

    def options_text(self) -> str:
        """'1.Very important 2.Rather important ...' (the paper's format)."""
        return " ".join(f"{n}.{text}" for n, text in zip(self.option_numbers, self.options))

    def user_message(self) -> str:
        """The paper's plain user turn for this question."""
        return USER_PLAIN.format(question=self.question, options=self.options_text())

    def as_dict(self) -> dict:
        row = asdict(self)
        row["options"] = list(self.options)
        return row

    @classmethod
    def from_dict(cls, row: dict) -> Question:
        return cls(
            question_id=row["question_id"],
            topic=row["topic"],
            question=row["question"],
            options=tuple(row["options"]),
            first_option=int(row.get("first_option", 1)),
        )


def topic_index(topic: str) -> int:
    try:
        return TOPIC_NAMES.index(topic)
    except ValueError:
        raise CulturespaError(
            f"unknown topic {topic!r}; topics are the 13 WVS topics: {'; '.join(TOPIC_NAMES)}"
        ) from None


def question_id(
    topic: str, question: str, options: tuple[str, ...] | list[str], first: int = 1
) -> str:
    """A stable id from the content: 't03-' + 12 hex digits of a SHA-1."""
    digest = hashlib.sha1(
        json.dumps([topic, question, list(options), first], ensure_ascii=False).encode("utf-8")
    ).hexdigest()[:12]
    return f"t{topic_index(topic):02d}-{digest}"


def read_raw_questions(path: str | Path) -> list[dict]:
    """Rows {"topic", "question", "options"} of a questions file (the paper's release format).

    A line that is not a JSON object with a known topic, a question string and a list of
    options is an error naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise CulturespaError(f"questions file {path} {what}")
    rows = []
    for number, row in iter_json_lines(path, what="questions file "):
        where = f"{path}:{number}"
        if isinstance(row, (json.JSONDecodeError, BoundExceeded)):
            reason = row.msg if isinstance(row, json.JSONDecodeError) else row
            raise CulturespaError(f"{where}: not valid JSON ({reason})")
        if not isinstance(row, dict):
            raise CulturespaError(f"{where}: expected a JSON object, got {show(row)}")
        missing = [k for k in ("topic", "question", "options") if k not in row]
        if missing:
            raise CulturespaError(f"{where}: missing field(s) {', '.join(missing)}")
        if not isinstance(row["topic"], str) or row["topic"] not in TOPIC_NAMES:
            raise CulturespaError(f"{where}: unknown topic {show(row['topic'])}")
        options = row["options"]
        texts = isinstance(options, list) and all(isinstance(o, str) for o in options)
        if not isinstance(row["question"], str) or not texts:
            raise CulturespaError(
                f"{where}: question must be a string and options a list of strings"
            )
        rows.append({"topic": row["topic"], "question": row["question"], "options": options})
    if not rows:
        raise CulturespaError(f"questions file {path} has no questions")
    return rows
