"""culturespa.training and `culturespa train` (recipes/sft.py): data loading, chat templates, the
loss mask, a real run, the merge."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from support.training_sets import sft_rows, write_set

from culturespa.errors import CulturespaError
from culturespa.inference import chat_templates as chat
from culturespa.run_files import ADAPTER_INDEX, TRAINING_RECORD
from culturespa.training import arguments, data, loss_mask, outputs

REPO = Path(__file__).resolve().parents[1]
TRL_LLAMA3 = Path(__import__("trl").__file__).parent / "chat_templates" / "llama3.jinja"

# --- fixtures that follow the data builder's contract ----------------------------------------


@pytest.fixture(scope="module")
def data_run(tmp_path_factory) -> Path:
    """<data_run_dir>/sft/{culture_joint, cross_culture_thinking_joint, culture_specific/<ISO3>} for USA and CHN."""
    root = tmp_path_factory.mktemp("data_run")
    sft = root / "sft"
    (sft / "culture_specific").mkdir(parents=True)
    joint = sft_rows("USA", "culture_joint", 12) + sft_rows("CHN", "culture_joint", 12)
    write_set(sft / "culture_joint", joint)
    write_set(
        sft / "cross_culture_thinking_joint", sft_rows("USA", "cross_culture_thinking_joint", 4)
    )
    for code in ("USA", "CHN"):
        write_set(sft / "culture_specific" / code, sft_rows(code, "culture_specific", 6))
    return root


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def llama3_like_tokenizer():
    """The tiny tokenizer with Llama-3's special tokens and Meta's shipped chat template."""
    from support.tiny_model import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.add_special_tokens(
        {
            "additional_special_tokens": [
                "<|begin_of_text|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
            ]
        }
    )
    tok.bos_token = "<|begin_of_text|>"
    tok.chat_template = TRL_LLAMA3.read_text()
    return tok


MESSAGES = [
    {"role": "system", "content": "You are a real person with an American cultural background."},
    {"role": "user", "content": "#Question: How important is family?\n#Options: 1.Very 2.Not\n"},
    {"role": "assistant", "content": "10"},
]

# --- data loading -------------------------------------------------------------------------------


def test_load_saved_dataset_and_jsonl(data_run):
    on_disk = data.load_sft_dataset(data_run / "sft" / "culture_joint")
    jsonl = data.load_sft_dataset(data_run / "sft" / "culture_joint.jsonl")
    assert len(on_disk) == len(jsonl) == 24
    assert on_disk[0]["messages"] == jsonl[0]["messages"]
    info = data.describe_dataset(on_disk, "x")
    assert info["variants"] == ["culture_joint"] and info["countries"] == ["CHN", "USA"]
    assert len(data.load_sft_dataset(data_run / "sft" / "culture_joint", max_examples=5)) == 5


def test_bad_training_sets_fail_loudly(tmp_path):
    with pytest.raises(CulturespaError, match="not a saved dataset"):
        data.load_sft_dataset(tmp_path / "missing")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x"}) + "\n")
    with pytest.raises(CulturespaError, match="messages"):
        data.load_sft_dataset(bad)
    bad.write_text(json.dumps({"messages": MESSAGES[:2]}) + "\n")
    with pytest.raises(CulturespaError, match=r"row 0.*assistant"):
        data.load_sft_dataset(bad)


def test_culture_specific_sets(data_run, tmp_path):
    parent = data_run / "sft" / "culture_specific"
    assert list(data.culture_specific_sets(parent, "all")) == ["USA", "CHN"]  # paper order
    assert list(data.culture_specific_sets(parent, "chn")) == ["CHN"]
    with pytest.raises(CulturespaError, match="NGA"):
        data.culture_specific_sets(parent, "USA,NGA")
    with pytest.raises(CulturespaError, match=r"unknown|XXX"):
        data.culture_specific_sets(parent, "XXX")
    with pytest.raises(CulturespaError, match="no per-country"):
        data.culture_specific_sets(tmp_path, "all")


def test_effective_batch_sets_accumulation():
    assert arguments.gradient_accumulation_for(128, 16, 1) == 8
    assert arguments.gradient_accumulation_for(128, 16, 8) == 1
    assert arguments.gradient_accumulation_for(8, 1, 1) == 8
    with pytest.raises(CulturespaError, match="multiple"):
        arguments.gradient_accumulation_for(128, 16, 3)


def test_launches_that_accelerate_would_run_otherwise_are_refused():
    """Two traps met running `accelerate launch` on CPU (recipes/README.md, "More processes")."""
    arguments.check_launch({}, 1, use_cpu=False)
    arguments.check_launch({"WORLD_SIZE": "2"}, 2, use_cpu=True)
    arguments.check_launch({"WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "true"}, 2, use_cpu=False)
    # processes started without a process group: each would train alone into one folder
    with pytest.raises(CulturespaError, match=r"2 processes .* formed no process group"):
        arguments.check_launch({"WORLD_SIZE": "2"}, 1, use_cpu=False)
    # FSDP on CPU processes: accelerate would run DDP instead
    with pytest.raises(CulturespaError, match="FSDP on CPU"):
        arguments.check_launch({"WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "true"}, 2, use_cpu=True)


# --- chat templates and the loss mask ------------------------------------------------------------


def test_llama3_template_renders_like_meta_template(llama3_like_tokenizer):
    ours = chat.read_training_template("llama3")
    loss_mask.check_template_matches(
        llama3_like_tokenizer, ours, [MESSAGES]
    )  # raises on a difference
    text = llama3_like_tokenizer.apply_chat_template(MESSAGES, chat_template=ours, tokenize=False)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n10<|eot_id|>")


def test_chatml_template_renders_like_smollm2_with_a_system_message(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template(
        MESSAGES, chat_template=chat.read_training_template("chatml"), tokenize=False
    )
    expected = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in MESSAGES)
    assert text == expected  # SmolLM2's template gives this whenever a system message is present


def test_template_mismatch_is_an_error(llama3_like_tokenizer):
    with pytest.raises(CulturespaError, match="renders differently"):
        loss_mask.check_template_matches(
            llama3_like_tokenizer, chat.read_training_template("chatml"), [MESSAGES]
        )


@pytest.mark.parametrize("case", ["chatml", "llama3"])
def test_mask_covers_exactly_the_answer_tokens(case, tiny_tokenizer, llama3_like_tokenizer):
    """Token by token: the masked positions are the answer's digits and the end-of-turn token."""
    tok = tiny_tokenizer if case == "chatml" else llama3_like_tokenizer
    eot = "<|im_end|>" if case == "chatml" else "<|eot_id|>"
    template = chat.read_training_template(case)
    out = tok.apply_chat_template(
        MESSAGES,
        chat_template=template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    prompt = tok.apply_chat_template(
        MESSAGES[:2], chat_template=template, tokenize=True, add_generation_prompt=True
    )
    prompt_ids = list(prompt["input_ids"]) if hasattr(prompt, "keys") else list(prompt)
    answer_ids = tok("10", add_special_tokens=False)["input_ids"]
    assert len(answer_ids) == 2  # digits split: '1', '0'
    expected = [*answer_ids, tok.convert_tokens_to_ids(eot)]
    assert ids[: len(prompt_ids)] == prompt_ids and not any(mask[: len(prompt_ids)])
    masked = [i for i, m in zip(ids, mask) if m]
    assert masked == expected
    start = len(prompt_ids)
    assert mask[start : start + len(expected)] == [1] * len(expected)
    assert not any(mask[start + len(expected) :])
    assert loss_mask.check_assistant_mask(tok, [MESSAGES], template) == eot


def test_mask_check_rejects_templates_without_markers_or_too_wide(tiny_tokenizer):
    plain = (
        chat.read_training_template("chatml")
        .replace("{% generation %}", "")
        .replace("{% endgeneration %}", "")
    )
    with pytest.raises(CulturespaError, match="empty"):
        loss_mask.check_assistant_mask(tiny_tokenizer, [MESSAGES], plain)
    wide = (
        "{% for m in messages %}{% generation %}{{ '<|im_start|>' + m['role'] + '\\n' + "
        "m['content'] + '<|im_end|>\\n' }}{% endgeneration %}{% endfor %}"
    )
    with pytest.raises(CulturespaError, match=r"not the answer|masked spans"):
        loss_mask.check_assistant_mask(tiny_tokenizer, [MESSAGES], wide)
    # One prompt token too many: the newline after the role header.
    with_newline = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] }}{% if m['role'] == 'assistant' %}"
        "{% generation %}{{ '\n' + m['content'] + '<|im_end|>' }}{% endgeneration %}"
        "{% else %}{{ '\n' + m['content'] + '<|im_end|>' }}{% endif %}{{ '\n' }}{% endfor %}"
    )
    with pytest.raises(CulturespaError, match="not the answer"):
        loss_mask.check_assistant_mask(tiny_tokenizer, [MESSAGES], with_newline)
    # One token too many after the answer: the newline after <|im_end|>.
    trailing = with_newline.replace(
        "{{ '\n' + m['content'] + '<|im_end|>' }}{% endgeneration %}",
        "{{ m['content'] + '<|im_end|>\n' }}{% endgeneration %}",
    ).replace("{% generation %}", "{{ '\n' }}{% generation %}")
    with pytest.raises(CulturespaError, match="beyond the answer"):
        loss_mask.check_assistant_mask(tiny_tokenizer, [MESSAGES], trailing)


