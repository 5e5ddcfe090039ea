"""The transformers backend: batched option scoring equals a naive per-option loop."""

from __future__ import annotations

import pytest

from culturespa.inference.backends.base import SamplingSettings

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    from culturespa.inference.backends.hf import HFBackend

    return HFBackend(str(tiny_model_dir), batch_size=3, device="cpu")


def _conversations(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": "You are a real person" + " indeed" * i},
            {"role": "user", "content": f"Question {i}? #Options: 1.Yes 2.No"},
        ]
        for i in range(n)
    ]


def test_option_logprobs_match_one_forward_per_option(backend):
    import torch

    convs = _conversations(5)
    labels = [[str(j) for j in range(1, 3 + i)] for i in range(5)]  # up to "10", two digit tokens
    labels[4] = [str(j) for j in range(0, 11)]
    batched = backend.option_logprobs(convs, labels)
    for conv, labs, row in zip(convs, labels, batched):
        prompt = backend.chat.encode_prompts([conv])[0]
        for lab, got in zip(labs, row):
            answer = backend.chat.label_tokens(lab)
            with torch.inference_mode():
                logits = backend.model(torch.tensor([prompt + answer])).logits[0].float()
            logp = torch.log_softmax(logits, dim=-1)
            want = sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(answer))
            assert got == pytest.approx(want, abs=1e-4)


def _naive_logprob(backend, conversation, label) -> float:
    import torch

    prompt = backend.chat.encode_prompts([conversation])[0]
    answer = backend.chat.label_tokens(label)
    with torch.inference_mode():
        logits = backend.model(torch.tensor([prompt + answer])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(answer))


@pytest.mark.parametrize("ordering", ["opening", "rest"])
def test_batches_of_several_system_prompts_score_as_one_forward_per_option(
    backend, ordering, monkeypatch
):
    """3 system prompts x 3 questions (one asked twice): every batch order, so batches that run
    several system prompts' prefixes once each, and the repeated prompt, give the naive scores."""
    from culturespa.inference import option_scoring

    monkeypatch.setattr(option_scoring, "ORDERINGS", (ordering,))
    systems = ["You are a real person.", "You are a real person from far away.", "You are a cat."]
    questions = ["Tea?", "Which season do you like best of all the seasons of a year?", "Dogs?"]
    convs = [
        [{"role": "system", "content": s}, {"role": "user", "content": f"{q} 1.Yes 2.No"}]
        for s in systems
        for q in questions
    ]
    convs.append(convs[4])
    labels = [["1", "2"] if i % 2 else ["1", "2", "10"] for i in range(len(convs))]
    labels[-1] = ["2", "1"]
    batched = backend.option_logprobs(convs, labels)
    for conv, labs, row in zip(convs, labels, batched):
        want = [_naive_logprob(backend, conv, lab) for lab in labs]
        assert row == pytest.approx(want, abs=1e-4)


def test_label_tokens_end_with_end_of_turn(backend):
    end = backend.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert backend.chat.label_tokens("3")[-1] == end
    assert len(backend.chat.label_tokens("10")) == 3  # digits split, then the end of turn


def test_generate_is_batched_and_seeded(backend, monkeypatch):
    calls = []
    original = backend.model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(backend.model, "generate", counting)
    settings = SamplingSettings(max_new_tokens=6, temperature=0.9, top_p=0.95, seed=7)
    first = backend.generate(_conversations(7), settings)
    second = backend.generate(_conversations(7), settings)
    assert calls == [3, 3, 1, 3, 3, 1]  # micro-batches of 3, never one call per prompt
    assert first == second and len(first) == 7


@pytest.mark.parametrize(
    "template",
    [
        # drops the system message
        "{% for m in messages %}{% if m['role'] != 'system' %}{{ m['content'] }}{% endif %}"
        "{% endfor %}",
        # rejects it
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}"
        "{% endif %}{{ m['content'] }}{% endfor %}",
    ],
)
def test_without_a_system_role_the_persona_opens_the_user_turn(tiny_model_dir, template, caplog):
    """One policy everywhere (culturespa.inference.chat_templates): the persona is never lost."""
    from transformers import AutoTokenizer

    from culturespa.inference.backends.base import ChatTokens

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = template
    with caplog.at_level("WARNING", logger="culturespa.inference.backends.base"):
        tokens = ChatTokens(tok)
    assert tokens.system_role is False
    assert "has no system role; the persona is put at the top of the user turn" in caplog.text
    text = tokens.render(
        [{"role": "system", "content": "PERSONA"}, {"role": "user", "content": "Q?"}]
    )
    assert text.startswith("PERSONA\n\nQ?")


def test_generation_ends_right_after_the_first_stop_string(backend):
    convs = _conversations(4)
    free = backend.generate(convs, SamplingSettings(24, 0.0))
    # stop at a piece of each greedy reply: the stopped reply is the same text, cut just after it
    stops = tuple(sorted({text[5:8] for text in free if len(text) >= 8}))
    assert stops
    stopped = backend.generate(convs, SamplingSettings(24, 0.0, stop=stops))
    for text, cut in zip(free, stopped):
        ends = [text.find(s) + len(s) for s in stops if s in text]
        assert cut == (text[: min(ends)] if ends else text)
    assert any(cut != text for text, cut in zip(free, stopped))


def test_a_final_assistant_message_is_continued(backend):
    conv = _conversations(1)[0]
    opened = backend.chat.render(conv)
    prefixed = [*conv, {"role": "assistant", "content": '{"question": "'}]
    assert backend.chat.render(prefixed) == opened + '{"question": "'
    # greedy: continuing the prefix equals generating after the prefix typed by hand
    reply = backend.generate([prefixed], SamplingSettings(12, 0.0))[0]
    prompt_ids = backend.tokenizer(opened + '{"question": "', add_special_tokens=False)
    import torch

    with torch.inference_mode():
        out = backend.model.generate(
            input_ids=torch.tensor([prompt_ids["input_ids"]]),
            max_new_tokens=12,
            do_sample=False,
            pad_token_id=backend.pad_id,
            eos_token_id=[backend.tokenizer.eos_token_id, backend.chat.end_of_turn],
        )
    want = backend.tokenizer.decode(
        out[0, len(prompt_ids["input_ids"]) :], skip_special_tokens=True
    )
    assert reply == want
