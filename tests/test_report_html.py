"""The leaderboard page (index.html) and reply files as report inputs; the page in a real browser.

The browser test drives Debian's `chromium` with Playwright (`.ci/run` installs chromium when it
is missing); it skips, saying why, only where there is no chromium or no Playwright.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report import write_run

from culturespa.cli.main import main
from culturespa.report.html import render_page
from culturespa.report.replies_input import parse_reply_file_name
from culturespa.report.writer import ReportOptions, build_report
from culturespa.survey.countries import PAPER_COUNTRIES
from culturespa.survey.items import get_item, items_with_data, survey_majority

REFERENCE = Path(__file__).parent / "data" / "reference_generations"
COUNTRIES = ("USA", "CHN", "NGA")
PAPER = "paper release (Llama-3-8B-Instruct)"

# The paper's published scores of its released run 0 (x100), tests/test_scoring.py.
PAPER_UNAWARE = {"USA": 68.34, "CHN": 62.19, "NGA": 52.05}
PAPER_AWARE = {"USA": 71.12, "CHN": 66.54}
PAPER_P1_P3_USA = 66.99

# The fixture's rows in the order the leaderboard must give them. Rows with more of the paper's
# countries rank first, then by AVG. The oracle always gives the survey majority: 100 by the
# paper's formula. "Farthest" always gives the option farthest from the majority, at least half
# the item's range away, so its score is at most 1 - 1/2 = 50. The paper's rows average its
# published figures: 60.86 over USA, CHN, NGA culture-unaware; 68.83 over USA, CHN culture-aware.
EXPECTED_ORDER = [
    ("org/base + adapters/joint", "Culture-aware (P1) · log-likelihood"),  # 3 countries, 100
    (PAPER, "Culture-unaware · generation"),  # 3 countries, 60.86
    ("org/base", "Culture-aware (P1) · log-likelihood"),  # 3 countries, <= 50
    (PAPER, "Culture-aware (P1) · generation"),  # 2 countries, 68.83
    ("org/base", "Culture-unaware · log-likelihood"),  # 2 countries, <= 50
    (PAPER, "P1+P3 · generation"),  # 1 country, 66.99
]


def oracle(country: str) -> dict[str, int]:
    """The survey majority on every item the country answered."""
    return {qid: survey_majority(country, qid) for qid in items_with_data(country)}


def farthest(country: str) -> dict[str, int]:
    """The option farthest from the survey majority on every item."""
    out = {}
    for qid in items_with_data(country):
        options, majority = get_item(qid).option_numbers, survey_majority(country, qid)
        out[qid] = max(options, key=lambda n: (abs(n - majority), n))
    return out


def add_run_metadata(results: Path, lm_eval_version: str = "0.4.13") -> None:
    """What lm-eval writes besides the scores: its version, task versions, chat template."""
    data = json.loads(results.read_text())
    data["lm_eval_version"] = lm_eval_version
    data["chat_template"] = "{{ messages }}"
    for config in data["configs"].values():
        config["metadata"] = {"version": 1.0}
    data["config"]["random_seed"] = 42
    results.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of runs as a user keeps them: two lm-eval runs and the paper's reply files."""
    root = tmp_path_factory.mktemp("runs")
    base = {f"wvs_culture_aware_{cc.lower()}": farthest(cc) for cc in COUNTRIES}
    base.update({f"wvs_culture_unaware_{cc.lower()}": farthest(cc) for cc in ("USA", "CHN")})
    add_run_metadata(
        write_run(root / "base" / "org__base", "2025-01-01T10-00-00.1", base, "pretrained=org/base")
    )
    joint = {f"wvs_culture_aware_{cc.lower()}": oracle(cc) for cc in COUNTRIES}
    write_run(
        root / "joint" / "org__base",
        "2025-01-02T10-00-00.1",
        joint,
        {"pretrained": "org/base", "peft": "runs/adapters/joint"},
    )
    shutil.copytree(REFERENCE, root / "paper")
    return root


