"""The paper's six prompting templates, rendered as (system, user) message pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from culturespa.errors import CulturespaError
from culturespa.survey.countries import get_country
from culturespa.survey.folder import survey_cached
from culturespa.survey.items import (
    SurveyItem,
    get_item,
    has_survey_data,
    similar_items,
    survey_majority,
)
from culturespa.survey.similarity import most_and_least_similar

# Wording from the paper's release (see data/README.md).
_HONEST = (
    "Please fill out the World Values Survey and answer the questions honestly according to your "
    "own value system."
)
SYSTEM_UNAWARE = "You are a real person with your own set of values. " + _HONEST
SYSTEM_AWARE = "You are a real person with {persona} cultural background. " + _HONEST
CROSS_CULTURE = (
    " Before you respond, take a moment to think about how {x} culture is similar to {s1}, {s2}, "
    "and {s3} cultures, and how {x} culture is different from {d1}, {d2}, and {d3} cultures."
)
USER_PLAIN = (
    "Given a #Question and #Options, choose the option that best aligns with your own value "
    "system to answer the question.\n#Question: {question}\n#Options: {options}\n"
    "Please return the number of the selected option only."
)
USER_SELF_ALIGNMENT = (
    "Given a #Question and #Options, choose the option that best aligns with your own value "
    "system to answer the question.\nHere are some answered questions, which can reflect your "
    "value system:\n{examples}\nBelow are the #Question and #Options. Please return the number "
    "of the selected option only.\n#Question: {question}\n#Options: {options}\n#Answer:"
)
EXAMPLE_LINE = "Question: {question} Options: {options} Answer: {number}.{text}"
N_SELF_ALIGNMENT_EXAMPLES = 5
CONTENT_FREE = "N/A"
"""What replaces the question, the options' texts and the examples in the calibration prompt."""

# The stated-distribution way of asking (not in the paper): the same persona and examples, asked
# for the share of a population that would choose each option, as lines to complete ("1: ?%"),
# one per option: small models copy that form far more often than they follow a description.
_SHARES_TASK = (
    "Given a #Question and #Options, estimate how {population} would answer the question: the "
    "percentage of them that would choose each option."
)
_SHARES_FORMAT = (
    "Please return one line per option, replacing each ? by a percentage, with the percentages "
    "adding up to 100:\n{form}"
)
SHARES_FORM_LINE = "{number}: ?%"
USER_SHARES = _SHARES_TASK + "\n#Question: {question}\n#Options: {options}\n" + _SHARES_FORMAT
USER_SHARES_SELF_ALIGNMENT = (
    _SHARES_TASK + "\nHere are some answered questions, which can reflect your value system:\n"
    "{examples}\nBelow are the #Question and #Options.\n#Question: {question}\n#Options: "
    "{options}\n" + _SHARES_FORMAT
)
POPULATION_AWARE = "people with {persona} cultural background"
POPULATION_UNAWARE = "people around the world"
POPULATION_SELF_ALIGNMENT = "people who share your value system"


@dataclass(frozen=True)
class Template:
    """A prompting template: which system prompt, and whether self-alignment examples are shown."""

    name: str
    label: str
    system: str  # "unaware", "aware" or "cross_culture_thinking"
    self_alignment: bool

    @property
    def country_dependent(self) -> bool:
        return self.system != "unaware" or self.self_alignment


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("culture_unaware", "Culture-unaware", "unaware", False),
        Template("culture_aware", "Culture-aware (P1)", "aware", False),
        Template(
            "cross_culture_thinking", "Cross-culture thinking (P2)", "cross_culture_thinking", False
        ),
        Template("self_alignment", "Self-alignment (P3)", "unaware", True),
        Template("aware_self_alignment", "P1+P3", "aware", True),
        Template("cct_self_alignment", "P2+P3", "cross_culture_thinking", True),
    )
}
"""Template names are chosen so that no name is a prefix of another (exact task globs)."""


def get_template(name: str) -> Template:
    template = TEMPLATES.get(name)
    if template is None:
        raise CulturespaError(f"unknown template {name!r}; known: {', '.join(TEMPLATES)}")
    return template


@survey_cached
def system_prompt(kind: str, country: str | None) -> str:
    """The system prompt of kind 'unaware', 'aware' or 'cross_culture_thinking' for a country
    (built once per kind and country)."""
    if kind == "unaware":
        return SYSTEM_UNAWARE
    if country is None:
        raise CulturespaError(f"the {kind!r} system prompt needs a country")
    target = get_country(country)
    prompt = SYSTEM_AWARE.format(persona=target.persona)
    if kind == "aware":
        return prompt
    if kind == "cross_culture_thinking":
        similar, different = most_and_least_similar(target.code)
        names = [get_country(c).demonym for c in (*similar, *different)]
        return prompt + CROSS_CULTURE.format(
            x=target.demonym,
            s1=names[0],
            s2=names[1],
            s3=names[2],
            d1=names[3],
            d2=names[4],
            d3=names[5],
        )
    raise CulturespaError(f"unknown system prompt kind {kind!r}")


