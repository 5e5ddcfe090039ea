"""The committed task YAMLs are exactly the generator's output, and the globs select exactly."""

from __future__ import annotations

import fnmatch

import yaml

from culturespa.prompts.task_names import TaskName, parse_task_name, task_name
from culturespa.prompts.templates import TEMPLATES, render
from culturespa.survey.countries import ALL_COUNTRIES, PAPER_COUNTRIES
from culturespa_tasks import TASK_DIR
from culturespa_tasks.generate import all_configs, generate

# The naming rule, stated here: wvs_[rev_|gen_|dist_|perm_|cal_]<template>[_<cc>] (way infix,
# lower-case ISO-3).
INFIX = {
    "loglik": "", "rev": "rev_", "gen": "gen_", "dist": "dist_", "perm": "perm_", "cal": "cal_"
}  # fmt: skip


def expected_name(way: str, template: str, country: str | None = None) -> str:
    return f"wvs_{INFIX[way]}{template}" + (f"_{country.lower()}" if country else "")


def committed_yamls() -> list:
    """Every task and group YAML of the shipped folder, the ways' subfolders included."""
    return sorted(TASK_DIR.rglob("wvs_*.yaml"))


def test_committed_yamls_equal_a_fresh_generation(tmp_path):
    written = {
        p.relative_to(tmp_path).as_posix(): p.read_text(encoding="utf-8")
        for p in generate(tmp_path)
    }
    committed = {
        p.relative_to(TASK_DIR).as_posix(): p.read_text(encoding="utf-8") for p in committed_yamls()
    }
    assert sorted(committed) == sorted(written), "rerun python -m culturespa_tasks.generate"
    stale = [name for name in written if committed[name] != written[name]]
    assert not stale, f"stale YAMLs, rerun python -m culturespa_tasks.generate: {stale[:5]}"


def test_six_templates_by_19_countries_by_six_ways_of_asking():
    names = [c["task"] for c in all_configs().values() if "task" in c and "group" not in c]
    assert len(names) == len(set(names)) == 6 * 19 * 6
    assert "wvs_perm_self_alignment_usa" in names
    assert "wvs_cal_culture_unaware_chn" in names
    assert "wvs_culture_aware_usa" in names
    assert "wvs_gen_aware_self_alignment_mex" in names
    assert "wvs_rev_culture_unaware_chn" in names
    assert "wvs_dist_cct_self_alignment_nga" in names


def test_the_persona_is_the_description_for_every_task():
    for config in all_configs().values():
        if "group" in config:
            continue
        kwargs = config["dataset_kwargs"]
        expected = render(kwargs["template"], "Q1", kwargs["country"]).system
        assert config["description"] == expected


def test_each_template_glob_selects_exactly_its_19_tasks():
    names = [yaml.safe_load(p.read_text()).get("task") for p in committed_yamls()]
    names += [yaml.safe_load(p.read_text()).get("group") for p in committed_yamls()]
    names = [n for n in names if isinstance(n, str)]
    for template in TEMPLATES:
        for way in INFIX:
            expected = {expected_name(way, template, c) for c in ALL_COUNTRIES}
            pattern = f"{expected_name(way, template)}_*"
            assert set(fnmatch.filter(names, pattern)) == expected, pattern


def test_groups_average_the_papers_18_countries_and_the_leaderboard_all_19():
    configs = all_configs()
    for template in TEMPLATES:
        group = configs[f"loglik/wvs_{template}.yaml"]
        assert group["task"] == [expected_name("loglik", template, c) for c in PAPER_COUNTRIES]
        assert all(not m["weight_by_size"] for m in group["aggregate_metric_list"])
        for way in ("rev", "gen", "dist", "perm", "cal"):
            assert configs[f"{way}/wvs_{INFIX[way]}{template}.yaml"]["task"] == [
                expected_name(way, template, c) for c in PAPER_COUNTRIES
            ]
    assert configs["wvs_leaderboard.yaml"]["task"] == [
        expected_name("loglik", "culture_aware", c) for c in ALL_COUNTRIES
    ]


