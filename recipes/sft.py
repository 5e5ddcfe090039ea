"""LoRA SFT on CultureSPA training data, with loss on the assistant's answer only.

# Culture-joint adapter for Llama-3-8B-Instruct on one GPU (data: culturespa build-data)
```bash
accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/sft.py \
    --config recipes/llama3-8b-instruct_culture_joint.yaml
```

# One culture-specific adapter per country, all in one command (or --countries USA,CHN)
```bash
accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/sft.py \
    --config recipes/llama3-8b-instruct_culture_specific.yaml --countries all
```

# CPU smoke run on the tiny test model; flags override the YAML, unknown YAML keys are errors
```bash
python recipes/sft.py --config recipes/tiny_cpu_smoke.yaml \
    --model_name_or_path runs/tiny_llama --dataset_path runs/data/tiny/sft/culture_joint
```
"""

from __future__ import annotations

import argparse
import gc
import shlex
import sys
from pathlib import Path


def train_adapter(
    script_args,
    training_args,
    model_args,
    dataset_path,
    output_dir,
    provenance: dict,
    country: str | None = None,
    finish: bool = True,
) -> Path:
    """Train and save one LoRA adapter on one training set; return the saved folder.

    `provenance` holds the recipe path and the command for the model card; `finish` ends the
    trainer (trackers, process group), so only the last of several adapters sets it."""
    from transformers import AutoTokenizer
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    from culturespa import training as cst

    dataset = cst.load_sft_dataset(dataset_path, script_args.max_train_examples)
    data_info = cst.describe_dataset(dataset, dataset_path)
    dataset = dataset.select_columns(["messages"])

    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    sample = dataset.select(range(min(script_args.mask_check_examples, len(dataset))))["messages"]
    if script_args.chat_template is not None:
        template = cst.read_training_template(script_args.chat_template)
        if script_args.check_template_matches_model:
            cst.check_template_matches(tokenizer, template, sample[:8])
        tokenizer.chat_template = template
    end_of_turn = ""
    if training_args.assistant_only_loss and sample:
        end_of_turn = cst.check_assistant_mask(tokenizer, sample, None)

    training_args.output_dir = str(output_dir)
    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = dict(result.metrics, train_examples=len(dataset))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    trainer.save_model(str(output_dir))
    if trainer.accelerator.is_main_process:
        peft_config = get_peft_config(model_args)
        cst.write_run_files(
            output_dir,
            base_model=model_args.model_name_or_path,
            recipe=provenance.get("recipe"),
            command=provenance.get("command", ""),
            data=data_info,
            hyperparameters=cst.hyperparameters(training_args),
            lora=cst.lora_summary(peft_config),
            metrics=metrics,
            chat_template=script_args.chat_template,
            end_of_turn=end_of_turn,
            country=country,
        )
        trainer.accelerator.print(f"adapter saved to {output_dir}")
    trainer.accelerator.wait_for_everyone()
    if finish and hasattr(trainer, "end"):  # transformers>=5.18: trackers, process group
        trainer.end()
    del trainer
    gc.collect()
    return Path(output_dir)


def main(script_args, training_args, model_args, provenance: dict | None = None) -> None:
    """Train the joint adapter, or one adapter per country when `countries` is set."""
    from culturespa import training as cst

    provenance = provenance or {}
    cst.prepare_arguments(script_args, training_args, model_args)
    if script_args.countries is None:
        train_adapter(
            script_args,
            training_args,
            model_args,
            script_args.dataset_path,
            training_args.output_dir,
            provenance,
        )
        return
    root = Path(training_args.output_dir)
    sets = cst.culture_specific_sets(script_args.dataset_path, script_args.countries)
    adapters = {}
    for number, (code, path) in enumerate(sets.items(), start=1):
        saved = train_adapter(
            script_args,
            training_args,
            model_args,
            path,
            root / code,
            provenance,
            country=code,
            finish=number == len(sets),
        )
        adapters[code] = str(saved)
    cst.write_adapter_index(root, adapters, model_args.model_name_or_path)


def make_parser(prog: str | None = None):
    """The TrlParser over culturespa's script arguments, TRL's SFTConfig and ModelConfig."""
    from trl import ModelConfig, SFTConfig, TrlParser

    from culturespa.cli.parsing import one_line_errors
    from culturespa.training import CultureSPAScriptArguments

    parser = TrlParser((CultureSPAScriptArguments, SFTConfig, ModelConfig), prog=prog)
    return one_line_errors(parser)


def config_path(argv: list[str]) -> str | None:
    """The --config value in a command line, if any."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config")
    return parser.parse_known_args(argv)[0].config


def parse_args(argv: list[str], parser=None):
    """(script args, SFTConfig, ModelConfig); every problem is a CulturespaError or, for a flag,
    argparse's exit 2 with one line.

    The recipe is read and checked first (missing or malformed file, unknown keys, values of the
    wrong type); then TRL parses it with the flags, and its own checks (ValueError) become
    one-line errors too.
    """
    from culturespa.errors import CulturespaError
    from culturespa.training import check_recipe, read_recipe

    parser = parser or make_parser(prog="recipes/sft.py")
    if any(a.startswith("--config=") for a in argv):
        parser.error("write --config PATH (TRL reads no --config=PATH)")
    if argv.count("--config") > 1:
        parser.error("--config given more than once")
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv) or argv[index + 1].startswith("--"):
            parser.error("--config needs a path")
        path = argv[index + 1]
        check_recipe(read_recipe(path), parser.dataclass_types, path)
    try:
        return parser.parse_args_and_config(argv)
    except ValueError as exc:  # TRL and transformers check their fields with ValueError
        raise CulturespaError(" ".join(str(exc).split())) from None


def cli(argv: list[str] | None = None) -> int:
    """Parse, train, and turn culturespa errors into one line on stderr (exit code 2)."""
    from culturespa.errors import CulturespaError

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
        provenance = {
            "recipe": config_path(argv),
            "command": shlex.join(["recipes/sft.py", *argv]),
        }
        main(*args, provenance=provenance)
    except CulturespaError as exc:
        print(f"recipes/sft.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
