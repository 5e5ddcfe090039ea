"""The assistant-only loss: the training template renders as the model's, the mask covers the answer."""

from __future__ import annotations

from culturespa.errors import CulturespaError


def check_template_matches(tokenizer, training_template: str, examples: list[list[dict]]) -> None:
    """Fail when the training template renders examples differently from the tokenizer's own."""
    shipped = getattr(tokenizer, "chat_template", None)
    if not shipped or shipped == training_template:
        return
    for messages in examples:
        for conversation, prompt in ((messages, False), (messages[:-1], True)):
            ours = tokenizer.apply_chat_template(
                conversation,
                chat_template=training_template,
                tokenize=False,
                add_generation_prompt=prompt,
            )
            theirs = tokenizer.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=prompt
            )
            if ours != theirs:
                at = next(
                    (i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                    min(len(ours), len(theirs)),
                )
                raise CulturespaError(
                    "chat_template: the training template renders differently from the model's own "
                    f"at character {at} ({ours[at : at + 40]!r} vs {theirs[at : at + 40]!r}); pick the "
                    "template of this model family or set check_template_matches_model: false"
                )


def _runs(mask: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            runs.append((start, i))
            start = None
    return runs


def assistant_mask_spans(tokenizer, messages: list[dict], chat_template: str | None) -> list[str]:
    """The text of each contiguous run of tokens that assistant-only loss trains on."""
    out = tokenizer.apply_chat_template(
        messages,
        chat_template=chat_template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    return [tokenizer.decode(ids[a:b]) for a, b in _runs(mask)]


def end_of_turn_tokens(tokenizer) -> set[str]:
    """Special tokens that may close an assistant turn inside the mask (<|im_end|>, <|eot_id|>)."""
    tokens = set(getattr(tokenizer, "all_special_tokens", []))
    tokens.update(str(t) for t in getattr(tokenizer, "added_tokens_decoder", {}).values())
    return {t for t in tokens if t}


def check_assistant_mask(tokenizer, examples: list[list[dict]], chat_template: str | None) -> str:
    """Check that the loss mask covers exactly each answer plus at most one end-of-turn token.

    Returns the end-of-turn token seen ('' if the mask stops at the answer)."""
    eot_tokens = end_of_turn_tokens(tokenizer)
    seen = ""
    for index, messages in enumerate(examples):
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        spans = assistant_mask_spans(tokenizer, messages, chat_template)
        if not spans:
            raise CulturespaError(
                f"training example {index}: the assistant-only loss mask is empty; the chat "
                "template needs {% generation %} markers around the answer"
            )
        if len(spans) != len(answers):
            raise CulturespaError(
                f"training example {index}: {len(spans)} masked spans for {len(answers)} answers"
            )
        for span, answer in zip(spans, answers):
            # Exact text: only the template may trim the answer (Llama-3 does); nothing of the
            # prompt, not even a newline, may be inside the mask.
            body = next((a for a in (answer, answer.strip()) if a and span.startswith(a)), None)
            if body is None:
                raise CulturespaError(
                    f"training example {index}: the loss mask covers {span!r}, not the answer {answer!r}"
                )
            rest = span[len(body) :]
            if rest and rest not in eot_tokens:
                raise CulturespaError(
                    f"training example {index}: the loss mask covers {rest!r} beyond the answer {answer!r}"
                )
            seen = rest or seen
    return seen