def test_templates_without_markers_are_refused(tmp_path):
    path = tmp_path / "t.jinja"
    path.write_text("{{ messages }}")
    with pytest.raises(CulturespaError, match="generation"):
        chat.read_training_template(str(path))
    with pytest.raises(CulturespaError, match="neither"):
        chat.read_training_template("nope")


# --- a real run of `culturespa train` on the tiny model ------------------------------------------


def culturespa_train(*argv: str) -> int:
    """`culturespa train ...` in this process."""
    from culturespa.cli.main import main

    return main(["train", *argv])


def recipe_script(name: str):
    """A script of recipes/ imported as a module, to run it in this process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"culturespa_{name}", REPO / "recipes" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def one_thread():
    """torch on one thread: a tiny model trains faster than with competing threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained_adapter(tiny_model_dir, data_run, tmp_path_factory) -> Path:
    """30 steps of recipes/tiny_cpu_smoke.yaml on 24 conversations (`culturespa train`)."""
    out = tmp_path_factory.mktemp("adapter") / "joint"
    argv = [
        "--config",
        str(REPO / "recipes" / "tiny_cpu_smoke.yaml"),
        "--model_name_or_path",
        str(tiny_model_dir),
        "--dataset_path",
        str(data_run / "sft" / "culture_joint"),
        "--output_dir",
        str(out),
    ]
    with one_thread():
        assert culturespa_train(*argv) == 0
    return out


