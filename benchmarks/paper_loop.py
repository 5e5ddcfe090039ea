"""The paper's answering loop, re-implemented as the benchmark's baseline.

CultureSPA's release answers every survey item with its own `generate` call: batch 1, sampling at
temperature 0.6 and top_p 0.9, at most 256 new tokens, stopping at the tokenizer's EOS or the
chat template's end-of-turn token; the reply is parsed for its first integer in 0..10. The seed is
set once per run (42 for run 0). Nothing here is batched, cached or shortened on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

PAPER_SETTINGS = {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "max_new_tokens": 256}
"""The paper's decoding settings."""


@dataclass(frozen=True)
class LoopReply:
    """One reply of the loop with its parse and cost."""

    reply: str
    answer: int | None
    new_tokens: int
    seconds: float


def load_paper_model(path: str):
    """Tokenizer and model as the paper loads them (bfloat16 on a GPU, float32 on a CPU)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    return tokenizer, model


def stop_token_ids(tokenizer) -> list[int]:
    """EOS plus the token that closes an assistant turn in the chat template (Llama 3: eot_id)."""
    ids = {tokenizer.eos_token_id}
    probe = [{"role": "user", "content": "Q"}]
    prompt = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*probe, {"role": "assistant", "content": "7"}], tokenize=False
    )
    if full.startswith(prompt + "7"):
        rest = tokenizer.encode(full[len(prompt) + 1 :], add_special_tokens=False)
        if rest:
            ids.add(rest[0])
    return sorted(i for i in ids if i is not None)


def answer_one(tokenizer, model, messages: list[dict[str, str]], stop_ids: list[int]) -> LoopReply:
    """One item, the paper's way: template, one `generate` call of batch 1, decode, parse."""
    import torch

    from culturespa.scoring.answers import parse_answer

    start = time.perf_counter()
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    ).to(model.device)
    with torch.no_grad():
        output = model.generate(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            eos_token_id=stop_ids,
            pad_token_id=tokenizer.eos_token_id,
            **PAPER_SETTINGS,
        )
    new = output[0][inputs["input_ids"].shape[-1] :]
    reply = tokenizer.decode(new, skip_special_tokens=True)
    return LoopReply(reply, parse_answer(reply), int(new.shape[0]), time.perf_counter() - start)


def run_paper_loop(
    tokenizer, model, conversations: Sequence[list[dict[str, str]]], seed: int = 42
) -> list[LoopReply]:
    """Answer conversations one by one; the seed is set once, before the first item."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    stop_ids = stop_token_ids(tokenizer)
    return [answer_one(tokenizer, model, messages, stop_ids) for messages in conversations]