def test_task_names_are_built_and_read_in_one_place():
    for way in INFIX:
        for template in TEMPLATES:
            for country in ALL_COUNTRIES:
                name = task_name(way, template, country)
                assert name == expected_name(way, template, country)
                assert parse_task_name(name) == TaskName(way, template, country)
            assert parse_task_name(expected_name(way, template)) == TaskName(way, template)
    for other in ("wvs_leaderboard", "arc_easy", "wvs_culture_aware_xyz", "wvs_gen_nope_usa"):
        assert parse_task_name(other) is None
    # Every task config says what it is; the report reads that rather than the name.
    for config in all_configs().values():
        if "group" not in config:
            kwargs = config["dataset_kwargs"]
            parsed = parse_task_name(config["task"])
            assert (kwargs["way"], kwargs["template"], kwargs["country"]) == (
                parsed.way, parsed.template, parsed.country
            )  # fmt: skip


def test_a_forward_glob_does_not_select_the_other_ways():
    names = [c["task"] for c in all_configs().values() if "task" in c and "group" not in c]
    selected = fnmatch.filter(names, "wvs_culture_aware_*")
    assert len(selected) == 19
    assert not [n for n in selected if not n.startswith("wvs_culture_aware_")]
    assert len(fnmatch.filter(names, "wvs_rev_culture_aware_*")) == 19
    assert len(fnmatch.filter(names, "wvs_dist_culture_aware_*")) == 19


def test_the_new_ways_start_at_the_current_version_with_their_shared_settings():
    configs = all_configs()
    assert configs["rev/wvs_rev_culture_aware_usa.yaml"]["include"] == "../_wvs_loglikelihood_yaml"
    assert configs["dist/wvs_dist_culture_aware_usa.yaml"]["include"] == "../_wvs_distribution_yaml"
    shared = yaml.safe_load(
        (TASK_DIR / "_wvs_distribution_yaml").read_text().replace("!function ", "")
    )
    assert shared["metadata"]["version"] == 2.0
    assert shared["output_type"] == "generate_until"
    assert shared["generation_kwargs"]["do_sample"] is False  # a stated distribution: greedy
    metrics = [m["metric"] for m in shared["metric_list"]]
    assert metrics == [
        "alignment", "alignment_specific", "alignment_w1", "alignment_jsd", "majority_match",
        "coverage", "unparsed",
    ]  # fmt: skip


def test_the_debiased_ways_are_new_tasks_at_version_1():
    configs = all_configs()
    for way, shared_file in (("perm", "_wvs_permuted_yaml"), ("cal", "_wvs_calibrated_yaml")):
        assert configs[f"{way}/wvs_{way}_culture_aware_usa.yaml"]["include"] == f"../{shared_file}"
        assert configs[f"{way}/wvs_{way}_culture_aware.yaml"]["metadata"]["version"] == 1.0
        shared = yaml.safe_load((TASK_DIR / shared_file).read_text().replace("!function ", ""))
        assert shared["metadata"]["version"] == 1.0
        assert shared["output_type"] == "multiple_choice"
        metrics = [m["metric"] for m in shared["metric_list"]]
        assert metrics[:7] == [
            "alignment", "alignment_specific", "alignment_w1", "alignment_jsd", "majority_match",
            "coverage", "tied",
        ]  # fmt: skip
        assert metrics[7:] == (["position_led"] if way == "cal" else [])


def test_each_way_of_asking_has_its_subfolder_and_every_task_an_alias():
    """As lm-eval's mmlu/ (default/, generative/, ...): a way's tasks and groups in its own folder,
    named in tables by their alias; the leaderboard at the top."""
    for relative, config in all_configs().items():
        folder, _, filename = relative.rpartition("/")
        name = config.get("task") if "group" not in config else config["group"]
        assert filename == f"{name}.yaml"
        if name == "wvs_leaderboard":
            assert folder == ""
            assert config["group_alias"] == "leaderboard, culture_aware, mean of 19 countries"
            continue
        parsed = parse_task_name(name)
        assert folder == parsed.way
        if "group" in config:
            suffix = "" if parsed.way == "loglik" else f" ({parsed.way})"
            assert config["group_alias"] == f"{parsed.template}{suffix}, mean of 18 countries"
        else:
            suffix = "" if parsed.way == "loglik" else f" ({parsed.way})"
            assert config["task_alias"] == f"{parsed.template} {parsed.country}{suffix}"
    assert {p.name for p in TASK_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        INFIX
    )
    configs = all_configs()
    assert configs["gen/wvs_gen_culture_aware_usa.yaml"]["task_alias"] == "culture_aware USA (gen)"
    assert configs["loglik/wvs_culture_aware_usa.yaml"]["task_alias"] == "culture_aware USA"