@pytest.mark.slow
def test_sft_lowers_the_loss_and_saves_everything(trained_adapter, tiny_model_dir):
    losses = [
        e["loss"]
        for e in json.loads((trained_adapter / "trainer_state.json").read_text())["log_history"]
        if "loss" in e
    ]
    assert len(losses) == 30
    first, last = losses[0], sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "train_results.json",
        "README.md",
        TRAINING_RECORD,
    ):
        assert (trained_adapter / name).is_file(), name
    config = json.loads((trained_adapter / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (8, 16, 0.0)
    assert config["base_model_name_or_path"] == str(tiny_model_dir)
    card = (trained_adapter / "README.md").read_text()
    assert "recipes/tiny_cpu_smoke.yaml" in card and "culture_joint" in card
    assert "24 conversations" in card and "<|im_end|>" in card
    run = json.loads((trained_adapter / TRAINING_RECORD).read_text())
    assert run["metrics"]["train_examples"] == 24 and run["recipe"].endswith(
        "recipes/tiny_cpu_smoke.yaml"
    )
    assert run["command"].startswith("culturespa train --config ")


@pytest.mark.slow
def test_saved_adapter_loads_and_lm_eval_runs(trained_adapter, tiny_model_dir):
    """lm-eval's hf model with peft= on one of our WVS tasks, a few items."""
    import lm_eval
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), trained_adapter
    )
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)  # trained, not the zero init
    from culturespa.evaluation.tasks import task_manager

    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_model_dir},peft={trained_adapter}",
        tasks=["wvs_culture_aware_usa"],
        task_manager=task_manager(),
        limit=3,
        device="cpu",
        batch_size=4,
        apply_chat_template=True,
    )
    assert "wvs_culture_aware_usa" in results["results"]
    assert f"peft={trained_adapter}" in str(results["config"]["model_args"])


