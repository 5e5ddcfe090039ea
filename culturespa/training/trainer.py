"""Training one LoRA adapter (or one per country) with TRL's SFTTrainer, with the checks before it
and the files after it. `culturespa train` (`culturespa.cli.train`) parses the arguments and
calls `train`."""

from __future__ import annotations

import gc
from pathlib import Path

from culturespa.inference.chat_templates import read_training_template
from culturespa.run_files import ADAPTER_INDEX
from culturespa.training.arguments import prepare_arguments
from culturespa.training.data import culture_specific_sets, describe_dataset, load_sft_dataset
from culturespa.training.loss_mask import check_assistant_mask, check_template_matches
from culturespa.training.output_dir import (
    ADAPTER_SET_KIND,
    TrainingFolder,
    check_country_folders,
    check_output_dir_is_ours,
    claim_training_folder,
)
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
    target: TrainingFolder,
    provenance: dict,
    country: str | None = None,
    finish: bool = True,
) -> Path:
    """Train and save one LoRA adapter on one training set into `target`, a claimed folder;
    return the saved folder.

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

    output_dir = target.path
    training_args.output_dir = str(output_dir)
    target.start()  # the folder is culturespa's from here on: a killed run's rerun resumes
    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    trainer.add_callback(target.callback())
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
        target.record()
        trainer.accelerator.print(f"adapter saved to {output_dir}")
    trainer.accelerator.wait_for_everyone()
    if finish and hasattr(trainer, "end"):  # transformers>=5.18: trackers, process group
        trainer.end()
    del trainer
    gc.collect()
    return Path(output_dir)


def train(script_args, training_args, model_args, provenance: dict | None = None) -> None:
    """Train the joint adapter, or one adapter per country when `countries` is set, each into a
    claimed output folder (`culturespa.training.output_dir`)."""
    provenance = provenance or {}
    root, overwrite = Path(training_args.output_dir), script_args.overwrite
    check_output_dir_is_ours(root, overwrite)
    prepare_arguments(script_args, training_args, model_args)
    saves = training_args.should_save
    if script_args.countries is None:
        with claim_training_folder(root, saves, overwrite) as target:
            train_adapter(
                script_args, training_args, model_args, script_args.dataset_path, target, provenance
            )
        return
    sets = culture_specific_sets(script_args.dataset_path, script_args.countries)
    adapters = {}
    with claim_training_folder(root, saves, overwrite, ADAPTER_SET_KIND) as index:
        check_country_folders(root, list(sets), overwrite)
        index.start()
        for number, (code, path) in enumerate(sets.items(), start=1):
            with claim_training_folder(root / code, saves, overwrite) as target:
                saved = train_adapter(
                    script_args,
                    training_args,
                    model_args,
                    path,
                    target,
                    provenance,
                    country=code,
                    finish=number == len(sets),
                )
            adapters[code] = str(saved)
        write_adapter_index(root, adapters, model_args.model_name_or_path)
        index.record([ADAPTER_INDEX])
