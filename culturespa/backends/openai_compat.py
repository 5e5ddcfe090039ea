"""OpenAI-compatible HTTP backend (`vllm serve`, TGI, llama.cpp server, any /v1 endpoint).

Requests of one batch are sent concurrently (at most `concurrency` in flight), each with a
timeout and a bounded number of retries. Standard library only.

Option scoring asks for the top log-probabilities of the first answer token
(`logprobs: true, top_logprobs: N, max_tokens: 1`). That is exact when every option number is a
single token (Llama-3, Qwen) and an approximation otherwise (a tokenizer that splits '10' into
'1' '0' gives option 10 the mass of '1'); options missing from the top N get a floor value.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from culturespa.backends.base import Conversation, SamplingSettings
from culturespa.errors import CulturespaError

logger = logging.getLogger(__name__)

MISSING_LOGPROB = -1000.0
"""Log-probability given to an option that is not among the returned top tokens."""


class OpenAICompatBackend:
    """Chat completions over HTTP against an OpenAI-compatible server."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_base: str = "http://127.0.0.1:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        top_logprobs: int = 20,
        batch_size: int | None = None,  # accepted for a uniform config; requests are concurrent
    ) -> None:
        self.model = model
        self.api_base = api_base.rstrip("/")
        self.api_key = os.environ.get(api_key_env, "EMPTY")
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.top_logprobs = top_logprobs

    def _post(self, payload: dict) -> dict:
        url = f"{self.api_base}/chat/completions"
        body = json.dumps(payload).encode("utf-8")
        last_error = ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(
                url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.api_key}",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}: {exc.read()[:200]!r}"
                if exc.code < 500 and exc.code != 429:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last_error = str(exc)
            if attempt < self.max_retries:
                time.sleep(min(2.0**attempt * 0.2, 5.0))
        raise CulturespaError(f"request to {url} failed after {attempt + 1} tries: {last_error}")

    def _map(self, payloads: list[dict]) -> list[dict]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(self._post, payloads))

    def generate(
        self, conversations: Sequence[Conversation], settings: SamplingSettings
    ) -> list[str]:
        """One chat completion per conversation, sent concurrently; seeds are per request."""
        payloads = [
            {
                "model": self.model,
                "messages": list(conv),
                "max_tokens": settings.max_new_tokens,
                "temperature": max(settings.temperature, 0.0),
                "top_p": settings.top_p,
                "seed": settings.seed + i,
            }
            for i, conv in enumerate(conversations)
        ]
        replies = []
        for response in self._map(payloads):
            try:
                replies.append(response["choices"][0]["message"]["content"] or "")
            except (KeyError, IndexError, TypeError) as exc:
                raise CulturespaError(f"malformed chat completion: {str(response)[:200]}") from exc
        return replies

    def option_logprobs(
        self, conversations: Sequence[Conversation], labels: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Top log-probabilities of the first reply token, looked up for every option label."""
        payloads = [
            {
                "model": self.model,
                "messages": list(conv),
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": True,
                "top_logprobs": self.top_logprobs,
            }
            for conv in conversations
        ]
        scores = []
        for response, labs in zip(self._map(payloads), labels):
            try:
                top = response["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            except (KeyError, IndexError, TypeError) as exc:
                raise CulturespaError(
                    "the server returned no top_logprobs; use method: sample with this endpoint"
                ) from exc
            table: dict[str, float] = {}
            for entry in top:
                token = str(entry["token"]).strip()
                table[token] = max(table.get(token, MISSING_LOGPROB), float(entry["logprob"]))
            scores.append([table.get(lab, MISSING_LOGPROB) for lab in labs])
        return scores

    def close(self) -> None:
        return None
