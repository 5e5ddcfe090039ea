"""A tiny random Llama and a digit-splitting tokenizer built offline, for tests, the loop's `tiny`
config (`culturespa loop --config tiny`) and CI: `python -m culturespa.inference.tiny_model DIR`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]


def chatml_template() -> str:
    """The ChatML chat template (system role supported, assistant turn marked for masking)."""
    return (
        resources.files("culturespa.inference")
        .joinpath("templates", "chatml.jinja")
        .read_text("utf-8")
    )


def _training_corpus() -> list[str]:
    from culturespa.prompts.templates import (
        SYSTEM_AWARE,
        SYSTEM_UNAWARE,
        USER_PLAIN,
        USER_SELF_ALIGNMENT,
    )
    from culturespa.survey.items import all_items

    texts = [SYSTEM_UNAWARE, SYSTEM_AWARE, USER_PLAIN, USER_SELF_ALIGNMENT]
    for item in all_items().values():
        texts.append(item.question + " " + item.options_text())
    return texts


def build_tiny_tokenizer(vocab_size: int = 600):
    """A byte-level BPE tokenizer that splits digits one by one (so '10' is two tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
    )
    fast.chat_template = chatml_template()
    return fast


def build_tiny_model(
    output_dir: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
    initializer_range: float = 0.1,
    sliding_window: int | None = None,
) -> Path:
    """Write a randomly initialised tiny Llama with its tokenizer to `output_dir`; return the path.

    Weights are drawn wider than Llama's default (std 0.1, not 0.02) so that the random model's
    answers react to the prompt: the persona then changes some answers, as it does for a real
    model, and the data builder's smoke runs produce training rows for every country. With
    `sliding_window` the model is a Mistral (same sizes) attending over that many tokens.
    """
    import torch
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
    )

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    config_class, model_class = LlamaConfig, LlamaForCausalLM
    extra = {}
    if sliding_window is not None:
        config_class, model_class = MistralConfig, MistralForCausalLM
        extra = {"sliding_window": sliding_window}
    config = config_class(
        **extra,
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=initializer_range,
    )
    model = model_class(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    (output_dir / "culturespa_tiny.json").write_text(
        json.dumps({"hidden_size": hidden_size, "num_layers": num_layers, "seed": seed})
    )
    return output_dir


def main(argv: list[str] | None = None) -> int:
    """python -m culturespa.inference.tiny_model OUTPUT_DIR"""
    import argparse
    import sys

    from culturespa.atomic import check_output_dir
    from culturespa.errors import CulturespaError

    prog = "python -m culturespa.inference.tiny_model"
    parser = argparse.ArgumentParser(
        prog=prog, description="Build the tiny random test model (a 2-layer Llama) into a folder."
    )
    parser.add_argument("output_dir", help="folder for the model")
    parser.error = lambda message: parser.exit(2, f"{prog}: error: {message}\n")  # one line
    args = parser.parse_args(argv)
    try:
        check_output_dir(args.output_dir, "output folder")
    except CulturespaError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(build_tiny_model(args.output_dir))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
