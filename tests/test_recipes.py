"""Every training recipe parses with the real TrlParser; accelerate configs and README commands hold."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from culturespa.errors import CulturespaError
from culturespa.training.arguments import parse_recipe_args

pytest.importorskip("trl")

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
RECIPE_FILES = sorted(RECIPES.glob("*.yaml"))
ACCELERATE_FILES = sorted((RECIPES / "accelerate").glob("*.yaml"))
PAPER_RECIPES = [p for p in RECIPE_FILES if p.name.startswith("llama3-8b-instruct_")]


@pytest.fixture(scope="module")
def sft():
    """`culturespa train`'s module: the parser that `recipes/sft.py` uses too."""
    from culturespa.cli import train

    return train


def parse(sft, *argv: str):
    """Parse like `recipes/sft.py` does; a deprecated (renamed) field is an error here too.

    Without a GPU, bf16 recipes are parsed with --use_cpu true: transformers refuses bf16 on a
    machine without a bf16 device otherwise, which says nothing about the recipe."""
    import torch

    argv = list(argv)
    if not torch.cuda.is_available() and "--use_cpu" not in argv:
        argv += ["--use_cpu", "true"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        return parse_recipe_args(argv, sft.make_parser())[:3]


def test_recipes_exist():
    names = {p.name for p in RECIPE_FILES}
    for expected in (
        "llama3-8b-instruct_culture_joint.yaml",
        "llama3-8b-instruct_culture_specific.yaml",
        "llama3-8b-instruct_cross_culture_thinking_joint.yaml",
        "smollm2-135m-instruct_cpu_smoke.yaml",
        "tiny_cpu_smoke.yaml",
    ):
        assert expected in names


@pytest.mark.parametrize("recipe", RECIPE_FILES, ids=lambda p: p.name)
def test_recipe_parses_with_the_real_parser(sft, recipe):
    script_args, training_args, model_args = parse(sft, "--config", str(recipe))
    assert script_args.dataset_path
    assert model_args.model_name_or_path
    assert model_args.use_peft
    assert training_args.assistant_only_loss
    assert script_args.chat_template in ("chatml", "llama3")


@pytest.mark.parametrize("recipe", PAPER_RECIPES, ids=lambda p: p.name)
def test_paper_recipes_hold_the_paper_hyperparameters(sft, recipe):
    script_args, args, model_args = parse(sft, "--config", str(recipe))
    assert model_args.model_name_or_path == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert (model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout) == (8, 16, 0.0)
    assert model_args.lora_target_modules == "all-linear"
    assert args.learning_rate == pytest.approx(1e-4)
    assert str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)) == "cosine"
    assert args.warmup_steps == pytest.approx(0.1)
    assert args.num_train_epochs == 1 and args.max_steps == -1
    assert args.bf16 is True
    specific = "culture_specific" in recipe.name
    assert script_args.effective_batch_size == (8 if specific else 128)
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == (
        8 if specific else 128
    )
    assert (script_args.countries == "all") is specific


def test_flags_override_the_yaml(sft):
    recipe = RECIPES / "llama3-8b-instruct_culture_joint.yaml"
    _, args, model_args = parse(
        sft, "--config", str(recipe), "--learning_rate", "3e-4", "--lora_r", "16"
    )
    assert args.learning_rate == pytest.approx(3e-4)
    assert model_args.lora_r == 16


@pytest.mark.parametrize("bad_key", ["warmup_ratio", "max_seq_length", "lora_rank"])
def test_unknown_or_renamed_yaml_key_is_an_error(sft, tmp_path, bad_key):
    config = yaml.safe_load((RECIPES / "tiny_cpu_smoke.yaml").read_text())
    config[bad_key] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(CulturespaError, match=f"unknown key.*{bad_key}"):
        parse(sft, "--config", str(path))


def test_unknown_flag_is_an_error(sft):
    with pytest.raises(CulturespaError, match="no_such_flag"):
        parse(sft, "--config", str(RECIPES / "tiny_cpu_smoke.yaml"), "--no_such_flag", "1")


