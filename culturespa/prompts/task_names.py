"""Task names: the one place a WVS task or group name is built or read back.

A task is one way of asking, one prompting template and one country:
`wvs_<template>_<cc>` (log-likelihood, the default way), `wvs_rev_<template>_<cc>` (log-likelihood
with the options listed in reverse), `wvs_gen_<template>_<cc>` (the paper's sampled replies),
`wvs_dist_<template>_<cc>` (a stated distribution), `wvs_perm_<template>_<cc>` (log-likelihood pooled
over every cyclic order of the options), `wvs_cal_<template>_<cc>` (log-likelihood calibrated on a
content-free prompt); a group drops the country (`wvs_<template>`,
the mean over the paper's 18 countries). Template names are prefix-free, so each glob `wvs_<template>_*` selects exactly one
template's tasks. Every producer (the task generator, the demo, training, culture-specific
evaluation) and every consumer (the report) goes through here.
"""

from __future__ import annotations

from dataclasses import dataclass

from culturespa.prompts.templates import TEMPLATES
from culturespa.survey.countries import WAVE7_COUNTRIES

TASK_PREFIX = "wvs_"

WAYS: dict[str, str] = {
    "loglik": "",
    "rev": "rev_",
    "gen": "gen_",
    "dist": "dist_",
    "perm": "perm_",
    "cal": "cal_",
}
"""Ways of asking the model -> the part of the name after `wvs_`: the log-likelihood of each
option (the default, no infix); the same with the options listed last to first; one sampled reply
parsed for its first integer (the paper's way); or the share of people choosing each option,
stated by the model in one reply; the log-likelihoods pooled over every cyclic order of the options
(permuted); or divided by those of a content-free prompt (calibrated). No infix is a template name's start, so the globs stay exact."""

LOGLIKELIHOOD_WAYS: tuple[str, ...] = ("loglik", "rev", "perm", "cal")
"""The ways that score every option's log-likelihood: deterministic, and every choice is an
option (no reply to parse)."""

WAY_LABELS: dict[str, str] = {
    "loglik": "log-likelihood",
    "gen": "generation",
    "rev": "log-likelihood, reversed options",
    "dist": "stated distribution",
    "perm": "log-likelihood, permuted orders",
    "cal": "log-likelihood, calibrated",
}
"""How reports name each way of asking."""

LEADERBOARD_GROUP = "wvs_leaderboard"
"""The leaderboard's task set: the culture-aware log-likelihood task of every country."""


@dataclass(frozen=True)
class TaskName:
    """What a task name says: the way of asking, the template, the country (None for a group)."""

    way: str
    template: str
    country: str | None = None

    @property
    def generation(self) -> bool:
        """Whether the task samples replies (the report's 'generated' rows)."""
        return self.way == "gen"

    @property
    def first_integer_reply(self) -> bool:
        """Whether only the first integer of a reply is read (the paper's parser)."""
        return self.way == "gen"

    def __str__(self) -> str:
        name = f"{TASK_PREFIX}{WAYS[self.way]}{self.template}"
        return f"{name}_{self.country.lower()}" if self.country else name


def task_name(way: str, template: str, country: str) -> str:
    """'wvs_gen_culture_aware_usa' for ('gen', 'culture_aware', 'USA')."""
    _check(way, template)
    return str(TaskName(way, template, WAVE7_COUNTRIES[country.upper()].code))


def group_name(way: str, template: str) -> str:
    """'wvs_culture_aware' for ('loglik', 'culture_aware'): the mean over the paper's countries."""
    _check(way, template)
    return str(TaskName(way, template))


def parse_task_name(name: str) -> TaskName | None:
    """The parts of a task or group name; None for any other name (`wvs_leaderboard` included).

    The longest way infix that fits wins ('gen_' before none), so a template never swallows it
    (no template name starts with a way's infix).
    """
    if not name.startswith(TASK_PREFIX):
        return None
    rest = name[len(TASK_PREFIX) :]
    for way, infix in sorted(WAYS.items(), key=lambda kv: -len(kv[1])):
        if not rest.startswith(infix):
            continue
        body = rest[len(infix) :]
        if body in TEMPLATES:
            return TaskName(way, body)
        head, _, suffix = body.rpartition("_")
        if head in TEMPLATES and suffix.upper() in WAVE7_COUNTRIES and suffix == suffix.lower():
            return TaskName(way, head, suffix.upper())
    return None


def task_of_group(group: str, country: str) -> str:
    """The task of one country in a group: ('wvs_gen_culture_aware', 'USA') -> '..._usa'."""
    parsed = parse_task_name(group)
    if parsed is None or parsed.country is not None:
        raise ValueError(f"{group!r} is not a WVS task group")
    return task_name(parsed.way, parsed.template, country)


def _check(way: str, template: str) -> None:
    if way not in WAYS:
        raise ValueError(f"unknown way of asking {way!r}; known: {', '.join(WAYS)}")
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
