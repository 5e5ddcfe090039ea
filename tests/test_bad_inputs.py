"""Bad input never costs a result: every command and script, given input a careless or hostile
user would give, exits with code 2 and one line on stderr, without a traceback, and leaves every
file as it was (the whole sandbox, the working folder included, is compared before and after).

Each case runs in a fresh sandbox holding a plain file, an empty folder, a read-only folder and
file, reply files, lm-eval results, an older report and build-data configs; `@/` in a case stands
for the sandbox. Commands run in-process (the machine has two cores); a few run as subprocesses
too, as users run them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from culturespa.cli.main import main as culturespa_main

ROOT = Path(__file__).resolve().parents[1]
REPLIES = ROOT / "tests" / "data" / "reference_generations" / "wvs_result_culture_unaware_0.json"
QUESTIONS = ROOT / "data" / "generated" / "sample_questions.jsonl"
TINY_RECIPE = ROOT / "recipes" / "tiny_cpu_smoke.yaml"
DATE = "2024-01-01T00-00-00"


@dataclass(frozen=True)
class Case:
    """One bad input: the command (`culturespa` or a script path), its arguments, and a part of
    the expected error line."""

    id: str
    command: str
    argv: tuple[str, ...]
    message: str


def build_config(**changes) -> str:
    """A valid build-data config with some keys replaced (None removes a key)."""
    config = {
        "model": {"name": "@/empty", "device": "cpu"},
        "output_dir": "@/build",
        "countries": ["USA"],
        "questions_file": str(QUESTIONS),
    }
    for key, value in changes.items():
        section, _, field = key.partition(".")
        if field:
            config.setdefault(section, {})[field] = value
        elif value is None:
            config.pop(section)
        else:
            config[section] = value
    return yaml.safe_dump(config)


def recipe(**changes) -> str:
    """The tiny training recipe with some keys replaced."""
    config = yaml.safe_load(TINY_RECIPE.read_text())
    config.update(changes)
    return yaml.safe_dump(config)


CONFIGS = {
    "valid": build_config(),
    "cct_no": build_config(**{"answer.cross_culture_thinking": "no"}),
    "name_int": build_config(**{"model.name": 123}),
    "min_options_float": build_config(**{"filter.min_options": 2.5}),
    "temperature_hot": build_config(**{"answer.temperature": "hot"}),
    "seed_abc": build_config(seed="abc"),
    "limit_negative": build_config(questions_limit_per_topic=-1),
    "countries_int": build_config(countries=5),
    "countries_empty": build_config(countries=[]),
    "topics_int": build_config(topics=5),
    "batch_text": build_config(**{"model.batch_size": "x"}),
    "output_list": build_config(output_dir=["a", "b"]),
    "output_file": build_config(output_dir="@/file.txt"),
    "output_read_only": build_config(output_dir="@/ro/build"),
    "output_of_user_files": build_config(output_dir="@/results"),
    "backend_bogus": build_config(**{"model.backend": "torch"}),
    "top_p_high": build_config(**{"answer.top_p": 1.5}),
    "variant_bogus": build_config(build={"variants": ["culture_mixed"]}),
    "stop_empty": build_config(generate={"stop": [""]}),
    "unknown_key": build_config(temprature=0.6),
    "no_model": build_config(model=None),
    "questions_latin1": build_config(questions_file="@/questions_latin1.jsonl"),
    "questions_folder": build_config(questions_file="@/empty"),
    "questions_missing": build_config(questions_file="@/nope.jsonl"),
    "not_mapping": "- a\n- b\n",
    "ray_not_mapping": build_config(ray=5),
    "ray_replicas_zero": build_config(**{"ray.replicas": 0}),
    "ray_replicas_text": build_config(**{"ray.replicas": "two"}),
    "ray_address_url": build_config(**{"ray.address": "http://head"}),
    "ray_gpus_negative": build_config(**{"ray.gpus_per_replica": -1}),
    "ray_num_cpus_remote": build_config(**{"ray.address": "auto", "ray.num_cpus": 2}),
    "ray_unknown_key": build_config(**{"ray.workers": 2}),
    "survey_missing": build_config(survey="@/nope"),
    "survey_a_file": build_config(survey="@/file.txt"),
}
RECIPES = {
    "unknown": recipe(lora_rank=8),
    "bool_text": recipe(use_peft="no"),
    "int_list": recipe(mask_check_examples=[1]),
    "lr_text": recipe(learning_rate="abc"),
    "scheduler": recipe(lr_scheduler_type="sometimes"),
    "negative_mask": recipe(mask_check_examples=-1),
}


def loop_config(**changes) -> str:
    """The loop's shipped config (recipes/loop.py) with absolute paths and some keys replaced."""
    config = yaml.safe_load((ROOT / "recipes" / "loop" / "smollm2-135m-instruct.yaml").read_text())
    for key in ("data_config", "joint_recipe", "specific_recipe"):
        config[key] = str(ROOT / config[key])
    config["output_dir"] = "@/loop"
    config.update(changes)
    return yaml.safe_dump(config)


