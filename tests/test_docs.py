"""The README stays short and points to pages that exist; the task folder's README keeps
lm-eval's task README shape."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "culturespa_tasks" / "README.md", *(ROOT / "docs").glob("*.md")]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def section(text: str, heading: str) -> str:
    """The text under a `## heading` up to the next `## `."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_is_short_and_its_two_commands_are_demo_and_test():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    block = section(readme, "The two commands").split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


def test_readme_links_every_long_page():
    readme = (ROOT / "README.md").read_text()
    linked = set(LINK.findall(readme))
    for page in (
        "docs/lm_eval.md", "docs/leaderboard.md", "docs/scores.md", "docs/data_builder.md",
        "docs/training.md", "docs/loop.md", "docs/scaling.md", "docs/vllm.md", "docs/tasks.md",
        "benchmarks/README.md", "docs/bad_input/README.md", "docs/survey.md",
        "docs/ways_debiased.md",
    ):  # fmt: skip
        assert page in linked, page


def test_every_relative_link_of_the_readmes_and_docs_points_to_a_file():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_task_readme_has_lm_evals_template_sections_and_stays_short():
    text = (ROOT / "culturespa_tasks" / "README.md").read_text()
    headings = re.findall(r"^#{3,4} (.+)$", text, flags=re.M)
    assert headings == [
        "Paper", "Citation", "Groups, Tags, and Tasks", "Groups", "Tags", "Tasks", "Checklist",
        "Changelog",
    ]  # fmt: skip
    assert len(text.splitlines()) <= 90
    for way in ("loglik", "rev", "gen", "dist", "perm", "cal"):
        assert f"`{way}/`" in text and (ROOT / "culturespa_tasks" / way).is_dir(), way