def test_the_recipe_is_read_once_and_named(sft, monkeypatch, tmp_path):
    """One --config parse: the file is read once (TRL's own reading is not used) and its path
    comes back for the run record; a packaged recipe is found by its path or name anywhere."""
    import builtins
    import pathlib

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text((RECIPES / "tiny_cpu_smoke.yaml").read_text())
    reads = []
    read_text, open_file = pathlib.Path.read_text, builtins.open

    def counting_read_text(self, *args, **kwargs):
        reads.append(str(self))
        return read_text(self, *args, **kwargs)

    def counting_open(file, *args, **kwargs):
        reads.append(str(file))
        return open_file(file, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", counting_read_text)
    monkeypatch.setattr(builtins, "open", counting_open)
    parser = sft.make_parser()
    *_, path = parse_recipe_args(["--config", str(recipe), "--use_cpu", "true"], parser)
    monkeypatch.undo()
    assert reads.count(str(recipe)) == 1
    assert path == recipe
    monkeypatch.chdir(tmp_path)
    for spec in ("recipes/tiny_cpu_smoke.yaml", "tiny_cpu_smoke"):
        *_, path = parse_recipe_args(["--config", spec], sft.make_parser())
        assert path.samefile(RECIPES / "tiny_cpu_smoke.yaml"), spec
    assert parse_recipe_args(["--use_cpu", "true"], sft.make_parser())[3] is None


def test_recipes_keep_templates_out_of_yaml():
    for recipe in RECIPE_FILES:
        assert "{%" not in yaml.safe_load(recipe.read_text()).get("chat_template", "")


# --- accelerate configs ---------------------------------------------------------------------


def launch_destinations() -> set[str]:
    from accelerate.commands.launch import launch_command_parser

    return {action.dest for action in launch_command_parser()._actions}


def test_accelerate_configs_exist():
    assert {p.name for p in ACCELERATE_FILES} >= {
        "single_gpu.yaml",
        "multi_gpu.yaml",
        "fsdp.yaml",
        "deepspeed_zero3.yaml",
    }


@pytest.mark.parametrize("config", ACCELERATE_FILES, ids=lambda p: p.name)
def test_accelerate_config_is_valid(config):
    from accelerate.commands.config.config_args import ClusterConfig

    cluster = ClusterConfig.from_yaml_file(str(config))
    known = launch_destinations()
    for key in cluster.fsdp_config:
        assert key in known, f"{config.name}: unknown fsdp_config key {key}"
    for key in cluster.deepspeed_config:
        assert key in known, f"{config.name}: unknown deepspeed_config key {key}"
    text = config.read_text()
    assert f"--config_file recipes/accelerate/{config.name}" in text, "document the command"


def test_deepspeed_config_is_zero3_and_fsdp_is_full_shard():
    from accelerate.commands.config.config_args import ClusterConfig

    ds = ClusterConfig.from_yaml_file(str(RECIPES / "accelerate" / "deepspeed_zero3.yaml"))
    assert ds.distributed_type.value == "DEEPSPEED" and ds.deepspeed_config["zero_stage"] == 3
    fsdp = ClusterConfig.from_yaml_file(str(RECIPES / "accelerate" / "fsdp.yaml"))
    assert fsdp.distributed_type.value == "FSDP"


# --- README and smoke script ------------------------------------------------------------------


def readme_paths() -> set[str]:
    text = (RECIPES / "README.md").read_text()
    return set(
        re.findall(
            r"(?<![\w/.-])((?:recipes|culturespa|tests)/[\w./-]+\.(?:py|yaml|sh|jinja))", text
        )
    )


def test_readme_names_only_existing_files():
    paths = readme_paths()
    assert "recipes/sft.py" in paths
    missing = sorted(
        p for p in paths if not (REPO / p).exists() and not p.startswith("recipes/data/")
    )
    assert not missing, f"recipes/README.md names missing files: {missing}"


def test_readme_recipe_commands_parse(sft):
    """Every `recipes/sft.py --config X` line of the README parses with its flags."""
    text = (RECIPES / "README.md").read_text().replace("\\\n", " ")
    commands = re.findall(r"recipes/sft\.py (--config [^\n`]+)", text)
    assert commands
    for command in commands:
        argv = [a for a in command.split() if a]
        assert (REPO / argv[1]).is_file(), argv[1]
        parse(sft, *argv)


def _has_train_subcommand() -> bool:
    from culturespa.cli.main import build_parser

    return "train" in build_parser()._subparsers._group_actions[0].choices


@pytest.mark.slow
def test_the_tiny_loop_end_to_end(tmp_path):
    """`make smoke` = culturespa loop --config tiny: the tiny model, data, joint and specific
    adapters, their evaluations and the report, as one chain (few items, one process)."""
    if not _has_train_subcommand():
        pytest.skip("culturespa train is not in this tree yet")
    config = yaml.safe_load((RECIPES / "loop" / "tiny.yaml").read_text())
    config.update(output_dir=str(tmp_path / "smoke"), countries=["USA", "CHN"], in_process=True)
    config.update({k: str(RECIPES.parent / config[k]) for k in ("data_config", "joint_recipe")})
    config["specific_recipe"] = config["joint_recipe"]
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "culturespa.cli.main", "loop", "--config", str(path), "--limit", "3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    root = tmp_path / "smoke"
    assert (root / "tiny_llama" / "config.json").is_file()  # built by the loop itself
    assert (root / "train" / "culture_joint" / "adapter_model.safetensors").is_file()
    index = json.loads((root / "train" / "culture_specific" / "adapters.json").read_text())
    assert sorted(index["adapters"]) == ["CHN", "USA"]  # every country got training rows
    assert len(list((root / "eval").rglob("results_*.json"))) == 4  # base, joint, USA, CHN
    summary = json.loads((root / "summary.json").read_text())
    assert set(summary["rows"]) == {"base", "joint", "specific"}
    assert set(summary["rows"]["specific"]["countries"]) == {"USA", "CHN"}  # one row
    assert (root / "report" / "leaderboard.md").is_file()


# --- one parser for the subcommand and the script ---------------------------------------------


def help_options(entry, argv: list[str], capsys) -> set[str]:
    """The option strings a --help lists."""
    with pytest.raises(SystemExit) as exit_info:
        entry([*argv, "--help"])
    assert exit_info.value.code == 0
    return set(re.findall(r"(?<![\w-])--[a-z][\w-]*", capsys.readouterr().out))


@pytest.mark.parametrize(
    ("command", "script"), [("train", "sft.py"), ("merge", "merge_adapter.py")]
)
def test_subcommand_and_script_share_one_parser(command, script, capsys):
    """`culturespa train --help` and `recipes/sft.py --help` list the same options (and so do
    `culturespa merge` and `recipes/merge_adapter.py`)."""
    from culturespa.cli.main import main

    spec = importlib.util.spec_from_file_location(f"recipes_{command}", RECIPES / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from_subcommand = help_options(main, [command], capsys)
    assert help_options(module.main, [], capsys) == from_subcommand
    expected = {"--config", "--dataset_path", "--lora_r", "--learning_rate", "--countries"}
    assert from_subcommand >= (expected if command == "train" else {"--base-model", "--dtype"})