@pytest.fixture(scope="module")
def report_dir(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_report([inputs], out, ReportOptions(plot=False))
    return out


class TableRows(HTMLParser):
    """(tbody class, tr attributes, cell texts) of every row of the page's leaderboard table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, dict, list[str]]] = []
        self._tbody = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tbody":
            self._tbody = attrs.get("class", "")
        elif tag == "tr" and self._tbody:
            self.rows.append((self._tbody, attrs, []))
        elif tag in ("td", "th") and self._tbody and self.rows:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][2].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._tbody = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(page: str) -> list[tuple[str, dict, list[str]]]:
    parser = TableRows()
    parser.feed(page)
    return [row for row in parser.rows if "data-model" in row[1]]  # not group headings


# Reply files as report inputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wvs_result_culture_unaware_0.json", ("culture_unaware", None, 0)),
        ("wvs_result_culture_aware_USA_0.json", ("culture_aware", "USA", 0)),
        ("wvs_result_culture_aware_self_alignment_USA_2.json", ("aware_self_alignment", "USA", 2)),
        ("wvs_result_cross_culture_thinking_CHN_1.json", ("cross_culture_thinking", "CHN", 1)),
        (
            "wvs_result_cross_culture_thinking_self_alignment_CAN_0.json",
            ("cct_self_alignment", "CAN", 0),
        ),
        # The release also names a country by its demonym.
        ("wvs_result_self_alignment_American_0.json", ("self_alignment", "USA", 0)),
        ("wvs_result_culture_aware_0.json", None),  # a persona template needs its country
        ("wvs_result_culture_aware_XYZ_0.json", None),
        ("wvs_result_culture_unaware.json", None),  # no run index
        ("results_2025-01-01T00-00-00.json", None),
    ],
)
def test_reply_file_names_in_the_papers_release(name, expected):
    assert parse_reply_file_name(name) == expected


def test_paper_replies_are_rows_with_the_published_scores(tmp_path):
    report = build_report([REFERENCE], tmp_path, ReportOptions(plot=False))
    data = json.loads((tmp_path / "leaderboard.json").read_text())
    rows = {(r["model"], r["template"]): r for r in data["rows"] if r["kind"] == "model"}
    assert set(rows) == {
        (PAPER, "culture_unaware"),
        (PAPER, "culture_aware"),
        (PAPER, "aware_self_alignment"),
    }
    # With reply files only, culture-unaware replies are scored in the countries the
    # culture-aware files name.
    unaware = rows[(PAPER, "culture_unaware")]["countries"]
    assert {cc: round(100 * c["score"], 2) for cc, c in unaware.items()} == {
        "USA": PAPER_UNAWARE["USA"],
        "CHN": PAPER_UNAWARE["CHN"],
    }
    aware = rows[(PAPER, "culture_aware")]["countries"]
    assert {cc: round(100 * c["score"], 2) for cc, c in aware.items()} == PAPER_AWARE
    usa = rows[(PAPER, "aware_self_alignment")]["countries"]["USA"]
    assert round(100 * usa["score"], 2) == PAPER_P1_P3_USA
    assert usa["ci"][0] < usa["score"] < usa["ci"][1]  # bootstrapped over the file's items
    assert all(r["generation"] for r in rows.values())  # sampled replies, as the paper's
    # Marked in every table, not only on the page.
    for name in ("leaderboard.md", "leaderboard.csv", "comparison.md", "index.html"):
        assert PAPER in (tmp_path / name).read_text(), name
    assert not report.notes  # a folder of reply files is not "a folder without results"
    runs = data["runs"]
    provenance = runs[str((REFERENCE / "wvs_result_culture_aware_USA_0.json").resolve())]
    assert provenance["origin"] == "reply file"
    assert provenance["run_index"] == 0 and provenance["countries"] == ["USA"]
    assert provenance["command"].startswith("culturespa score ")


def test_culture_unaware_replies_in_the_papers_18_countries(tmp_path):
    build_report(
        [REFERENCE / "wvs_result_culture_unaware_0.json"],
        tmp_path,
        ReportOptions(plot=False, countries=PAPER_COUNTRIES),
    )
    rows = json.loads((tmp_path / "leaderboard.json").read_text())["rows"]
    (row,) = [r for r in rows if r["kind"] == "model"]
    assert row["average_over"] == list(PAPER_COUNTRIES)
    assert round(100 * row["average"], 2) == 62.36  # the paper's release, culture-unaware AVG


def test_bad_reply_files_are_notes(tmp_path):
    folder = tmp_path / "replies"
    folder.mkdir()
    shutil.copy(REFERENCE / "wvs_result_culture_aware_USA_0.json", folder)
    (folder / "wvs_result_culture_aware_CHN_0.json").write_text('[{"Q_id": "Q1", "ans')
    (folder / "wvs_result_best_prompt_USA_0.json").write_text("[]")
    (folder / "wvs_result_culture_aware_NGA_0.json").write_text('[{"Q_id": "Q1"}]')
    report = build_report([folder], tmp_path / "out", ReportOptions(plot=False))
    text = "\n".join(report.notes.messages)
    assert f"{folder / 'wvs_result_culture_aware_CHN_0.json'}: malformed JSON" in text
    assert "wvs_result_best_prompt_USA_0.json: not named like the paper's reply files" in text
    assert "wvs_result_culture_aware_NGA_0.json: entry 0 (Q1): missing field 'answer'" in text
    assert [r.method for r in report.models] == [f"{PAPER} | Culture-aware (P1), generated"]
    renamed = tmp_path / "usa_replies.json"  # a reply file under another name
    shutil.copy(REFERENCE / "wvs_result_culture_aware_USA_0.json", renamed)
    report = build_report([renamed, folder], tmp_path / "out2", ReportOptions(plot=False))
    assert f"{renamed}: a list, not an lm-eval results file; a reply file must be named" in (
        "\n".join(report.notes.messages)
    )


def test_cli_report_takes_reply_files_and_prints_the_page(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["report", str(inputs / "paper"), "-o", str(out), "--no-plots", "--countries", "NGA"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"leaderboard page: {out / 'index.html'}" in printed
    rows = json.loads((out / "leaderboard.json").read_text())["rows"]
    unaware = next(r for r in rows if r["template"] == "culture_unaware")
    assert list(unaware["countries"]) == ["NGA"]
    assert round(100 * unaware["countries"]["NGA"]["score"], 2) == PAPER_UNAWARE["NGA"]
    bad = tmp_path / "wvs_result_culture_aware_USA_0.json"
    bad.write_text("{}")
    assert main(["report", str(bad), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no usable culturespa results" in err and str(bad) in err and len(err.splitlines()) == 1


# The page -------------------------------------------------------------------------------------


def test_page_rows_in_rank_order_without_javascript(report_dir):
    page = (report_dir / "index.html").read_text()
    every = table_rows(page)
    rows = [r for r in every if r[0] == "models"]
    # The survey reference rows follow in their own group, under a heading row, never ranked.
    references = [r for r in every if r[0] == "references"]
    assert [r[2][0] for r in references] == ["ref."] * 6  # no rank
    assert len(references) == 6 and every[: len(rows)] == rows
    assert [(r[1]["data-model"], r[1]["data-search"]) for r in rows] == [
        (model, f"{model} {setting}".lower()) for model, setting in EXPECTED_ORDER
    ]
    assert all(group == "models" for group, _, _ in rows)
    first = rows[0][2]
    assert first[0] == "1" and first[2].split()[0] == "100.0"  # rank, AVG of the oracle
    assert first[4] == "3/18" and first[6] == "1"  # countries in AVG, runs
    second = rows[1][2]
    assert second[2].split()[0] == "60.9"  # (68.34 + 62.19 + 52.05) / 3, shown to 1 decimal


def test_page_is_self_contained(report_dir):
    page = (report_dir / "index.html").read_text()
    assert "<script src" not in page and '<link rel="stylesheet"' not in page
    external = re.findall(r"""(?:src|href)=["'](https?:)?//""", page)
    assert not external
    assert "url(http" not in page and "@import" not in page
    assert page.count("<svg") >= 4  # heatmap, bars, two relation matrices


def test_page_shows_provenance_of_every_row(report_dir, inputs):
    data = json.loads((report_dir / "leaderboard.json").read_text())
    base_file = next((inputs / "base").rglob("results_*.json"))
    provenance = data["runs"][str(base_file)]
    assert provenance["lm_eval_version"] == "0.4.13"
    assert provenance["task_versions"]["wvs_culture_aware_usa"] == "1.0"
    assert provenance["date"] == "2025-01-01 10:00:00"
    assert provenance["model"] == "org/base" and provenance["adapter"] is None
    command = provenance["command"]
    assert command.startswith("lm_eval --model hf --model_args pretrained=org/base ")
    assert "--apply_chat_template" in command and "--log_samples" in command
    joint = data["runs"][str(next((inputs / "joint").rglob("results_*.json")))]
    assert joint["adapter"] == "runs/adapters/joint"
    assert "--apply_chat_template" not in joint["command"]  # that run logged no chat template
    page = (report_dir / "index.html").read_text()
    # A relative link from the page to the results file, and the facts beside it.
    link = os.path.relpath(base_file, report_dir)
    assert f'href="{link}"' in page
    for fact in ("lm-eval version</dt><dd>0.4.13", "task versions</dt><dd>1.0 (5 tasks)"):
        assert fact in page
    assert "runs/adapters/joint" in page


def test_a_new_run_in_the_folder_appears_after_the_next_report(inputs, tmp_path):
    build_report([inputs], tmp_path / "before", ReportOptions(plot=False))
    extra = tmp_path / "more"
    shutil.copytree(inputs, extra)
    write_run(
        extra / "specific" / "usa",
        "2025-01-03T10-00-00.1",
        {"wvs_culture_aware_usa": oracle("USA")},
        {"pretrained": "org/base", "peft": "runs/specific/usa"},
    )
    build_report([extra], tmp_path / "after", ReportOptions(plot=False))
    before = table_rows((tmp_path / "before" / "index.html").read_text())
    after = table_rows((tmp_path / "after" / "index.html").read_text())
    assert len(after) == len(before) + 1
    assert "org/base + specific/{CC}" in {r[1]["data-model"] for r in after}


def test_reference_rows_runs_and_ways_are_shown_when_records_carry_them():
    """Fields other report features add to the records: drawn without a change to the page."""

    def record(model, avg, **extra):
        return {
            "rank": extra.pop("rank", None),
            "model": model,
            "template": "culture_aware",
            "generation": False,
            "average": avg,
            "average_ci": [avg - 0.02, avg + 0.02],
            "average_over": ["USA"],
            "coverage": 1.0,
            "countries": {"USA": {"score": avg, "ci": [None, None], "coverage": 1.0}},
            "sources": [],
            **extra,
        }

    payload = {
        "metric": "alignment",
        "rows": [
            record("m1", 0.55, rank=1, runs=3, spread=0.012, way="dist"),
            record("m2", 0.50, rank=2, runs=["a", "b"]),
            record("middle option", 0.56, kind="reference"),
        ],
        "notes": [],
    }
    rows = table_rows(render_page(payload, generated="today"))
    assert [(group, attrs.get("data-model", "")) for group, attrs, _ in rows] == [
        ("models", "m1"),
        ("models", "m2"),
        ("references", "middle option"),
    ]
    m1, m2, ref = rows[0][2], rows[1][2], rows[2][2]
    assert m1[1] == "m1 Culture-aware (P1) · stated distribution" and m1[6] == "3 ±1.2"
    assert m2[1] == "m2 Culture-aware (P1) · log-likelihood" and m2[6] == "2"
    assert (
        ref[0] == "ref." and ref[1] == "middle option reference Culture-aware (P1) · log-likelihood"
    )


# In a real browser ----------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Debian's chromium (or CULTURESPA_CHROMIUM); Playwright's own download is never used."""
    for candidate in (os.environ.get("CULTURESPA_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')"
    )
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium on this machine: apt-get install chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def rendered_sections(browser, page_file: Path) -> tuple[dict[str, str], list[str]]:
    """The text a reader sees in each part of a page (every <details> opened), by section id
    (and 'header', 'footer'), and the page's script errors and console warnings."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else 0)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(page_file.as_uri())
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    ids = page.eval_on_selector_all("main > section", "sections => sections.map(s => s.id)")
    texts = {name: page.inner_text(f"#{name}") for name in ids}
    texts.update(header=page.inner_text("header"), footer=page.inner_text("footer"))
    page.close()
    return texts, problems


def visible_rows(page) -> list[tuple[str, str]]:
    """(model, template) of the table's model rows that are shown, top to bottom."""
    return page.eval_on_selector_all(
        "#board tbody.models tr:not([hidden])",
        "rows => rows.map(r => [r.dataset.model, r.querySelector('.setting').textContent.trim()])",
    )


def test_page_in_chromium(browser, report_dir, tmp_path):
    problems: list[str] = []
    requests: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else 0)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto((report_dir / "index.html").as_uri())

    # The rows, in rank order.
    assert [tuple(r) for r in visible_rows(page)] == EXPECTED_ORDER
    # A click on AVG sorts by it, best first: 100, 68.83, 66.99, 60.86, then the two <= 50.
    page.get_by_role("button", name="AVG").click()
    order = [tuple(r) for r in visible_rows(page)]
    assert order[:4] == [EXPECTED_ORDER[i] for i in (0, 3, 5, 1)]
    assert set(order[4:]) == {EXPECTED_ORDER[2], EXPECTED_ORDER[4]}
    assert page.get_attribute("#board th[data-sort=avg]", "aria-sort") == "descending"
    page.get_by_role("button", name="AVG").click()  # again: worst first
    assert [tuple(r) for r in visible_rows(page)][-1] == EXPECTED_ORDER[0]
    page.get_by_role("button", name="USA").click()  # a country column
    assert tuple(visible_rows(page)[0]) == EXPECTED_ORDER[0]  # the oracle's 100

    # Filters hide rows; clearing them shows all again.
    options = page.eval_on_selector_all(
        "#filters select[name=template] option", "options => options.map(o => o.textContent)"
    )
    assert options == ["all", "Culture-aware (P1)", "Culture-unaware", "P1+P3"]
    page.select_option("#filters select[name=template]", "culture_unaware")
    assert {r[1] for r in visible_rows(page)} == {
        "Culture-unaware · generation",
        "Culture-unaware · log-likelihood",
    }
    assert page.text_content("#shown") == "2 of 6 rows shown"
    page.select_option("#filters select[name=template]", "")
    page.select_option("#filters select[name=model]", "org/base")
    assert {r[0] for r in visible_rows(page)} == {"org/base"}
    page.select_option("#filters select[name=model]", "")
    page.select_option("#filters select[name=way]", "gen")
    assert {r[0] for r in visible_rows(page)} == {PAPER}
    page.select_option("#filters select[name=way]", "")
    page.fill("#filters input[name=q]", "joint")
    assert [r[0] for r in visible_rows(page)] == ["org/base + adapters/joint"]
    page.fill("#filters input[name=q]", "")
    assert len(visible_rows(page)) == 6

    # The heatmap: one coloured cell per score (6 model rows: 3 + 3 + 3 + 2 + 2 + 1 countries,
    # + AVG; then 6 survey reference rows on the 3 countries, + AVG).
    heatmap = page.locator("#heatmap svg")
    assert heatmap.is_visible()
    box = heatmap.bounding_box()
    assert box["width"] > 300 and box["height"] > 200
    assert page.locator("#heatmap svg rect[fill^='#']").count() == (
        3 + 3 + 3 + 2 + 2 + 1 + 6 + 6 * (3 + 1)
    )
    assert page.locator("#bars svg").is_visible()
    assert page.locator("#relations svg").count() == 4  # two persona rows with 3 countries

    # A row's provenance opens from its name.
    page.click("#board tbody.models tr:first-child th.model a")
    details = page.locator("details.run[open]")
    details.wait_for(timeout=10_000)  # the hashchange event that opens it comes after the click
    assert details.count() == 1 and "runs/adapters/joint" in details.inner_text()

    page.screenshot(path=str(tmp_path / "leaderboard-1280.png"), full_page=True)
    assert not problems, problems
    assert all(url.startswith(("file:", "data:")) for url in requests), requests

    # A phone: rows become cards, nothing wider than the screen.
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.goto((report_dir / "index.html").as_uri())
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.locator("#board tbody.models tr").first.is_visible()
    phone.screenshot(path=str(tmp_path / "leaderboard-390.png"), full_page=True)
    assert (tmp_path / "leaderboard-1280.png").stat().st_size > 10_000

    # Without JavaScript the table is all there, in rank order; the filters stay hidden.
    context = browser.new_context(java_script_enabled=False)
    plain = context.new_page()
    plain.goto((report_dir / "index.html").as_uri())
    assert [tuple(r) for r in visible_rows(plain)] == EXPECTED_ORDER
    assert not plain.locator("#filters").is_visible()
    context.close()


def test_reference_rows_stay_apart_when_sorting_in_chromium(browser, report_dir, tmp_path):
    payload = json.loads((report_dir / "leaderboard.json").read_text())
    baseline = {
        "kind": "reference",
        "model": "always the middle option",
        "average": 0.99,  # above every model: still never ranked among them
        "average_ci": [None, None],
        "countries": {cc: {"score": 0.99, "ci": [None, None]} for cc in COUNTRIES},
        "sources": [],
    }
    payload["rows"].append(baseline)
    (tmp_path / "index.html").write_text(render_page(payload, tmp_path))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((tmp_path / "index.html").as_uri())
    page.get_by_role("button", name="AVG").click()
    assert "always the middle option" not in {r[0] for r in visible_rows(page)}
    reference = page.locator("#board tbody.references tr[data-model='always the middle option']")
    assert reference.is_visible()
    assert page.locator("#heatmap svg text", has_text="survey baselines").count() == 1


def test_the_page_shows_culture_specific_alignment_and_steerability():
    payload = {
        "metric": "alignment",
        "rows": [
            {
                "rank": 1, "model": "m", "template": "culture_aware", "generation": False,
                "average": 0.5, "average_ci": [0.45, 0.55], "average_over": ["USA"],
                "specific_average": 0.4321, "coverage": 1.0,
                "countries": {"USA": {"score": 0.5, "ci": [None, None], "coverage": 1.0}},
                "sources": [],
            }
        ],
        "steerability": [
            {
                "model": "m", "generation": False, "average_delta": 0.021,
                "average_delta_ci": [-0.01, 0.05],
                "countries": {
                    "USA": {"country": "USA", "n_items": 250, "closer": 0.12, "away": 0.06,
                            "unchanged": 0.82, "delta": 0.026, "delta_ci": [-0.018, 0.068]},
                },
            }
        ],
        "notes": [],
    }  # fmt: skip
    page = render_page(payload, generated="today")
    (row,) = table_rows(page)
    assert row[2][3] == "43.2"  # the Specific column, x100
    steer = page[page.index('id="steerability"') :]
    assert "m | log-likelihood" in steer and "mean change +2.1 [-1.0, +5.0]" in steer
    assert "12.0%" in steer and "6.0%" in steer and "+2.6 [-1.8, +6.8]" in steer


# What a reader sees: values, never internals ---------------------------------------------------


@pytest.fixture(scope="module")
def every_kind(inputs, tmp_path_factory) -> Path:
    """A report with every kind of row and every section: lm-eval runs (forward, reversed and
    generated, culture-unaware and -aware), the paper's reply files, survey references, a run
    with --limit 3 and no sample logs, a row with no valid reply, one with an answer that is no
    option, and one averaged over two seeds."""
    root = tmp_path_factory.mktemp("every_kind")
    shutil.copytree(inputs, root / "runs")
    ways = {
        f"wvs_{way}culture_aware_{cc.lower()}": oracle(cc)
        for cc in COUNTRIES
        for way in ("rev_", "gen_")
    }
    write_run(root / "runs" / "ways", "2025-01-04T10-00-00.1", ways, "pretrained=org/base")
    limited = {
        f"wvs_culture_aware_{cc.lower()}": dict(list(farthest(cc).items())[:3]) for cc in COUNTRIES
    }
    path = write_run(
        root / "runs" / "limited", "2025-01-05T10-00-00.1", limited, "pretrained=org/limited",
        log_samples=False,
    )  # fmt: skip
    data = json.loads(path.read_text())
    data["config"]["limit"] = 3
    path.write_text(json.dumps(data))
    silent = {"wvs_gen_culture_aware_usa": dict.fromkeys(items_with_data("USA"), None)}
    write_run(root / "runs" / "silent", "2025-01-06T10-00-00.1", silent, "pretrained=org/silent")
    wide = oracle("USA") | {"Q1": 7}  # Q1 has 4 options: 7 is no option
    write_run(
        root / "runs" / "wide", "2025-01-07T10-00-00.1", {"wvs_gen_culture_aware_usa": wide},
        "pretrained=org/wide",
    )  # fmt: skip
    for seed in (1, 2):
        write_run(
            root / "runs" / f"seed{seed}", f"2025-01-0{7 + seed}T10-00-00.1",
            {"wvs_culture_aware_usa": farthest("USA")}, "pretrained=org/seeded", seed=seed,
        )  # fmt: skip
    out = root / "report"
    build_report([root / "runs"], out, ReportOptions(plot=False))
    return out


def test_every_table_of_a_report_with_every_kind_of_row_shows_values(every_kind):
    from support.leaks import leaked_internals

    from culturespa.report.comparison import comparison_text

    for name in (
        "leaderboard.md", "comparison.md", "steerability.md", "order_consistency.md",
        "agreement.md",
    ):  # fmt: skip
        assert not leaked_internals((every_kind / name).read_text()), name
    leaderboard = (every_kind / "leaderboard.md").read_text()
    # The --limit run says so in its row; the row without a valid reply is not ranked.
    limited = next(
        ln for ln in leaderboard.splitlines() if ln.startswith("| ") and "org/limited" in ln
    )
    n_reference = sum(len(items_with_data(cc)) for cc in COUNTRIES)
    assert f"| 9 of {n_reference} |" in limited
    with (every_kind / "leaderboard.csv").open() as handle:
        line = next(r for r in csv.DictReader(handle) if r["model"] == "org/limited")
    assert (line["n_items"], line["reference_items"]) == ("9", str(n_reference))
    silent = next(ln for ln in leaderboard.splitlines() if "org/silent" in ln)
    assert silent.startswith("| – | org/silent |")
    report = build_report(
        [every_kind.parent / "runs"], every_kind.parent / "again", ReportOptions(plot=False)
    )
    terminal = comparison_text(report.rows)
    assert not leaked_internals(terminal)
    limited_line = next(ln for ln in terminal.splitlines() if ln.startswith("org/limited"))
    assert limited_line.rstrip().endswith(f"9 of {n_reference}")


def test_every_section_of_a_page_with_every_kind_of_row_in_chromium(browser, every_kind):
    from support.leaks import leaked_internals

    texts, problems = rendered_sections(browser, every_kind / "index.html")
    assert {"leaderboard", "heatmap", "bars", "relations", "steerability", "order",
            "agreement", "runs", "notes"} <= set(texts)  # fmt: skip
    for name, text in texts.items():
        assert not leaked_internals(text), (name, leaked_internals(text))
    assert not problems, problems
    n_reference = sum(len(items_with_data(cc)) for cc in COUNTRIES)
    assert f"9 of {n_reference} items" in texts["leaderboard"]  # the --limit row's badge
    # Every Items cell of the steerability, order and agreement tables is a count.
    page = browser.new_page()
    page.goto((every_kind / "index.html").as_uri())
    for cell in ("table.steer td:nth-child(2)", "table.order td[data-label=Items]",
                 "table.agreement td[data-label=Items]"):  # fmt: skip
        items = page.eval_on_selector_all(cell, "cells => cells.map(c => c.textContent)")
        assert items and all(re.fullmatch(r"\d+", c) for c in items), (cell, items)
    silent = page.locator("#board tbody.models tr[data-model='org/silent'] td.rank")
    assert silent.text_content() == "–"  # no score: shown, not ranked
