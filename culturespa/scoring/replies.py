"""Reply files in the paper's release format: [{"Q_id": ..., "answer": raw reply text, ...}]."""

from __future__ import annotations

from pathlib import Path

from culturespa.bounded_input import read_json_file
from culturespa.errors import CulturespaError
from culturespa.fields import show
from culturespa.scoring.answers import parse_answer
from culturespa.survey.items import get_item


def read_reply_file(path: str | Path) -> dict[str, str]:
    """Load {item id: raw reply text}; every problem is reported with the file and the entry.

    A JSON number is kept as its text ("7", "2.0", "-1"), so it is parsed like a text reply; a
    boolean, list or object is an error.
    """
    path = Path(path)
    data = read_json_file(path)
    if not isinstance(data, list):
        raise CulturespaError(
            f"{path}: expected a list of objects with 'Q_id' and 'answer', got {type(data).__name__}"
        )
    replies: dict[str, str] = {}
    for index, entry in enumerate(data):
        where = f"{path}: entry {index}"
        if not isinstance(entry, dict):
            raise CulturespaError(f"{where}: expected an object, got {type(entry).__name__}")
        if "Q_id" not in entry:
            raise CulturespaError(f"{where}: missing field 'Q_id'")
        if "answer" not in entry:
            raise CulturespaError(f"{where} ({str(entry['Q_id'])[:80]}): missing field 'answer'")
        qid = entry["Q_id"]
        if not isinstance(qid, str):
            raise CulturespaError(f"{where}: field 'Q_id' must be a string, got {show(qid)}")
        try:
            get_item(qid)
        except CulturespaError as exc:
            raise CulturespaError(f"{where}: {exc}") from None
        if qid in replies:
            raise CulturespaError(f"{where}: item {qid} appears twice")
        answer = entry["answer"]
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float, type(None))):
            raise CulturespaError(
                f"{where} ({qid}): field 'answer' must be text or a number, not {show(answer)}"
            )
        # A number is scored as its text, through the same parser as a text reply.
        replies[qid] = "" if answer is None else str(answer)
    return replies


def parse_replies(replies: dict[str, str]) -> dict[str, int | None]:
    """Apply the paper's parser to every reply (None = invalid, skipped in scoring)."""
    return {qid: parse_answer(reply) for qid, reply in replies.items()}
