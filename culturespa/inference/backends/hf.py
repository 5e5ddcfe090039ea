"""Transformers backend: batched sampling and batched option scoring with a shared prompt cache."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from culturespa.errors import CulturespaError
from culturespa.inference.backends.base import (
    ChatTokens,
    Conversation,
    SamplingSettings,
    cut_at_stop,
)
from culturespa.inference.generation_prefix import generate_with_shared_prefix

logger = logging.getLogger(__name__)


class HFBackend:
    """A causal LM from a local folder or a hub id (`default` resolved by the caller), run with
    transformers.

    Prompts are sorted by length inside each call and cut into micro-batches of `batch_size`,
    so padding stays small; the result order is the input order.
    """

    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 16,
        dtype: str = "auto",
        device: str = "auto",
        num_threads: int = 0,
        trust_remote_code: bool = False,
    ) -> None:
        import torch

        if num_threads > 0:
            torch.set_num_threads(num_threads)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from culturespa.inference.models import pick_device

        path = model  # resolved where the name entered (`resolve_model`)
        self.device = pick_device(device, "model.device")
        torch_dtype = {
            "auto": torch.float32 if self.device == "cpu" else torch.bfloat16,
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }.get(dtype)
        if torch_dtype is None:
            raise CulturespaError(
                f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16"
            )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                path, trust_remote_code=trust_remote_code
            )
            self.model = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype, trust_remote_code=trust_remote_code
            )
        except OSError as exc:
            raise CulturespaError(f"cannot load model {model!r} from {path}: {exc}") from exc
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = self.tokenizer.pad_token_id
        self.batch_size = batch_size
        self.chat = ChatTokens(self.tokenizer)
        self.model_path = str(path)

    # -- helpers ------------------------------------------------------------------------------

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _left_pad(self, rows: Sequence[Sequence[int]]):
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        return ids.to(self.device), mask.to(self.device)

    # -- the interface ------------------------------------------------------------------------

    def generate(
        self, conversations: Sequence[Conversation], settings: SamplingSettings
    ) -> list[str]:
        """Sample one reply per conversation; the seed fixes the whole call's randomness. The
        common prompt prefix of each micro-batch runs once (`culturespa.inference.generation_prefix`)."""
        import torch

        prompts = self.chat.encode_prompts(conversations)
        replies: list[str] = [""] * len(prompts)
        torch.manual_seed(settings.seed)
        kwargs = {"max_new_tokens": settings.max_new_tokens, "pad_token_id": self.pad_id}
        if settings.greedy:
            kwargs.update(do_sample=False)
        else:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
        self.chat.label_tokens("0")  # sets chat.end_of_turn from the chat template
        eos = {self.tokenizer.eos_token_id, self.chat.end_of_turn}
        kwargs["eos_token_id"] = sorted(i for i in eos if i is not None)
        if settings.stop:  # a row stops once it has written a stop string; cut exactly below
            kwargs.update(stop_strings=list(settings.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            for batch in self._batches([len(p) for p in prompts]):
                ids, mask = self._left_pad([prompts[i] for i in batch])
                out = generate_with_shared_prefix(self.model, ids, mask, self.pad_id, **kwargs)
                new = out[:, ids.shape[1] :]
                texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
                for i, text in zip(batch, texts):
                    replies[i] = cut_at_stop(text, settings.stop)
        return replies

    def option_logprobs(
        self, conversations: Sequence[Conversation], labels: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Scored by the engine of `culturespa-hf` (`culturespa.inference.option_scoring`): a
        prompt given twice is run once, the prefix a batch's prompts of one system prompt share
        runs once, the rest of every prompt once (last position only), answer tokens after the
        first from the prompt cache: a prompt is run once however many options it has."""
        from culturespa.inference.option_scoring import score_prompts

        if len(labels) != len(conversations):
            raise ValueError("one label list per conversation")
        prompts = self.chat.encode_prompts(conversations)
        answers = [[self.chat.label_tokens(lab) for lab in labs] for labs in labels]
        rows = score_prompts(
            self.model, prompts, answers, self.pad_id, self.device, self.batch_size
        )
        return [[logp for logp, _ in row] for row in rows]

    def close(self) -> None:
        del self.model
        import gc

        gc.collect()
