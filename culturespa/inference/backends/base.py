"""The inference interface every backend implements: batched chat generation and option scoring."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from culturespa.errors import CulturespaError
from culturespa.inference.chat_templates import (
    NO_SYSTEM_ROLE_WARNING,
    place_persona,
    system_role_supported,
)

logger = logging.getLogger(__name__)

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingSettings:
    """Decoding settings of one batched generation call."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    """A reply ends right after the first of these strings, which is kept in the reply."""

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@runtime_checkable
class Backend(Protocol):
    """A model behind one interface. Every method takes a whole batch; none is called per item."""

    name: str

    def generate(
        self, conversations: Sequence[Conversation], settings: SamplingSettings
    ) -> list[str]:
        """One sampled reply per conversation (the assistant turn is opened by the chat template).

        A conversation that ends with an assistant message is continued: that message is the
        start of the reply (a response prefix), and the returned text is what follows it.
        """
        ...

    def option_logprobs(
        self, conversations: Sequence[Conversation], labels: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """log p(label, end of turn | conversation) for every label of every conversation."""
        ...

    def close(self) -> None:
        """Free the model (GPU memory, worker processes, HTTP sessions)."""
        ...


class ChatTokens:
    """Prompt and answer tokenisation shared by the local backends (transformers and vLLM).

    An answer `label` is scored as the tokens the chat template writes for an assistant turn whose
    content is `label`, up to and including the first token after the label (the end of turn), so
    that '1' is not favoured over '10' by tokenizers that split digits.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise CulturespaError(
                "the model's tokenizer has no chat template; the pipeline needs an instruct model"
            )
        self._label_cache: dict[str, list[int]] = {}
        self.end_of_turn: int | None = None
        """The token that closes an assistant turn (set once a label has been encoded)."""
        self.system_role = system_role_supported(tokenizer)
        """Whether the template takes a system message; if not, the persona opens the user turn
        (`culturespa.inference.chat_templates`: one policy everywhere)."""
        if not self.system_role:
            logger.warning("data builder: %s", NO_SYSTEM_ROLE_WARNING)

    def render(self, conversation: Conversation) -> str:
        """The prompt text with the assistant turn opened, or continued when the conversation
        ends with an assistant message (a response prefix)."""
        conversation = place_persona(list(conversation), self.system_role)
        if conversation and conversation[-1].get("role") == "assistant":
            return self.tokenizer.apply_chat_template(
                conversation, tokenize=False, continue_final_message=True
            )
        return self.tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )

    def encode_prompts(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        """Token ids of the rendered prompts, in one tokenizer call."""
        texts = [self.render(c) for c in conversations]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def label_tokens(self, label: str) -> list[int]:
        """The answer tokens for a label: its own tokens plus the end-of-turn token (cached)."""
        cached = self._label_cache.get(label)
        if cached is not None:
            return cached
        probe = [{"role": "user", "content": "Q"}]
        prompt = self.render(probe)
        full = self.tokenizer.apply_chat_template(
            [*probe, {"role": "assistant", "content": label}], tokenize=False
        )
        if not full.startswith(prompt):
            raise CulturespaError(
                "the chat template renders the assistant turn differently from its generation "
                "prompt; option scoring cannot locate the answer tokens"
            )
        encode = self.tokenizer.encode
        prompt_ids = encode(prompt, add_special_tokens=False)
        with_label = encode(prompt + label, add_special_tokens=False)
        full_ids = encode(full, add_special_tokens=False)
        n = len(prompt_ids)
        if with_label[:n] != prompt_ids or full_ids[: len(with_label)] != with_label:
            raise CulturespaError(f"answer {label!r} merges with the chat template's tokens")
        tokens = with_label[n:]
        if len(full_ids) > len(with_label):
            self.end_of_turn = full_ids[len(with_label)]
            tokens = [*tokens, self.end_of_turn]
        if not tokens:
            raise CulturespaError(f"answer {label!r} encodes to no tokens")
        self._label_cache[label] = tokens
        return tokens


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to and including the earliest stop string in it (unchanged if none occurs)."""
    ends = [text.find(s) + len(s) for s in stop if s and s in text]
    return text[: min(ends)] if ends else text


def group_by_labels(flat: Sequence[float], labels: Sequence[Sequence[str]]) -> list[list[float]]:
    """Scores of all (conversation, label) pairs, in order, cut back into one list per
    conversation."""
    scores, pos = [], 0
    for labs in labels:
        scores.append(list(flat[pos : pos + len(labs)]))
        pos += len(labs)
    return scores