@pytest.mark.slow
def test_merged_adapter_matches_the_adapter(trained_adapter, tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from culturespa.cli.main import main

    merged_dir = tmp_path / "merged"
    assert main(["merge", str(trained_adapter), str(merged_dir), "--dtype", "float32"]) == 0
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), trained_adapter
    )
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)
    assert (merged_dir / "tokenizer.json").is_file()


@pytest.mark.slow
def test_culture_specific_trains_one_adapter_per_country(tiny_model_dir, data_run, tmp_path):
    out = tmp_path / "specific"
    with one_thread():
        code = culturespa_train(
            *[
                "--config",
                str(REPO / "recipes" / "tiny_cpu_smoke.yaml"),
                "--model_name_or_path",
                str(tiny_model_dir),
                "--dataset_path",
                str(data_run / "sft" / "culture_specific"),
                "--countries",
                "all",
                "--output_dir",
                str(out),
                "--max_steps",
                "2",
            ]
        )
    assert code == 0
    index = json.loads((out / ADAPTER_INDEX).read_text())
    assert list(index["adapters"]) == ["USA", "CHN"]
    for code in ("USA", "CHN"):
        assert (out / code / "adapter_model.safetensors").is_file()
        run = json.loads((out / code / TRAINING_RECORD).read_text())
        assert run["country"] == code and run["data"]["countries"] == [code]
        assert f"wvs_gen_culture_aware_{code.lower()}" in (out / code / "README.md").read_text()

    # Each adapter is evaluated on its own country's task only (culturespa eval --adapters).
    base, adapters = outputs.read_adapter_index(out)
    assert base == str(tiny_model_dir) and adapters["USA"] == str(out / "USA")
    from culturespa.evaluation.run import EvalOptions
    from culturespa.evaluation.specific import evaluate_culture_specific

    results = evaluate_culture_specific(
        out,
        "wvs_culture_aware",
        EvalOptions(output_path=tmp_path / "eval", limit=2, device="cpu", batch_size=4),
    )
    for code in ("USA", "CHN"):
        (run,) = results[code]
        assert list(run["results"]) == [f"wvs_culture_aware_{code.lower()}"]
        assert run["config"]["model_args"]["peft"] == str(out / code)
    assert len(list((tmp_path / "eval").rglob("results_*.json"))) == 2


def test_sft_errors_are_one_line(tiny_model_dir, tmp_path, capsys):
    code = culturespa_train(
        *[
            "--config",
            str(REPO / "recipes" / "tiny_cpu_smoke.yaml"),
            "--model_name_or_path",
            str(tiny_model_dir),
            "--dataset_path",
            str(tmp_path / "none"),
            "--output_dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("culturespa train: error: ") and "none" in err[-1]


def test_model_fields_reach_from_pretrained(tmp_path):
    """dtype and attn_implementation of a recipe are passed to the model, as in TRL's sft.py."""
    from trl import ModelConfig, SFTConfig

    script_args = arguments.CultureSPAScriptArguments(dataset_path="x", effective_batch_size=16)
    training_args = SFTConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        per_device_train_batch_size=4,
        report_to="none",
        activation_checkpointing=False,
    )
    model_args = ModelConfig(
        model_name_or_path="m",
        dtype="bfloat16",
        attn_implementation="sdpa",
        lora_target_modules=["all-linear"],
    )
    arguments.prepare_arguments(script_args, training_args, model_args)
    assert training_args.model_init_kwargs["dtype"] == "bfloat16"
    assert training_args.model_init_kwargs["attn_implementation"] == "sdpa"
    assert training_args.gradient_accumulation_steps == 4
    assert model_args.lora_target_modules == "all-linear"  # PEFT expands only the bare string
