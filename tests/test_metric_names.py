"""One home for the metric names (`culturespa.scoring.metric_names`): the task folder's shared
YAMLs list exactly `TASK_METRICS` of their way, and the `process_results` they name return
exactly those keys (lm-eval drops a key that no `metric_list` entry names, and fails on a
listed metric that `process_results` does not return)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from culturespa.prompts.task_names import WAYS, parse_task_name
from culturespa.scoring.metric_names import COUNT_METRICS, GROUP_METRICS, TASK_METRICS
from culturespa_tasks.generate import SHARED_YAML, all_configs

TASK_DIR = Path(__file__).resolve().parents[1] / "culturespa_tasks"


def shared_settings(way: str) -> dict:
    """The shared YAML a way's tasks include, wherever it sits in the task folder."""
    name = Path(SHARED_YAML[way]).name
    (path,) = [p for p in TASK_DIR.rglob(name) if "__pycache__" not in p.parts]
    return yaml.safe_load(path.read_text(encoding="utf-8").replace("!function ", ""))


def test_every_way_of_asking_has_its_metrics():
    assert set(TASK_METRICS) == set(WAYS) == set(SHARED_YAML)


@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_ways_shared_yaml_lists_exactly_its_metrics(way):
    listed = shared_settings(way)["metric_list"]
    assert tuple(m["metric"] for m in listed) == TASK_METRICS[way]
    for entry in listed:  # a count is summed, and fewer is better; nothing else is summed
        counts = entry["metric"] in COUNT_METRICS
        assert (entry["aggregation"] == "utils.count") == counts, entry
        assert not counts or entry["higher_is_better"] is False, entry


def fake_results(way: str, doc: dict) -> list:
    """What lm-eval hands `process_results` for one doc: a reply, or one (log-likelihood,
    is_greedy) per listed option of every prompt the doc asks."""
    if way == "gen":
        return ["2"]
    if way == "dist":
        return ["1: 40%, 2: 30%, 3: 20%, 4: 10%"]
    prompts = len(doc.get("users", [doc["user"]]))
    options = len(doc["shown"])
    return [(-1.0 - i, False) for i in range(prompts * options)]


@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_ways_process_results_returns_exactly_its_metrics(way):
    utils = importlib.import_module("culturespa_tasks.utils")
    process = getattr(utils, shared_settings(way)["process_results"].removeprefix("utils."))
    doc = utils.build_doc("culture_aware", "USA", "Q1", way)
    assert tuple(process(doc, fake_results(way, doc))) == TASK_METRICS[way]


def test_an_unusable_stated_distribution_reports_the_same_metrics():
    from culturespa_tasks.utils import build_doc, process_distribution_results

    doc = build_doc("culture_aware", "USA", "Q1", "dist")
    assert tuple(process_distribution_results(doc, ["no idea"])) == TASK_METRICS["dist"]


def test_groups_average_every_metric_of_their_tasks_but_the_counts():
    for config in all_configs().values():
        if "group" not in config:
            continue
        way = parse_task_name(config["task"][0]).way
        averaged = tuple(m["metric"] for m in config["aggregate_metric_list"])
        assert averaged == tuple(m for m in TASK_METRICS[way] if m not in COUNT_METRICS)
        assert averaged == GROUP_METRICS[way]
