"""Generation with the common prompt prefix run once equals plain batched generation."""

from __future__ import annotations

import pytest

from culturespa.inference.option_scoring import MIN_SHARED_PREFIX

torch = pytest.importorskip("torch")

PAD = 0


def _left_padded(rows):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return ids, mask


def test_relayout_moves_the_common_prefix_to_the_front():
    from culturespa.inference.generation_prefix import relayout_with_prefix

    prefix = list(range(10, 10 + MIN_SHARED_PREFIX + 2))
    rows = [[*prefix, 1, 2, 3], [*prefix, 4], [*prefix, 5, 6]]
    ids, mask = _left_padded(rows)
    new_ids, new_mask, shared = relayout_with_prefix(ids, mask, PAD)
    assert shared == len(prefix) and new_ids.shape == ids.shape
    assert new_ids[1].tolist() == [*prefix, PAD, PAD, 4]
    assert new_mask[1].tolist() == [1] * len(prefix) + [0, 0, 1]
    for row, got, m in zip(rows, new_ids.tolist(), new_mask.tolist()):
        assert [t for t, keep in zip(got, m) if keep] == row  # same tokens, same order


def test_relayout_leaves_batches_without_a_useful_prefix_alone():
    from culturespa.inference.generation_prefix import relayout_with_prefix

    short = list(range(10, 10 + MIN_SHARED_PREFIX - 1))
    ids, mask = _left_padded([[*short, 1, 2], [*short, 3]])
    assert relayout_with_prefix(ids, mask, PAD)[2] == 0
    ids, mask = _left_padded([list(range(20)), list(range(20))])
    mask[0, 5] = 0  # a hole inside a row: not plain left padding
    out_ids, out_mask, shared = relayout_with_prefix(ids, mask, PAD)
    assert shared == 0 and out_ids is ids and out_mask is mask


def test_greedy_replies_equal_plain_generate(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from culturespa.inference.generation_prefix import (
        generate_with_shared_prefix,
        relayout_with_prefix,
    )

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    system = "You are a real person with an American cultural background. Answer honestly."
    chats = [
        [{"role": "system", "content": system}, {"role": "user", "content": q}]
        for q in ("How often? 1.Often 2.Never", "Trust? 1.Yes 2.No 3.Maybe", "Pray?")
    ]
    rows = [
        tok.apply_chat_template(c, tokenize=True, add_generation_prompt=True, return_dict=False)
        for c in chats
    ]
    ids, mask = _left_padded(rows)
    assert relayout_with_prefix(ids, mask, tok.pad_token_id)[2] > MIN_SHARED_PREFIX
    kwargs = dict(max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.inference_mode():
        plain = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        shared = generate_with_shared_prefix(model, ids, mask, tok.pad_token_id, **kwargs)
    width = ids.shape[1]
    assert shared.shape == plain.shape
    assert shared[:, width:].tolist() == plain[:, width:].tolist()


def test_a_cache_that_cannot_be_shared_falls_back_to_plain_generation(caplog):
    from culturespa.inference.generation_prefix import _UNSUPPORTED, generate_with_shared_prefix

    class NoRepeatCache:
        def batch_repeat_interleave(self, n):
            raise NotImplementedError("recurrent state")

    class Model:
        def __init__(self):
            self.calls = []

        def __call__(self, **kwargs):
            return type("Out", (), {"past_key_values": NoRepeatCache()})()

        def forward(self, input_ids=None, past_key_values=None):
            pass

        def generate(self, **kwargs):
            self.calls.append(kwargs)
            return kwargs["input_ids"]

    prefix = list(range(10, 10 + MIN_SHARED_PREFIX + 2))
    ids, mask = _left_padded([[*prefix, 1, 2], [*prefix, 3]])
    model = Model()
    with caplog.at_level("WARNING"):
        out = generate_with_shared_prefix(model, ids, mask, PAD, max_new_tokens=2)
    assert out is ids and "past_key_values" not in model.calls[0]  # the caller's own layout
    assert "generating without it" in caplog.text
    assert id(Model) in _UNSUPPORTED
    _UNSUPPORTED.discard(id(Model))
