"""Stated distributions parse from the shapes of reply small models write; unusable ones say why.

The expected shares are written out by hand: the numbers in the reply divided by their sum.
"""

from __future__ import annotations

import pytest

from culturespa.scoring.stated import parse_stated_distribution

NUMBERS = (1, 2, 3, 4)
TEXTS = ("Very important", "Rather important", "Not very important", "Not at all important")
EVEN = (0.4, 0.3, 0.2, 0.1)


@pytest.mark.parametrize(
    "reply",
    [
        "1: 40%\n2: 30%\n3: 20%\n4: 10%",  # the asked-for form
        "1. 40%\n2. 30%\n3. 20%\n4. 10%",
        "1: 40\n2: 30\n3: 20\n4: 10",
        "1) 40 percent\n2) 30 percent\n3) 20 percent\n4) 10 percent",
        "Option 1 - 40 %\nOption 2 - 30 %\nOption 3 - 20 %\nOption 4 - 10 %",
        "1: 40%, 2: 30%, 3: 20%, 4: 10%",
        "1: 40; 2: 30; 3: 20; 4: 10",
        "1.Very important: 40%\n2.Rather important: 30%\n3.Not very important: 20%\n"
        "4.Not at all important: 10%",
        "Very important: 40%\nRather important: 30%\nNot very important: 20%\n"
        "Not at all important: 10%",
        "Sure! Here are my estimates:\n\n- **Option 1 (Very important)**: 40%\n"
        "- **Option 2 (Rather important)**: 30%\n- **Option 3**: 20%\n- **Option 4**: 10%\n\n"
        "Total: 100%",
        '{"1": 40, "2": 30, "3": 20, "4": 10}',
        'Here is the JSON:\n```json\n{"Option 1": "40%", "Option 2": "30%", "Option 3": "20%", '
        '"Option 4": "10%"}\n```',
        '{"shares": {"1": 40, "2": 30, "3": 20, "4": 10}}',
        '{"Very important": 40, "Rather important": 30, "Not very important": 20, '
        '"Not at all important": 10}',
        "[40, 30, 20, 10]",
        "40%, 30%, 20%, 10%",
        "0.4, 0.3, 0.2, 0.1",
        "[1] 40%\n[2] 30%\n[3] 20%\n[4] 10%",
        # small models repeat their list: the first share of each option counts
        "1: 40%\n2: 30%\n3: 20%\n4: 10%\n1: 25%\n2: 25%\n3: 25%\n4: 25%",
        # an echo of the options line is not read as shares
        "#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important"
        "\n1: 40%\n2: 30%\n3: 20%\n4: 10%",
        "1.Very important 2.Rather important 3.Not very important 4.Not at all important\n"
        "1: 40%\n2: 30%\n3: 20%\n4: 10%",
    ],
)
def test_the_shapes_small_models_write(reply):
    stated = parse_stated_distribution(reply, NUMBERS, TEXTS)
    assert stated.usable, stated.problem
    assert stated.shares == pytest.approx(EVEN)


@pytest.mark.parametrize(
    "reply, shares",
    [
        ("1: 50%\n2: 30%\n3: 10%\n4: 10%", (0.5, 0.3, 0.1, 0.1)),
        ("1: 40%\n2: 40%\n3: 40%\n4: 40%", (0.25, 0.25, 0.25, 0.25)),  # sum 160: renormalised
        ("1: 1\n2: 1\n3: 1\n4: 5", (0.125, 0.125, 0.125, 0.625)),
        ("1: 0%\n2: 0%\n3: 0%\n4: 100%", (0.0, 0.0, 0.0, 1.0)),
        ("1: 12.5%\n2: 37.5%\n3: 25%\n4: 25%", (0.125, 0.375, 0.25, 0.25)),
        ("1: 100%\n2: 20%\n3: 30%\n4: 50%", (0.5, 0.1, 0.15, 0.25)),  # sum 200
    ],
)
def test_shares_are_renormalised_to_sum_to_one(reply, shares):
    assert parse_stated_distribution(reply, NUMBERS, TEXTS).shares == pytest.approx(shares)