LOOPS = {
    "valid": loop_config(),
    "unknown_key": loop_config(per_topics=3),
    "country": loop_config(countries=["XYZ"]),
    "gen_task": loop_config(eval_task="wvs_culture_aware_usa"),  # a task, not a group
    "data_missing": loop_config(data_config="@/nope.yaml"),
    "data_bad": loop_config(data_config="@/configs/temperature_hot.yaml"),
    "limit_zero": loop_config(eval_limit=0),
    "backend": loop_config(eval_backend="vllm"),
    "survey_missing": loop_config(survey="@/nope"),
}


def results_file(tasks: dict) -> str:
    return json.dumps({"results": tasks, "config": {"model_args": "pretrained=org/model"}})


def make_sandbox(root: Path) -> None:
    """Everything the cases point at; `@/` in the files stands for `root`."""

    def text(relative: str, content: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content.replace("@/", f"{root}/"), encoding="utf-8")

    text("file.txt", "a plain file\n")
    (root / "empty").mkdir()
    text("ro/keep.txt", "kept\n")
    text("ro.json", "[]\n")
    shutil.copy(REPLIES, root / "replies.json")
    text("replies_bool.json", '[{"Q_id": "Q1", "answer": true}]')
    text("replies_list.json", '[{"Q_id": "Q1", "answer": [1]}]')
    text("replies_broken.json", '[{"Q_id": "Q1", "answer": "1"}')
    text("replies_object.json", '{"Q1": "1"}')
    text("replies_unknown.json", '[{"Q_id": "Q999", "answer": "1"}]')
    (root / "replies_latin1.json").write_bytes(b'[{"Q_id": "Q1", "answer": "caf\xe9"}]')
    (root / "questions_latin1.jsonl").write_bytes(b'{"topic": "Corruption", "question": "\xe9"}\n')
    good = {
        "wvs_culture_aware_usa": {"alignment,none": 0.61},
        "wvs_culture_unaware_usa": {"alignment,none": 0.55},
    }
    text(f"results/good/org__model/results_{DATE}.json", results_file(good))
    text(f"results/latin1/org__model/results_{DATE}.json", results_file(good))
    (root / f"results/latin1/org__model/samples_wvs_culture_aware_usa_{DATE}.jsonl").write_bytes(
        b'{"doc_id": 0, "doc": {"qid": "Q1"}, "resps": "\xff"}\n'
    )
    bad_entry = {"wvs_culture_aware_usa": "oops"}
    text(f"results/entry/org__model/results_{DATE}.json", results_file(bad_entry))
    for name in ("comparison.md", "comparison.csv", "leaderboard.md", "leaderboard.csv"):
        text(f"report/{name}", f"an older report's {name}\n")
    text("report/plots/heatmap.png", "older plot\n")
    text("report/lm_eval/org__model/results_old.json", "{}\n")
    older = ["comparison.md", "comparison.csv", "leaderboard.md", "leaderboard.csv"]
    older_report = {"written_by": "culturespa", "files": [*older, "plots/heatmap.png"]}
    text("report/.culturespa-manifest.json", json.dumps(older_report))  # culturespa wrote it
    for name, content in CONFIGS.items():
        text(f"configs/{name}.yaml", content)
    for name, content in RECIPES.items():
        text(f"recipes/{name}.yaml", content)
    for name, content in LOOPS.items():
        text(f"loops/{name}.yaml", content)
    (root / "recipes" / "latin1.yaml").write_bytes(b"learning_rate: 0.1 # \xe9\n")
    (root / "ro").chmod(0o555)
    (root / "ro.json").chmod(0o444)
    hostile_inputs(root)


