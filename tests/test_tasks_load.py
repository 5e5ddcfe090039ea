"""Every task and group loads through lm-eval's TaskManager from the installed folder."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from culturespa.prompts.task_names import task_name
from culturespa.prompts.templates import TEMPLATES
from culturespa.survey.countries import ALL_COUNTRIES, PAPER_COUNTRIES
from culturespa.survey.items import items_with_data
from culturespa_tasks import TASK_DIR

pytest.importorskip("lm_eval")


@pytest.fixture(scope="module")
def manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASK_DIR), include_defaults=False)


def test_every_task_loads_with_its_docs_and_version(manager):
    from culturespa_tasks.wvs_task import WVSTask

    names = [
        task_name(mode, t, c)
        for mode in ("loglik", "gen")
        for t in TEMPLATES
        for c in ALL_COUNTRIES
    ]
    loaded = manager.load(names)["tasks"]
    assert sorted(loaded) == sorted(names)
    for name, task in loaded.items():
        assert isinstance(task, WVSTask)
        assert task.config.metadata["version"] == 2.0
        country = task.config.dataset_kwargs["country"]
        assert len(task.eval_docs) == len(items_with_data(country)), name
        expected = "generate_until" if name.startswith("wvs_gen_") else "multiple_choice"
        output_type = task.OUTPUT_TYPE
        assert output_type == expected


def test_tasks_in_the_ways_subfolders_take_the_shared_settings_and_their_alias(manager):
    """A task YAML in `rev/` includes `../_wvs_loglikelihood_yaml`, whose `!function utils.*`
    lm-eval resolves beside that shared file: the task loads with the top folder's functions."""
    from culturespa_tasks.wvs_task import WVSTask

    for way, folder in (("loglik", "loglik"), ("rev", "rev"), ("dist", "dist"), ("cal", "cal")):
        name = task_name(way, "culture_aware", "USA")
        assert (TASK_DIR / folder / f"{name}.yaml").is_file()
        task = manager.load([name])["tasks"][name]
        assert isinstance(task, WVSTask)
        assert task.config.process_results.__module__.endswith("culturespa_tasks/utils")
        suffix = "" if way == "loglik" else f" ({way})"
        assert task.config.task_alias == f"culture_aware USA{suffix}"
    assert not list(TASK_DIR.glob("wvs_*_usa.yaml"))  # no task left in the flat layout


def test_groups_load_with_their_members(manager):
    for name, size in (
        ("wvs_culture_aware", len(PAPER_COUNTRIES)),
        ("wvs_gen_cct_self_alignment", len(PAPER_COUNTRIES)),
        ("wvs_leaderboard", len(ALL_COUNTRIES)),
    ):
        loaded = manager.load([name])
        assert name in loaded["groups"]
        assert len(loaded["tasks"]) == size


def test_generation_tasks_sample_as_the_paper(manager):
    task = manager.load(["wvs_gen_culture_aware_usa"])["tasks"]["wvs_gen_culture_aware_usa"]
    kwargs = task.config.generation_kwargs
    assert kwargs["do_sample"] is True
    assert (kwargs["temperature"], kwargs["top_p"], kwargs["max_gen_toks"]) == (0.6, 0.9, 256)


def test_the_lm_eval_tasks_entry_point_names_this_folder():
    found = {ep.name: ep.value for ep in entry_points(group="lm_eval.tasks")}
    assert found.get("culturespa") == "culturespa_tasks"
