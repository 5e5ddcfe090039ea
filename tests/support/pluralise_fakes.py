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


class PlaceBiasedBackend:
    """An option scorer whose preferences are known: log-likelihood of the option listed at place
    p (0-based) of k = `place_bias(p, k)` + `preference(system prompt, option text)`.

    The options are read from the user turn's `#Options: 1.Red 2.Green ...` line (one-word
    texts); the content-free text `N/A` has preference 0, so a content-free question scores the
    place alone.
    """

    name = "place-biased"

    def __init__(self, place_bias, preference) -> None:
        self.place_bias = place_bias
        self.preference = preference
        self.prompts: list[str] = []

    def option_logprobs(self, conversations, labels):
        import re

        rows = []
        for conv, labs in zip(conversations, labels):
            system, user = conv[0]["content"], conv[-1]["content"]
            self.prompts.append(user)
            line = user.split("#Options: ")[1].split("\n")[0]
            listed = re.findall(r"(\d+)\.(\S+)", line)
            place = {number: (p, text) for p, (number, text) in enumerate(listed)}
            row = []
            for lab in labs:
                p, text = place[lab]
                mine = 0.0 if text == "N/A" else self.preference(system, text)
                row.append(self.place_bias(p, len(listed)) + mine)
            rows.append(row)
        return rows

    def generate(self, conversations, settings):
        raise AssertionError("this fake only scores options")

    def close(self) -> None:
        pass