def self_alignment_examples(
    qid: str,
    country: str,
    k: int = N_SELF_ALIGNMENT_EXAMPLES,
    reverse: bool = False,
    shift: int | None = None,
) -> list[str]:
    """The first k similar items that the country's survey answered, with its majority answer.

    With `reverse` each example lists its options last to first, numbered 1..k, and its answer
    carries the number the majority option is shown with there (the same option text); with
    `shift` each example is listed with the same shift (modulo its own number of options).
    """
    code = get_country(country).code
    lines = []
    for other in similar_items(qid):
        if len(lines) == k:
            break
        if other == qid or not has_survey_data(code, other):
            continue
        item = get_item(other)
        number = survey_majority(code, other)
        lines.append(
            EXAMPLE_LINE.format(
                question=item.question,
                options=item.options_text(reverse, shift),
                number=item.shown_number(number, reverse, shift),
                text=next(o.text for o in item.listing(reverse, shift) if o.code == number),
            )
        )
    return lines


def user_message(
    item: SurveyItem,
    examples: list[str] | None = None,
    reverse: bool = False,
    population: str | None = None,
    shift: int | None = None,
) -> str:
    """The user turn for an item: plain, or with self-alignment examples.

    `reverse` lists the options last to first (numbered 1..k), `shift` from the shift-th option
    round (numbered 1..k); `population` asks for the share of that population choosing each
    option instead of for one option.
    """
    fields = {"question": item.question, "options": item.options_text(reverse, shift)}
    if population is not None:
        fields["population"] = population
        fields["form"] = "\n".join(
            SHARES_FORM_LINE.format(number=o.shown) for o in item.listing(reverse)
        )
        if examples is None:
            return USER_SHARES.format(**fields)
        return USER_SHARES_SELF_ALIGNMENT.format(examples="\n".join(examples), **fields)
    if examples is None:
        return USER_PLAIN.format(**fields)
    return USER_SELF_ALIGNMENT.format(examples="\n".join(examples), **fields)


def population(template: str | Template, country: str | None) -> str:
    """Whom a stated-distribution prompt asks about: the template's culture (P1, P2 and their
    P3 variants), people who share the examples' value system (P3 alone), or, for the
    culture-unaware template, people around the world."""
    tpl = get_template(template) if isinstance(template, str) else template
    if tpl.system != "unaware":
        if country is None:
            raise CulturespaError(f"template {tpl.name!r} needs a country")
        return POPULATION_AWARE.format(persona=get_country(country).persona)
    return POPULATION_SELF_ALIGNMENT if tpl.self_alignment else POPULATION_UNAWARE


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def render(
    template: str | Template,
    qid: str,
    country: str | None,
    reverse: bool = False,
    shares: bool = False,
    shift: int | None = None,
) -> Prompt:
    """The (system, user) pair of a template for one WVS item and one country.

    `reverse`: the options (and the examples' options and answers) listed last to first,
    numbered 1..k. `shift`: listed from the shift-th option round, numbered 1..k. `shares`: ask for the share of the template's population (`population`)
    choosing each option, one percentage per option, instead of for one option.
    """
    tpl = get_template(template) if isinstance(template, str) else template
    item = get_item(qid)
    examples = None
    if tpl.self_alignment:
        if country is None:
            raise CulturespaError(f"template {tpl.name!r} needs a country for its examples")
        examples = self_alignment_examples(qid, country, reverse=reverse, shift=shift)
    asked = population(tpl, country) if shares else None
    user = user_message(item, examples, reverse, asked, shift)
    return Prompt(system_prompt(tpl.system, country), user)


def content_free_user(template: str | Template, labels: Sequence[int]) -> str:
    """The user turn of contextual calibration (Zhao et al. 2021): the template's wording with
    the question, every option text and every self-alignment example replaced by
    `CONTENT_FREE`, the options numbered `labels` as the asked item's are."""
    tpl = get_template(template) if isinstance(template, str) else template
    fields = {
        "question": CONTENT_FREE,
        "options": " ".join(f"{n}.{CONTENT_FREE}" for n in labels),
    }
    if not tpl.self_alignment:
        return USER_PLAIN.format(**fields)
    example = EXAMPLE_LINE.format(
        question=CONTENT_FREE, options=CONTENT_FREE, number=CONTENT_FREE, text=""
    ).rstrip(".")
    return USER_SELF_ALIGNMENT.format(
        examples="\n".join([example] * N_SELF_ALIGNMENT_EXAMPLES), **fields
    )
