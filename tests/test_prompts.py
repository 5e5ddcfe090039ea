from __future__ import annotations

import pytest

from culturespa.errors import CulturespaError
from culturespa.prompts.templates import TEMPLATES, render, self_alignment_examples
from culturespa.survey.items import get_item, survey_majority

UNAWARE = (
    "You are a real person with your own set of values. Please fill out the World Values Survey "
    "and answer the questions honestly according to your own value system."
)


def test_template_names_are_prefix_free():
    names = list(TEMPLATES)
    assert len(names) == 6
    for a in names:
        for b in names:
            assert a == b or not b.startswith(a + "_"), (a, b)


def test_culture_unaware_is_the_papers_wording():
    prompt = render("culture_unaware", "Q1", "USA")
    assert prompt.system == UNAWARE
    assert prompt.user == (
        "Given a #Question and #Options, choose the option that best aligns with your own value "
        "system to answer the question.\n#Question: How important is family in your life?\n"
        "#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important"
        "\nPlease return the number of the selected option only."
    )
    assert render("culture_unaware", "Q1", "CHN") == prompt
    assert render("culture_unaware", "Q1", None) == prompt


def test_culture_aware_persona_and_article():
    assert render("culture_aware", "Q1", "USA").system.startswith(
        "You are a real person with an American cultural background. Please fill out"
    )
    assert "with a Chinese cultural background." in render("culture_aware", "Q1", "CHN").system
    assert "with an Ethiopian cultural background." in render("culture_aware", "Q1", "ETH").system


def test_cross_culture_thinking_names_similar_and_different_cultures():
    system = render("cross_culture_thinking", "Q1", "USA").system
    assert system.startswith("You are a real person with an American cultural background.")
    assert system.endswith(
        "Before you respond, take a moment to think about how American culture is similar to "
        "Canadian, British, and New Zealand cultures, and how American culture is different from "
        "Zimbabwean, Nigerian, and Indian cultures."
    )


def test_self_alignment_examples_use_the_countrys_majority():
    examples = self_alignment_examples("Q1", "USA")
    assert len(examples) == 5
    # Q1's first neighbours are Q5, Q4, Q6, Q3, Q2
    item = get_item("Q5")
    majority = survey_majority("USA", "Q5")
    assert examples[0] == (
        f"Question: {item.question} Options: {item.options_text()} "
        f"Answer: {majority}.{item.option_text(majority)}"
    )
    user = render("self_alignment", "Q1", "USA").user
    assert "Here are some answered questions" in user and user.endswith("#Answer:")
    assert render("self_alignment", "Q1", "USA").system == UNAWARE


def test_self_alignment_skips_items_without_data():
    # CHN lacks some items; every example shown must have CHN survey data
    for qid in ("Q1", "Q50", "Q150"):
        for line in self_alignment_examples(qid, "CHN"):
            assert line.startswith("Question: ")
        assert len(self_alignment_examples(qid, "CHN")) == 5


def test_combinations():
    p1p3 = render("aware_self_alignment", "Q10", "NGA")
    assert "a Nigerian cultural background" in p1p3.system and "answered questions" in p1p3.user
    p2p3 = render("cct_self_alignment", "Q10", "NGA")
    assert "Before you respond" in p2p3.system and "answered questions" in p2p3.user


def test_errors():
    with pytest.raises(CulturespaError, match="unknown template"):
        render("nope", "Q1", "USA")
    with pytest.raises(CulturespaError, match="needs a country"):
        render("culture_aware", "Q1", None)


def test_reversed_options_are_listed_last_to_first_and_numbered_from_one():
    user = render("culture_aware", "Q1", "USA", reverse=True).user
    assert "#Options: 1.Not at all important 2.Not very important 3.Rather important " in user
    assert user.endswith("4.Very important\nPlease return the number of the selected option only.")
    # An item numbered from 0 in the survey is still shown as 1..k when reversed.
    assert get_item("Q94").options_text() == "0.Don't belong 1.Inactive member 2.Active member"
    assert get_item("Q94").options_text(reverse=True) == (
        "1.Active member 2.Inactive member 3.Don't belong"
    )
    assert render("culture_aware", "Q1", "USA", reverse=True).system == (
        render("culture_aware", "Q1", "USA").system
    )


def test_reversed_self_alignment_examples_answer_in_the_reversed_numbering():
    forward = self_alignment_examples("Q1", "USA")
    backward = self_alignment_examples("Q1", "USA", reverse=True)
    assert len(backward) == len(forward) == 5
    # Q1's first neighbour is Q5 (1..4); the USA majority's text stays, its number is 5 - code.
    item, majority = get_item("Q5"), survey_majority("USA", "Q5")
    reversed_options = " ".join(
        f"{i}.{text}" for i, text in enumerate(reversed(item.options), start=1)
    )
    assert backward[0] == (
        f"Question: {item.question} Options: {reversed_options} "
        f"Answer: {5 - majority}.{item.option_text(majority)}"
    )
    # Every example names the same option text in both orders.
    for f, b in zip(forward, backward):
        assert (
            f.rsplit("Answer: ", 1)[1].split(".", 1)[1]
            == b.rsplit("Answer: ", 1)[1].split(".", 1)[1]
        )


STATED_FORMAT = (
    "Please return one line per option, replacing each ? by a percentage, with the percentages "
    "adding up to 100:\n"
)


def test_stated_distribution_wording():
    aware = render("culture_aware", "Q1", "USA", shares=True)
    assert aware.system == render("culture_aware", "Q1", "USA").system
    assert aware.user == (
        "Given a #Question and #Options, estimate how people with an American cultural background "
        "would answer the question: the percentage of them that would choose each option.\n"
        "#Question: How important is family in your life?\n"
        "#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important"
        "\n" + STATED_FORMAT + "1: ?%\n2: ?%\n3: ?%\n4: ?%"
    )
    # The lines to complete carry the numbers the options are shown with (from 0 here).
    assert render("culture_aware", "Q94", "USA", shares=True).user.endswith(
        STATED_FORMAT + "0: ?%\n1: ?%\n2: ?%"
    )
    unaware = render("culture_unaware", "Q1", "USA", shares=True)
    assert "estimate how people around the world would answer" in unaware.user
    assert unaware == render("culture_unaware", "Q1", "CHN", shares=True)  # one prompt for all
    assert (
        "people with a Chinese cultural background"
        in render("cross_culture_thinking", "Q1", "CHN", shares=True).user
    )
    p3 = render("self_alignment", "Q1", "USA", shares=True).user
    assert p3.startswith(
        "Given a #Question and #Options, estimate how people who share your value system would "
        "answer the question: the percentage of them that would choose each option.\nHere are "
        "some answered questions, which can reflect your value system:\nQuestion: "
    )
    assert p3.endswith(
        "Below are the #Question and #Options.\n#Question: How important is family in your "
        "life?\n#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all "
        "important\n" + STATED_FORMAT + "1: ?%\n2: ?%\n3: ?%\n4: ?%"
    )
    assert "\n".join(self_alignment_examples("Q1", "USA")) in p3
