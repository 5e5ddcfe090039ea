"""Identical requests of different tasks sent to the model once.

The culture-unaware prompt does not depend on the country, so `wvs_culture_unaware_*` asks the same
requests 19 times; `DeduplicatingLM` sends each once and gives every task the same answer (for
sampled generation, one reply scored against every country, as the paper does). Repeats of one
request (`repeats` > 1) stay separate. Importing this module imports lm-eval.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from lm_eval.api.model import LM, hash_args

logger = logging.getLogger(__name__)


class DeduplicatingLM(LM):
    """Forwards to `inner`, sending each distinct request once; counts what it sends."""

    def __init__(self, inner: LM) -> None:
        super().__init__()
        self.inner = inner
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _run(self, kind: str, requests: list) -> list:
        seen_objects: Counter[int] = Counter()
        keys = []
        for req in requests:
            keys.append((hash_args(kind, req.args), seen_objects[id(req)]))
            seen_objects[id(req)] += 1
        first: dict[tuple[str, int], int] = {}
        unique = []
        for req, key in zip(requests, keys):
            if key not in first:
                first[key] = len(unique)
                unique.append(req)
        self.received[kind] += len(requests)
        self.sent[kind] += len(unique)
        logger.info("%s: %d requests, %d distinct", kind, len(requests), len(unique))
        answers = getattr(self.inner, kind)(unique) if unique else []
        return [answers[first[key]] for key in keys]

    def loglikelihood(self, requests):
        return self._run("loglikelihood", requests)

    def loglikelihood_rolling(self, requests):
        return self._run("loglikelihood_rolling", requests)

    def generate_until(self, requests):
        return self._run("generate_until", requests)

    def apply_chat_template(self, chat_history, add_generation_prompt=True):
        return self.inner.apply_chat_template(chat_history, add_generation_prompt)

    def chat_template(self, chat_template=False):
        return self.inner.chat_template(chat_template)

    def set_cache_hook(self, cache_hook) -> None:
        self.inner.set_cache_hook(cache_hook)

    @property
    def tokenizer_name(self) -> str:
        return self.inner.tokenizer_name

    @property
    def device(self):
        return self.inner.device

    @property
    def rank(self) -> int:
        return self.inner.rank

    @property
    def world_size(self) -> int:
        return self.inner.world_size

    def all_gather(self, tensor):
        return self.inner.all_gather(tensor)

    def gather_object(self, obj, dst=0):
        return self.inner.gather_object(obj, dst)

    def barrier(self) -> None:
        self.inner.barrier()