@pytest.mark.parametrize(
    "reply, problem",
    [
        ("1: 40%\n2: 30%\n3: 30%", "shares for 3 of 4 options"),
        ("[50, 30, 20]", "3 shares for 4 options"),
        ("[50, 30, 10, 5, 5]", "5 shares for 4 options"),
        ("1: 0%\n2: 0%\n3: 0%\n4: 0%", "every share is zero"),
        ("2", "shares for 0 of 4 options"),  # one option named: a choice, not a distribution
        ("5: 40%\n6: 60%", "shares for 0 of 4 options"),  # numbers that are no option
        ("I am not able to estimate that.", "no shares found"),
        ("1: ?%\n2: ?%\n3: ?%\n4: ?%", "shares for 0 of 4 options"),  # the form, copied
        ("1: 40%\n2: ?%\n3: ?%\n4: ?%", "shares for 1 of 4 options"),
        ("", "empty reply"),
        (None, "empty reply"),
        (
            "1.Very important 2.Rather important 3.Not very important 4.Not at all important",
            "shares for 0 of 4 options",
        ),
    ],
)
def test_unusable_replies_say_why(reply, problem):
    stated = parse_stated_distribution(reply, NUMBERS, TEXTS)
    assert not stated.usable and stated.shares is None
    assert stated.problem == problem


def test_a_scale_whose_options_are_numbers():
    # Q48-style items: options 1..10 whose texts are "1".."10"; replies echo "1.1" for option 1.
    numbers = tuple(range(1, 11))
    texts = tuple(str(n) for n in numbers)
    shares = (5, 5, 5, 5, 10, 10, 10, 20, 20, 10)  # sum 100
    expected = tuple(v / 100 for v in shares)
    echoed = "\n".join(f"{n}.{n}: {v}%" for n, v in zip(numbers, shares))
    plain = "\n".join(f"{n}: {v}%" for n, v in zip(numbers, shares))
    bare = "\n".join(f"{n}: {v}" for n, v in zip(numbers, shares))
    for reply in (echoed, plain, bare):
        assert parse_stated_distribution(reply, numbers, texts).shares == pytest.approx(expected)
    # "4: 40%" must not read as option 4 echoed, then 0%
    assert parse_stated_distribution(
        "\n".join(f"{n}: {40 if n == 4 else 60 / 9:.4f}%" for n in numbers), numbers, texts
    ).shares[3] == pytest.approx(0.4, abs=1e-4)
    echo_only = " ".join(f"{n}.{n}" for n in numbers)  # the options line, nothing else
    assert not parse_stated_distribution(echo_only, numbers, texts).usable


def test_items_numbered_from_zero():
    numbers, texts = (0, 1, 2), ("Don't belong", "Inactive member", "Active member")
    reply = "0: 70%\n1: 20%\n2: 10%"
    assert parse_stated_distribution(reply, numbers, texts).shares == pytest.approx((0.7, 0.2, 0.1))
    # A share written as a decimal fraction is no option marker.
    assert parse_stated_distribution("0.7, 0.2, 0.1", numbers, texts).shares == pytest.approx(
        (0.7, 0.2, 0.1)
    )


def test_text_keys_match_whole_option_texts():
    numbers, texts = (1, 2, 3), ("Agree", "Agree strongly", "Disagree")
    reply = "Agree strongly: 50%\nAgree: 30%\nDisagree: 20%"
    assert parse_stated_distribution(reply, numbers, texts).shares == pytest.approx((0.3, 0.5, 0.2))


def test_option_texts_must_match_the_numbers():
    with pytest.raises(ValueError, match="3 option texts for 4 option numbers"):
        parse_stated_distribution("1: 100%", NUMBERS, TEXTS[:3])
