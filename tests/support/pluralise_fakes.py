"""A scripted, deterministic backend for pipeline tests that need no model."""

from __future__ import annotations

import hashlib
import json


def _digest(*parts) -> int:
    return int(hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12], 16)


class ScriptedBackend:
    """Replies are a function of (prompt, seed, position); `valid_share` of them are JSON questions."""

    name = "scripted"

    def __init__(self, valid_share: float = 1.0) -> None:
        self.valid_share = valid_share
        self.calls: list[int] = []

    def generate(self, conversations, settings):
        self.calls.append(len(conversations))
        replies = []
        for i, conv in enumerate(conversations):
            h = _digest(conv, settings.seed, i)
            if (h % 1000) / 1000 >= self.valid_share:
                replies.append("Sure! Here is a question about values.")
                continue
            question = {
                "question": f"How much do you value thing {h % 10**8}?",
                "options": ["A lot", "Somewhat", "Not at all"],
            }
            text = json.dumps(question)
            prefix = conv[-1]["content"] if conv[-1]["role"] == "assistant" else ""
            # a continued reply follows its prefix; an opened one may talk first
            replies.append(
                text[len(prefix) :]
                if text.startswith(prefix) and prefix
                else "Here you go:\n" + text
            )
        return replies

    def option_logprobs(self, conversations, labels):
        self.calls.append(len(conversations))
        return [
            [-(_digest(conv, lab) % 997) / 100 for lab in labs]
            for conv, labs in zip(conversations, labels)
        ]

    def close(self) -> None:
        pass


class ShuffledReplicas:
    """`size` scripted backends standing in for model replicas: item i runs on replica i mod size,
    and results come back last item first, as replicas on Ray may finish them."""

    def __init__(self, size: int, valid_share: float = 1.0) -> None:
        self.size = size
        self.backends = [ScriptedBackend(valid_share) for _ in range(size)]

    def map_unordered(self, func, items):
        results = [(i, func(self.backends[i % self.size], item)) for i, item in enumerate(items)]
        yield from reversed(results)

    def close(self) -> None:
        pass