def alias_bomb(key: str, indent: str = "") -> str:
    """YAML whose `key` holds 9**9 strings through nested aliases (25 s and 3 GB if expanded)."""
    lines = [f"{indent}{key}:", f"{indent}  - &a0 [" + ", ".join(["USA"] * 9) + "]"]
    lines += [f"{indent}  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def without(text: str, *keys: str) -> str:
    """A YAML mapping's text less some top-level keys."""
    data = yaml.safe_load(text)
    for key in keys:
        data.pop(key, None)
    return yaml.safe_dump(data)


def damaged_results(root: Path) -> None:
    """Results files and sample logs damaged in the ways of issue 27, one folder each."""
    good = {"wvs_culture_aware_usa": {"alignment,none": 0.61}}
    folders = {
        "metric_huge": '{"results": {"wvs_culture_aware_usa": {"alignment,none": 1e308}}}',
        "metric_infinity": '{"results": {"wvs_culture_aware_usa": {"alignment,none": Infinity}}}',
        "nested": "[" * 200_000 + "]" * 200_000,
        "digits": '{"results": {"wvs_culture_aware_usa": {"alignment,none": 1%s}}}'
        % ("0" * 100_000),
    }
    for way_field in ("template", "way"):
        kwargs = {"template": "culture_aware", "country": "USA", "way": "loglik"}
        kwargs[way_field] = [kwargs[way_field]]
        configs = {"wvs_culture_aware_usa": {"dataset_kwargs": kwargs}}
        folders[f"{way_field}_list"] = json.dumps({"results": good, "configs": configs})
    for name, survey in (("survey_int", 5), ("survey_gone", str(root / "nope"))):
        kwargs = {"template": "culture_aware", "country": "USA", "way": "loglik", "survey": survey}
        configs = {"wvs_culture_aware_usa": {"dataset_kwargs": kwargs}}
        folders[name] = json.dumps({"results": good, "configs": configs})
    samples = {
        "filtered_int": {"doc": {"qid": "Q1"}, "filtered_resps": 5},
        "options_int": {"doc": {"qid": "Q1", "options": 7}, "filtered_resps": [[-1.0], [-2.0]]},
        "answer_huge": {"doc": {"qid": "Q1"}, "alignment": {"answer": 10**30}},
    }
    for name in samples:
        folders[name] = results_file(good)
    for name, content in folders.items():
        folder = root / "results" / name / "org__model"
        folder.mkdir(parents=True)
        (folder / f"results_{DATE}.json").write_text(content, encoding="utf-8")
        if name in samples:
            log = folder / f"samples_wvs_culture_aware_usa_{DATE}.jsonl"
            log.write_text(json.dumps(samples[name]) + "\n", encoding="utf-8")


def hostile_inputs(root: Path) -> None:
    """The files of issue 27's cases: alias bombs, repeated keys, huge numbers, deep nesting,
    a model folder that ships code, a link where build-data writes."""

    def text(relative: str, content: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content.replace("@/", f"{root}/"), encoding="utf-8")

    damaged_results(root)
    text("replies_digits.json", '[{"Q_id": "Q1", "answer": %s}]' % ("5" * 5000))
    text("replies_nested.json", "[" * 200_000 + "]" * 200_000)
    text("replies_infinity.json", '[{"Q_id": "Q1", "answer": Infinity}]')
    text(
        "configs/alias_countries.yaml",
        without(CONFIGS["valid"], "countries") + alias_bomb("countries"),
    )
    text(
        "configs/alias_stop.yaml",
        CONFIGS["valid"] + "generate:\n" + alias_bomb("stop", indent="  "),
    )
    text("configs/duplicate_key.yaml", CONFIGS["valid"] + "countries: [CHN]\n")
    text("configs/device_cpux.yaml", build_config(**{"model.device": "cpux"}))
    text("configs/device_cuda99.yaml", build_config(**{"model.device": "cuda:99"}))
    text("configs/seed_negative.yaml", build_config(seed=-1))
    text(
        "questions_nested.jsonl", '{"topic": ["Corruption"], "question": "q", "options": [["a"]]}\n'
    )
    text("configs/questions_nested.yaml", build_config(questions_file="@/questions_nested.jsonl"))
    auto_map = {"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.X"}
    text("remote/config.json", json.dumps({"model_type": "x_unknown", "auto_map": auto_map}))
    text("remote/configuration_x.py", "open('ran.txt', 'w').write('code ran')\n")
    text("configs/remote_code.yaml", build_config(**{"model.name": "@/remote"}))
    (root / "linked").mkdir()
    (root / "build_link" / "sft").mkdir(parents=True)
    (root / "build_link" / "sft" / "culture_joint").symlink_to(root / "linked")
    text("configs/sft_link.yaml", build_config(output_dir="@/build_link"))
    text(
        "recipes/alias_targets.yaml",
        without(recipe(), "lora_target_modules") + alias_bomb("lora_target_modules"),
    )
    text("recipes/duplicate_key.yaml", recipe() + "learning_rate: 0.5\n")
    text(
        "loops/alias_countries.yaml", without(LOOPS["valid"], "countries") + alias_bomb("countries")
    )
    text("loops/seed_negative.yaml", loop_config(seed=-1))
    text("loops/device_cpux.yaml", loop_config(device="cpux"))
    text("loops/device_cuda99.yaml", loop_config(device="cuda:99"))


def c(id: str, command: str, argv: str | list[str], message: str) -> Case:
    return Case(id, command, tuple(argv.split() if isinstance(argv, str) else argv), message)


SCORE = [
    c("json-onto-folder", "culturespa", "score @/replies.json --json @/empty", "is a folder"),
    c(
        "json-read-only-folder",
        "culturespa",
        "score @/replies.json --json @/ro/s.json",
        "read-only",
    ),
    c("json-read-only-file", "culturespa", "score @/replies.json --json @/ro.json", "read-only"),
    c("csv-under-a-file", "culturespa", "score @/replies.json --csv @/file.txt/s.csv", "is a file"),
    c("json-and-csv-same", "culturespa", "score @/replies.json --json @/s --csv @/s", "same file"),
    c("answer-boolean", "culturespa", "score @/replies_bool.json", "not true"),
    c("answer-list", "culturespa", "score @/replies_list.json", "not [1]"),
    c("replies-broken-json", "culturespa", "score @/replies_broken.json", "malformed JSON"),
    c("replies-not-a-list", "culturespa", "score @/replies_object.json", "expected a list"),
    c("replies-unknown-item", "culturespa", "score @/replies_unknown.json", "Q999"),
    c("replies-not-utf8", "culturespa", "score @/replies_latin1.json", "not UTF-8"),
    c("replies-folder", "culturespa", "score @/empty", "is a directory"),
    c("replies-missing", "culturespa", "score @/nope.json", "no such file"),
    c("country-unknown", "culturespa", "score @/replies.json --country XYZ", "XYZ"),
    c("bootstrap-negative", "culturespa", "score @/replies.json --bootstrap -1", "--bootstrap"),
    c("seed-text", "culturespa", "score @/replies.json --seed abc", "--seed"),
    c("no-files", "culturespa", "score", "required"),
    c("seed-negative", "culturespa", "score @/replies.json --seed -1", "--seed"),
    c("seed-2-64", "culturespa", "score @/replies.json --seed 18446744073709551616", "--seed"),
    c("reply-5000-digits", "culturespa", "score @/replies_digits.json", "5000 characters"),
    c("replies-nested", "culturespa", "score @/replies_nested.json", "nested deeper than"),
    c("reply-infinity", "culturespa", "score @/replies_infinity.json", "Infinity"),
]
REPORT = [
    c("sample-log-not-utf8", "culturespa", "report @/results/latin1 -o @/out", "not UTF-8"),
    c("task-entry-not-object", "culturespa", "report @/results/entry -o @/out", "not an object"),
    c("output-a-file", "culturespa", "report @/results/good -o @/file.txt", "is a file"),
    c("output-under-a-file", "culturespa", "report @/results/good -o @/file.txt/r", "is a file"),
    c("output-read-only", "culturespa", "report @/results/good -o @/ro", "read-only"),
    c("output-in-read-only", "culturespa", "report @/results/good -o @/ro/r", "read-only"),
    c(
        "compare-unknown-row-into-old-report",
        "culturespa",
        "report @/results/good -o @/report --compare nope aware",
        "matches no row",
    ),
    c(
        "compare-unknown-row-no-plots",
        "culturespa",
        "report @/results/good -o @/new --no-plots --compare nope aware",
        "matches no row",
    ),
    c("no-results", "culturespa", "report @/empty -o @/out", "no usable culturespa results"),
    c("output-of-user-files", "culturespa", "report @/results/good -o @/configs", "is not empty"),
    c(
        "output-of-user-files-no-plots",
        "culturespa",
        "report @/results/good -o @/configs --no-plots",
        "is not empty",
    ),
    c("metric-unknown", "culturespa", "report @/results/good --metric accuracy", "--metric"),
    *(
        c(f"damaged-{name}", "culturespa", f"report @/results/{name} -o @/out", message)
        for name, message in {
            "metric_huge": "results.wvs_culture_aware_usa: metric 'alignment,none'",
            "metric_infinity": "Infinity is not a JSON number",
            "nested": "nested deeper than",
            "digits": "a number of 100001 characters",
            "template_list": "dataset_kwargs.template is",
            "way_list": "dataset_kwargs.way is",
            "filtered_int": "line 1: field 'filtered_resps' is 5",
            "options_int": "line 1: field 'doc.options' is 7",
            "answer_huge": "line 1: field 'alignment.answer'",
            "survey_int": "configs.wvs_culture_aware_usa.dataset_kwargs.survey is 5",
            "survey_gone": "which does not exist any more; pass --survey DIR",
        }.items()
    ),
    c(
        "surveys-mixed",
        "culturespa",
        "report @/results/good @/results/survey_gone -o @/out",
        "results of different surveys cannot be mixed in one report",
    ),
    c(
        "report-survey-a-file",
        "culturespa",
        "report @/results/good --survey @/file.txt -o @/out",
        "is a file, not a folder",
    ),
    c("seed-negative", "culturespa", "report @/results/good --seed -1", "--seed"),
    c("seed-2-64", "culturespa", "report @/results/good --seed 18446744073709551616", "--seed"),
]
EVAL_BASE = "eval --tasks wvs_culture_aware_usa --device cpu"
EVAL = [
    c(
        "output-a-file",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --output-path @/file.txt",
        "is a file",
    ),
    c(
        "output-under-a-file",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --output-path @/file.txt/x",
        "is a file",
    ),
    c(
        "output-read-only",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --output-path @/ro",
        "read-only",
    ),
    c("limit-inf", "culturespa", f"{EVAL_BASE} --model @/empty --limit inf", "--limit"),
    c("limit-nan", "culturespa", f"{EVAL_BASE} --model @/empty --limit nan", "--limit"),
    c("limit-zero", "culturespa", f"{EVAL_BASE} --model @/empty --limit 0", "--limit"),
    c("limit-negative", "culturespa", f"{EVAL_BASE} --model @/empty --limit -3", "--limit"),
    c(
        "limit-fraction-above-1",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --limit 2.5",
        "--limit",
    ),
    c(
        "batch-size-text",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --batch-size x",
        "--batch-size",
    ),
    c("backend-unknown", "culturespa", f"{EVAL_BASE} --model @/empty --backend torch", "--backend"),
    c("model-missing-folder", "culturespa", f"{EVAL_BASE} --model @/nope/model", "does not exist"),
    c("model-empty-folder", "culturespa", f"{EVAL_BASE} --model @/empty", "is empty"),
    c("model-a-file", "culturespa", f"{EVAL_BASE} --model @/file.txt", "is a file"),
    c(
        "trust-remote-code-not-boolean",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --model-args trust_remote_code=yes",
        "trust_remote_code",
    ),
    c("model-args-not-pairs", "culturespa", f"{EVAL_BASE} --model @/empty --model-args x", "x"),
    c("task-unknown", "culturespa", "eval --model @/empty --tasks wvs_nope", "no task matches"),
    c("seed-negative", "culturespa", f"{EVAL_BASE} --model @/empty --seed -1", "--seed"),
    c(
        "seed-2-64",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --seed 18446744073709551616",
        "--seed",
    ),
    c("seeds-negative", "culturespa", f"{EVAL_BASE} --model @/empty --seeds 42,-1", "--seeds"),
    c(
        "device-unknown",
        "culturespa",
        "eval --tasks wvs_culture_aware_usa --model @/empty --device cpux",
        "--device 'cpux'",
    ),
    c(
        "device-cuda-absent",  # no CUDA here, or fewer than 100 GPUs
        "culturespa",
        "eval --tasks wvs_culture_aware_usa --model @/empty --device cuda:99",
        "--device 'cuda:99': torch sees",
    ),
    c(
        "model-args-pretrained-and-model",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --model-args pretrained=@/other",
        "conflicts with --model",
    ),
    c(
        "model-args-unknown-key",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --model-args foo=bar",
        "model argument 'foo'",
    ),
    c(
        "model-args-max-length-negative",
        "culturespa",
        f"{EVAL_BASE} --model @/empty --model-args max_length=-5",
        "max_length=-5",
    ),
]
BUILD = [
    c(f"config-{name}", "culturespa", f"build-data filter --config @/configs/{name}.yaml", message)
    for name, message in {
        "cct_no": 'answer.cross_culture_thinking = "no": expected a boolean',
        "name_int": "model.name = 123: expected text",
        "min_options_float": "filter.min_options = 2.5: expected an integer",
        "temperature_hot": 'answer.temperature = "hot": expected a finite number',
        "seed_abc": 'seed = "abc": expected an integer',
        "limit_negative": "questions_limit_per_topic = -1: expected an integer >= 1",
        "countries_int": "countries = 5",
        "countries_empty": "countries = []",
        "topics_int": "topics = 5",
        "batch_text": 'model.batch_size = "x": expected an integer',
        "output_list": 'output_dir = ["a", "b"]: expected text',
        "output_file": "is a file",
        "output_read_only": "read-only",
        "output_of_user_files": "has no manifest.json",
        "backend_bogus": 'model.backend = "torch"',
        "top_p_high": "answer.top_p = 1.5",
        "variant_bogus": 'build.variants = "culture_mixed"',
        "stop_empty": "generate.stop",
        "unknown_key": "unknown key(s) top level.temprature",
        "no_model": "model is missing",
        "questions_latin1": "not UTF-8",
        "questions_folder": "is a folder",
        "questions_missing": "does not exist",
        "not_mapping": "expected a YAML mapping",
        "ray_not_mapping": "ray must be a mapping",
        "ray_replicas_zero": "ray.replicas = 0: expected an integer >= 1",
        "ray_replicas_text": 'ray.replicas = "two": expected an integer',
        "ray_address_url": 'ray.address = "http://head"',
        "ray_gpus_negative": "ray.gpus_per_replica = -1: expected a number >= 0",
        "ray_num_cpus_remote": "ray.num_cpus caps a local Ray only",
        "ray_unknown_key": "unknown key(s) ray.workers",
        "survey_missing": "config: survey: survey folder",
        "survey_a_file": "is a file, not a folder",
    }.items()
] + [
    c("config-missing", "culturespa", "build-data --config @/nope.yaml", "does not exist"),
    c("no-config", "culturespa", "build-data", "needs --config"),
    c(
        "shard-removed",
        "culturespa",
        "build-data answer --config @/configs/valid.yaml --shard 0/2",
        "--shard was removed: add `ray: {replicas: N}`",
    ),
    c("stage-unknown", "culturespa", "build-data sample --config @/configs/valid.yaml", "sample"),
    *(
        c(f"config-{name}", "culturespa", f"build-data filter --config @/configs/{name}.yaml", msg)
        for name, msg in {
            "alias_countries": "YAML aliases (*a0) are not allowed",
            "alias_stop": "YAML aliases (*a0) are not allowed",
            "duplicate_key": "key 'countries' appears twice",
            "device_cpux": "model.device 'cpux'",
            "device_cuda99": "model.device 'cuda:99': torch sees",
            "seed_negative": "seed = -1",
            "questions_nested": "questions_nested.jsonl:1: unknown topic",
            "remote_code": "loads only with its own Python code",
            "sft_link": "sft/culture_joint is a symbolic link",
        }.items()
    ),
]
OTHERS = [
    c("train-config-missing", "culturespa", "train --config @/nope.yaml", "does not exist"),
    c("train-unknown-key", "culturespa", "train --config @/recipes/unknown.yaml", "lora_rank"),
    c(
        "train-output-of-user-files",
        "culturespa",
        [
            "train",
            "--config",
            str(TINY_RECIPE),
            "--model_name_or_path",
            "@/empty",
            "--dataset_path",
            "@/empty",
            "--output_dir",
            "@/results",
        ],
        "results is not empty and has no .culturespa-manifest.json",
    ),
    c(
        "train-specific-output-of-user-files",
        "culturespa",
        [
            "train",
            "--config",
            str(TINY_RECIPE),
            "--model_name_or_path",
            "@/empty",
            "--dataset_path",
            "@/empty",
            "--countries",
            "USA",
            "--output_dir",
            "@/results",
        ],
        "is not empty and has no .culturespa-manifest.json",
    ),
    c(
        "train-output-a-file",
        "culturespa",
        ["train", "--config", str(TINY_RECIPE), "--output_dir", "@/file.txt"],
        "file.txt is a file, not a folder",
    ),
    c("merge-not-an-adapter", "culturespa", "merge @/empty @/merged", "adapter_config"),
    c("demo-limit-negative", "culturespa", "demo --limit -1", "--limit"),
    c("demo-threads-zero", "culturespa", "demo --threads 0", "--threads"),
    c("demo-batch-size-text", "culturespa", "demo --batch-size x", "--batch-size"),
    c("demo-output-a-file", "culturespa", "demo -o @/file.txt", "is a file"),
    c("demo-output-of-user-files", "culturespa", "demo -o @/configs --threads 1", "is not empty"),
    c(
        "eval-output-of-user-files",
        "culturespa",
        "eval --model @/empty --tasks wvs_culture_aware_usa --output-path @/configs",
        "is not empty",
    ),
    c("demo-country-unknown", "culturespa", "demo --countries XYZ", "XYZ"),
    c("demo-template-unknown", "culturespa", "demo --templates sarcastic", "sarcastic"),
    c("demo-way-unknown", "culturespa", "demo --ways loglik,shuffle", "unknown way 'shuffle'"),
    c("demo-ways-empty", "culturespa", "demo --ways ,", "no way given"),
    c("demo-ways-a-number", "culturespa", "demo --ways 2", "--ways"),
    c("tasks-glob-matches-nothing", "culturespa", "tasks wvs_nope_*", "no task matches"),
    c("model-action-unknown", "culturespa", "model delete", "delete"),
    c("command-unknown", "culturespa", "evaluate", "evaluate"),
    c("baselines-country-unknown", "culturespa", "baselines --country XYZ", "XYZ"),
    c("baselines-metric-unknown", "culturespa", "baselines --metric accuracy", "--metric"),
    c("baselines-json-a-folder", "culturespa", "baselines --json @/empty", "is a folder"),
    c("eval-seeds-text", "culturespa", "eval --model m --tasks t --seeds 42,x", "--seeds"),
    c("demo-seed-negative", "culturespa", "demo --seed -1", "--seed"),
    c(
        "survey-build-not-the-wvs-csv",
        "culturespa",
        "survey build --wvs @/file.txt --out @/survey",
        "no B_COUNTRY_ALPHA column",
    ),
    c("tasks-build-no-survey", "culturespa", "tasks build --out @/tasks", "tasks build --survey"),
    c("demo-survey-missing", "culturespa", "demo --survey @/nope -o @/out", "does not exist"),
    c(
        "score-survey-missing",
        "culturespa",
        "score @/replies.json --survey @/nope",
        "does not exist",
    ),
]
SCRIPTS = [
    c("train-module-config", "culturespa/cli/train.py", "--config @/nope.yaml", "does not exist"),
    c("merge-module-adapter", "culturespa/cli/merge.py", "@/empty @/merged", "adapter_config"),
    c("sft-config-missing", "recipes/sft.py", "--config @/nope.yaml", "does not exist"),
    c("sft-config-folder", "recipes/sft.py", "--config @/empty", "is a folder"),
    c("sft-config-no-value", "recipes/sft.py", "--config", "needs a path"),
    c("sft-config-not-utf8", "recipes/sft.py", "--config @/recipes/latin1.yaml", "not UTF-8"),
    c("sft-unknown-key", "recipes/sft.py", "--config @/recipes/unknown.yaml", "lora_rank"),
    c("sft-bool-as-text", "recipes/sft.py", "--config @/recipes/bool_text.yaml", "use_peft"),
    c("sft-int-as-list", "recipes/sft.py", "--config @/recipes/int_list.yaml", "mask_check"),
    c("sft-number-text", "recipes/sft.py", "--config @/recipes/lr_text.yaml", "learning_rate"),
    c("sft-scheduler", "recipes/sft.py", "--config @/recipes/scheduler.yaml", "sometimes"),
    c("sft-negative", "recipes/sft.py", "--config @/recipes/negative_mask.yaml", "-1"),
    c("sft-flag-type", "recipes/sft.py", "--learning_rate fast", "learning_rate"),
    c(
        "sft-unknown-flag",
        "recipes/sft.py",
        ["--config", str(TINY_RECIPE), "--no_such_flag", "1"],
        "no_such_flag",
    ),
    c(
        "eval-specific-batch",
        "culturespa",
        "eval --tasks wvs_culture_aware --adapters @/empty --batch-size x",
        "--batch-size",
    ),
    c(
        "eval-specific-limit",
        "culturespa",
        "eval --tasks wvs_culture_aware --adapters @/empty --limit 0",
        "--limit",
    ),
    c(
        "eval-specific-no-index",
        "culturespa",
        "eval --tasks wvs_culture_aware --adapters @/empty",
        "adapters.json",
    ),
    c(
        "eval-specific-output-a-file",
        "culturespa",
        "eval --tasks wvs_culture_aware --adapters @/empty --output-path @/file.txt",
        "is a file",
    ),
    c("loop-no-config", "recipes/loop.py", "", "--config is required"),
    c("loop-subcommand-no-config", "culturespa", "loop", "--config is required"),
    c("loop-module-no-config", "culturespa/loop/main.py", "", "--config is required"),
    c(
        "loop-unknown-name",
        "culturespa",
        "loop --config nope --dry-run",
        "packaged loop configs: debiased, default, demo, smollm2-135m-instruct, tiny",
    ),
    c("loop-config-missing", "recipes/loop.py", "--config @/nope.yaml", "does not exist"),
    c("loop-unknown-key", "recipes/loop.py", "--config @/loops/unknown_key.yaml", "per_topics"),
    c("loop-country", "recipes/loop.py", "--config @/loops/country.yaml", "XYZ"),
    c("loop-gen-task", "recipes/loop.py", "--config @/loops/gen_task.yaml", "eval_task"),
    c("loop-data-missing", "recipes/loop.py", "--config @/loops/data_missing.yaml", "nope.yaml"),
    c("loop-data-bad", "recipes/loop.py", "--config @/loops/data_bad.yaml", "answer.temperature"),
    c("loop-limit-zero", "recipes/loop.py", "--config @/loops/limit_zero.yaml", "eval_limit"),
    c("loop-backend", "recipes/loop.py", "--config @/loops/backend.yaml", "eval_backend"),
    c(
        "loop-survey-missing",
        "recipes/loop.py",
        "--config @/loops/survey_missing.yaml",
        "config: survey: survey folder",
    ),
    c(
        "loop-per-topic",
        "recipes/loop.py",
        "--config @/loops/valid.yaml --per-topic 0",
        "--per-topic",
    ),
    c("loop-stages", "recipes/loop.py", "--config @/loops/valid.yaml --stages deploy", "--stages"),
    c(
        "loop-output-a-file",
        "recipes/loop.py",
        "--config @/loops/valid.yaml --output-dir @/file.txt",
        "is a file",
    ),
    c("loop-compare-no-run", "recipes/loop.py", "--compare @/empty @/ro", "not a loop run"),
    c(
        "loop-folder-of-user-files",
        "recipes/loop.py",
        "--config @/loops/valid.yaml --output-dir @/results",
        "has no loop.json",
    ),
    c(
        "loop-folder-of-user-files-dry-run",
        "recipes/loop.py",
        "--config @/loops/valid.yaml --output-dir @/results --dry-run",
        "has no loop.json",
    ),
    c(
        "eval-specific-country",
        "culturespa",
        "eval --tasks wvs_culture_aware --adapters @/empty --countries XYZ",
        "XYZ",
    ),
    c("merge-not-an-adapter", "recipes/merge_adapter.py", "@/empty @/merged", "adapter_config"),
    c("merge-dtype", "recipes/merge_adapter.py", "@/empty @/merged --dtype int4", "--dtype"),
    c("bench-parts", "benchmarks/run.py", "--parts everything", "--parts"),
    c("bench-items", "benchmarks/run.py", "--items 0", "--items"),
    c("bench-out-a-file", "benchmarks/run.py", "--out @/file.txt", "is a file"),
    c("bench-country", "benchmarks/run.py", "--country XYZ", "XYZ"),
    c("bench-part-unknown", "benchmarks/parts.py", "everything @/c.json @/r.json", "everything"),
    c("bench-part-config", "benchmarks/parts.py", "eval_loglik @/c.json @/r.json", "c.json"),
    c("bench-default-items", "benchmarks/default_model.py", "--items -2", "--items"),
    c("bench-profile-dtype", "benchmarks/answer_stage_profile.py", "--dtypes int4", "--dtypes"),
    c(
        "bench-profile-questions",
        "benchmarks/answer_stage_profile.py",
        "--questions 0",
        "--questions",
    ),
    c("tasks-generate-into-file", "culturespa_tasks/generate.py", "@/file.txt", "is a file"),
    c("tiny-model-into-file", "tests/support/tiny_model.py", "@/file.txt", "is a file"),
    c("tiny-model-module", "culturespa/inference/tiny_model.py", "@/file.txt", "is a file"),
    c("gpu-check-steps", "scripts/gpu_check.py", "--cpu --steps 1", "--steps 1"),
    c("gpu-check-steps-text", "scripts/gpu_check.py", "--steps many", "--steps"),
    c("gpu-check-out-not-empty", "scripts/gpu_check.py", "--cpu --out @/configs", "not empty"),
    c("gpu-check-wheels-a-file", "scripts/gpu_check.py", "--wheels @/file.txt", "is a file"),
    c("lock-vllm-unknown-flag", "scripts/lock_vllm_cpu.py", "--upgrade", "--upgrade"),
    c("tiny-model-no-folder", "tests/support/tiny_model.py", "", "required"),
    *(
        c(f"sft-{name}", "recipes/sft.py", ["--config", str(TINY_RECIPE), *flags.split()], msg)
        for name, (flags, msg) in {
            "learning-rate-nan": ("--learning_rate nan", "learning_rate = NaN"),
            "learning-rate-negative": ("--learning_rate -1", "learning_rate = -1.0"),
            "lora-r-zero": ("--lora_r 0", "lora_r = 0"),
            "no-epoch-no-step": ("--num_train_epochs -1 --max_steps -1", "num_train_epochs"),
            "seed-negative": ("--seed -1", "seed = -1"),
            "remote-code": (
                "--model_name_or_path @/remote --dataset_path @/empty",
                "loads only with its own Python code",
            ),
        }.items()
    ),
    c(
        "sft-output-of-user-files",
        "recipes/sft.py",
        [
            "--config",
            str(TINY_RECIPE),
            "--model_name_or_path",
            "@/empty",
            "--dataset_path",
            "@/empty",
            "--output_dir",
            "@/results",
        ],
        "is not empty and has no .culturespa-manifest.json",
    ),
    c("sft-alias-bomb", "recipes/sft.py", "--config @/recipes/alias_targets.yaml", "aliases"),
    c(
        "sft-duplicate-key",
        "recipes/sft.py",
        "--config @/recipes/duplicate_key.yaml",
        "key 'learning_rate' appears twice",
    ),
    c("loop-seed-flag", "recipes/loop.py", "--config @/loops/valid.yaml --seed -1", "--seed"),
    c("loop-seed-config", "recipes/loop.py", "--config @/loops/seed_negative.yaml", "seed = -1"),
    c("loop-device", "recipes/loop.py", "--config @/loops/device_cpux.yaml", "device 'cpux'"),
    c(
        "loop-device-cuda-absent",
        "recipes/loop.py",
        "--config @/loops/device_cuda99.yaml",
        "device 'cuda:99': torch sees",
    ),
    c("loop-alias-bomb", "recipes/loop.py", "--config @/loops/alias_countries.yaml", "aliases"),
    c(
        "eval-specific-seed",
        "culturespa",
        "eval --tasks wvs_culture_aware --adapters @/empty --seed -1",
        "--seed",
    ),
]
CASES = [
    *(("score", x) for x in SCORE),
    *(("report", x) for x in REPORT),
    *(("eval", x) for x in EVAL),
    *(("build-data", x) for x in BUILD),
    *(("cli", x) for x in OTHERS),
    *(("script", x) for x in SCRIPTS),
]

_MODULES: dict[str, object] = {}


def script_module(relative: str):
    """A script imported once as a module (scripts are not part of the package)."""
    if relative not in _MODULES:
        name = "bad_input_" + relative.replace("/", "_").removesuffix(".py")
        spec = importlib.util.spec_from_file_location(name, ROOT / relative)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        _MODULES[relative] = module
    return _MODULES[relative]


def run_in_process(case: Case, argv: list[str]) -> int:
    if case.command == "culturespa":
        entry = culturespa_main
    else:
        module = script_module(case.command)
        entry = getattr(module, "cli", None) or module.main
    try:
        code = entry(argv)
    except SystemExit as exc:
        code = exc.code
    return code


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` with its permissions and, for a file, its bytes."""
    return {
        str(p.relative_to(root)): (p.stat().st_mode, p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    root = tmp_path / "sandbox"
    root.mkdir()
    make_sandbox(root)
    monkeypatch.chdir(root)  # default outputs (runs/report, runs/eval, ...) land here
    return root


def expand(case: Case, root: Path) -> list[str]:
    return [a.replace("@/", f"{root}/") for a in case.argv]


def assert_one_line_error(err: str, case: Case) -> None:
    assert "Traceback" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert case.message in err, err


@pytest.mark.parametrize(("group", "case"), CASES, ids=[f"{g}:{x.id}" for g, x in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(group, case, sandbox, capsys):
    before = snapshot(sandbox)
    code = run_in_process(case, expand(case, sandbox))
    err = capsys.readouterr().err
    assert code == 2, err
    assert_one_line_error(err, case)
    assert snapshot(sandbox) == before


SUBPROCESS_CASES = [
    (
        "culturespa",
        ("build-data", "filter", "--config", "@/configs/cct_no.yaml"),
        "answer.cross_culture_thinking",
    ),
    ("culturespa", ("eval", *EVAL_BASE.split()[1:], "--model", "@/empty"), "is empty"),
    ("culturespa", ("score", "@/replies.json", "--json", "@/empty"), "is a folder"),
    ("recipes/sft.py", ("--config", "@/recipes/unknown.yaml"), "lora_rank"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "argv", "message"), SUBPROCESS_CASES)
def test_bad_input_as_a_user_runs_it(command, argv, message, sandbox):
    """The same promise from a real process: its exit code and everything on its stderr."""
    case = Case("subprocess", command, argv, message)
    prefix = (
        [sys.executable, "-m", "culturespa.cli.main"]
        if command == "culturespa"
        else [sys.executable, str(ROOT / command)]
    )
    before = snapshot(sandbox)
    result = subprocess.run(
        [*prefix, *expand(case, sandbox)],
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr, case)
    assert snapshot(sandbox) == before


def test_the_table_covers_every_command():
    """Each `culturespa` subcommand that takes input and each script has a bad-input case."""
    from test_cli_help import SCRIPTS as SCRIPT_PATHS
    from test_cli_help import SUBCOMMANDS

    covered = {x.argv[0] for _, x in CASES if x.command == "culturespa" and x.argv}
    takes_no_input = {"tasks-path", "model"}
    for path in SUBCOMMANDS:
        if len(path) == 1 and path[0] not in takes_no_input:
            assert path[0] in covered, path
    scripts = {x.command for _, x in CASES if x.command != "culturespa"}
    for script in SCRIPT_PATHS:
        if str(script) != "culturespa/cli/main.py":
            assert str(script) in scripts, script
