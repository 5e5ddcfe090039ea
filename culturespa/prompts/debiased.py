"""The prompts of the debiased ways of asking: every cyclic order of an item's options (permuted),
or the item and a content-free prompt with the same labels (calibrated). For survey items (the
evaluation's tasks) and for any question with its options (the data builder's generated
questions, asked with the paper's plain user turn)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from culturespa.prompts.templates import USER_PLAIN, content_free_user, render
from culturespa.scoring.debiasing import cyclic_shifts
from culturespa.survey.items import get_item


@dataclass(frozen=True)
class AskedPrompts:
    """The user turns one item is asked with, and per turn the survey codes in the order listed.

    Every turn shows the same option numbers (`shown`), so the scored continuations are the same
    for every turn and only the prompt differs.
    """

    users: tuple[str, ...]
    listed_codes: tuple[tuple[int, ...], ...]
    shown: tuple[int, ...]
    texts: tuple[str, ...]


def permuted_prompts(template: str, qid: str, country: str) -> AskedPrompts:
    """One user turn per cyclic order of the options, numbered 1..k by place; the self-alignment
    examples are listed with the same shift (modulo their own number of options)."""
    item = get_item(qid)
    users, listed = [], []
    for shift in cyclic_shifts(len(item.options)):
        users.append(render(template, qid, country, shift=shift).user)
        listed.append(tuple(o.code for o in item.listing(shift=shift)))
    first = item.listing(shift=0)
    return AskedPrompts(
        tuple(users),
        tuple(listed),
        tuple(o.shown for o in first),
        tuple(o.text for o in first),
    )


def calibration_prompts(template: str, qid: str, country: str) -> AskedPrompts:
    """The item as the paper asks it (survey order, survey codes), then the content-free prompt
    with the same labels: the second is the same for every item with those labels."""
    item = get_item(qid)
    listing = item.listing()
    shown = tuple(o.shown for o in listing)
    codes = tuple(o.code for o in listing)
    users = (render(template, qid, country).user, content_free_user(template, shown))
    return AskedPrompts(users, (codes, codes), shown, tuple(o.text for o in listing))


def _plain_user(question: str, numbers: Sequence[int], texts: Sequence[str]) -> str:
    options = " ".join(f"{n}.{text}" for n, text in zip(numbers, texts))
    return USER_PLAIN.format(question=question, options=options)


def permuted_plain(question: str, options: Sequence[str], codes: Sequence[int]) -> AskedPrompts:
    """The paper's plain user turn once per cyclic order of the options (shift s lists them from
    the s-th one, wrapped round), numbered 1..k by place; `codes`: the options' own numbers."""
    k = len(options)
    users, listed = [], []
    for shift in cyclic_shifts(k):
        order = [(shift + place) % k for place in range(k)]
        users.append(_plain_user(question, range(1, k + 1), [options[i] for i in order]))
        listed.append(tuple(codes[i] for i in order))
    return AskedPrompts(tuple(users), tuple(listed), tuple(range(1, k + 1)), tuple(options))


def calibration_plain(question: str, options: Sequence[str], codes: Sequence[int]) -> AskedPrompts:
    """The question as the paper asks it (its own order and numbers), then the content-free
    plain user turn with the same numbers (the same for every question with those numbers)."""
    codes = tuple(codes)
    users = (_plain_user(question, codes, options), content_free_plain(codes))
    return AskedPrompts(users, (codes, codes), codes, tuple(options))


def content_free_plain(labels: Sequence[int]) -> str:
    """The plain user turn with the question and every option text replaced by the content-free
    text, the options numbered `labels`."""
    return content_free_user("culture_unaware", labels)
