"""Training one LoRA adapter (or one per country) with TRL's SFTTrainer, with the checks before it
and the files after it. `culturespa train` (`culturespa.cli.train`) parses the arguments and
calls `train`."""

from __future__ import annotations

import gc
from pathlib import Path

from culturespa.inference.chat_templates import read_training_template
from culturespa.training.arguments import prepare_arguments
from culturespa.training.data import culture_specific_sets, describe_dataset, load_sft_dataset
from culturespa.training.loss_mask import check_assistant_mask, check_template_matches
from culturespa.training.outputs import (
    RunRecord,
    distributed_summary,
    hyperparameters,
    lora_summary,
    write_adapter_index,
    write_run_files,
)


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

    dataset = load_sft_dataset(dataset_path, script_args.max_train_examples)
    data_info = describe_dataset(dataset, dataset_path)
    dataset = dataset.select_columns(["messages"])

    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    sample = dataset.select(range(min(script_args.mask_check_examples, len(dataset))))["messages"]
    if script_args.chat_template is not None:
        template = read_training_template(script_args.chat_template)
        if script_args.check_template_matches_model:
            check_template_matches(tokenizer, template, sample[:8])
        tokenizer.chat_template = template
    end_of_turn = ""
    if training_args.assistant_only_loss and sample:
        end_of_turn = check_assistant_mask(tokenizer, sample, None)

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
        run = RunRecord(
            base_model=model_args.model_name_or_path,
            recipe=provenance.get("recipe"),
            command=provenance.get("command", ""),
            data=data_info,
            hyperparameters=hyperparameters(training_args),
            lora=lora_summary(peft_config),
            metrics=metrics,
            chat_template=script_args.chat_template,
            end_of_turn=end_of_turn,
            country=country,
            distributed=distributed_summary(training_args),
        )
        write_run_files(output_dir, run)
        trainer.accelerator.print(f"adapter saved to {output_dir}")
    trainer.accelerator.wait_for_everyone()
    if finish and hasattr(trainer, "end"):  # transformers>=5.18: trackers, process group
        trainer.end()
    del trainer
    gc.collect()
    return Path(output_dir)


def train(script_args, training_args, model_args, provenance: dict | None = None) -> None:
    """Train the joint adapter, or one adapter per country when `countries` is set."""
    provenance = provenance or {}
    prepare_arguments(script_args, training_args, model_args)
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
    sets = culture_specific_sets(script_args.dataset_path, script_args.countries)
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
    write_adapter_index(root, adapters, model_args.model_name_or_path)
