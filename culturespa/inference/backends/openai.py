"""OpenAI-compatible HTTP backend (`vllm serve`, TGI, llama.cpp server, any /v1 endpoint).

Requests of one batch are sent concurrently (at most `concurrency` in flight), each with a
timeout and a bounded number of retries. Standard library only (plus transformers for the
optional local tokenizer, see below).

Generation (`/chat/completions`):

- Stop strings are sent as `stop`. Servers drop the matched stop string from the reply; it is
  put back so that a reply ends with its stop string, as `SamplingSettings.stop` says. vLLM
  reports the matched string (`stop_reason`) and it is used when present; a server that does
  not report it gets the stop string appended when exactly one was given and the reply
  finished with `finish_reason: stop` (such a server cannot tell an end of turn from a stop
  string, so a reply that ended on its own also gets it).
- A conversation that ends with an assistant message (a response prefix) is continued with
  `continue_final_message: true, add_generation_prompt: false`, an extension of the chat
  completions API that vLLM and SGLang implement; the reply is what follows the prefix (a prefix
  echoed by the server is removed). Servers without the extension (TGI, llama.cpp, OpenAI's API)
  may reject the fields, or ignore them and answer a fresh turn: with those, set the data
  builder's `generate.response_prefix` to "".

Option scoring (`option_logprobs`) has two modes:

- Without `tokenizer` (the default): the top log-probabilities of the first reply token
  (`logprobs: true, top_logprobs: N, max_tokens: 1`) are looked up for each option label. That
  is close to the local backends' scores only when every option label is a single token
  (Llama-3, Qwen; the end-of-turn token they also score is left out). A tokenizer that splits '10' into '1' '0' gives option 10 the mass of '1', and labels
  missing from the top N get a floor value (`MISSING_LOGPROB`).
- With `tokenizer="<folder or hub id of the served model's tokenizer>"`: exact, as the local
  backends score. Each conversation is rendered with the tokenizer's chat template, and every
  (prompt, option) pair is sent once to `/completions` as token ids (prompt + the option's answer
  tokens including the end of turn) with `echo: true, logprobs: 1, max_tokens: 1`; the option's
  score is the sum of the echoed prompt log-probabilities over its answer tokens. Needs a server
  that returns prompt log-probabilities with `echo` (vLLM does; a server that does not is
  reported with a clear error). The data builder's debiased answers (`answer.debias`) need this
  mode: permuted orders and calibration use every option's score.
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

from culturespa.errors import CulturespaError
from culturespa.inference.backends.base import (
    Conversation,
    SamplingSettings,
    cut_at_stop,
    group_by_labels,
)

logger = logging.getLogger(__name__)

MISSING_LOGPROB = -1000.0
"""Log-probability given to an option that is not among the returned top tokens."""

CHAT_PATH = "/chat/completions"
COMPLETIONS_PATH = "/completions"


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
        tokenizer: str | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base.rstrip("/")
        self.api_key = os.environ.get(api_key_env, "EMPTY")
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.top_logprobs = top_logprobs
        self.tokenizer_name = tokenizer or None
        """Folder or hub id of the served model's tokenizer: turns on exact option scoring."""
        self._chat = None  # ChatTokens, loaded on first exact scoring call

    # -- HTTP ---------------------------------------------------------------------------------

    def _post(self, path: str, payload: dict) -> dict:
        url = f"{self.api_base}{path}"
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

    def _map(self, path: str, payloads: list[dict]) -> list[dict]:
        """POST every payload to `path`, concurrently; responses in payload order."""
        if not payloads:
            return []
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(lambda payload: self._post(path, payload), payloads))

    # -- generation ---------------------------------------------------------------------------

    def generate(
        self, conversations: Sequence[Conversation], settings: SamplingSettings
    ) -> list[str]:
        """One chat completion per conversation, sent concurrently; seeds are per request.

        Replies end with their stop string (restored, see the module docstring); a conversation
        ending with an assistant message is continued and only the continuation is returned.
        """
        payloads = []
        prefixes = []
        for i, conv in enumerate(conversations):
            payload = {
                "model": self.model,
                "messages": list(conv),
                "max_tokens": settings.max_new_tokens,
                "temperature": max(settings.temperature, 0.0),
                "top_p": settings.top_p,
                "seed": settings.seed + i,
            }
            if settings.stop:
                payload["stop"] = list(settings.stop)
            prefix = _response_prefix(conv)
            if prefix is not None:
                payload["continue_final_message"] = True
                payload["add_generation_prompt"] = False
            payloads.append(payload)
            prefixes.append(prefix)
        replies = []
        try:
            responses = self._map(CHAT_PATH, payloads)
        except CulturespaError as exc:
            if any(prefix is not None for prefix in prefixes) and "HTTP 4" in str(exc):
                raise CulturespaError(
                    f"{exc}; the requests continue an assistant message (a response prefix), "
                    "which needs a server with `continue_final_message` (vllm serve, SGLang): "
                    'with other servers set generate.response_prefix: "" in the config'
                ) from exc
            raise
        for response, prefix in zip(responses, prefixes):
            try:
                choice = response["choices"][0]
                text = choice["message"]["content"] or ""
            except (KeyError, IndexError, TypeError) as exc:
                raise CulturespaError(f"malformed chat completion: {str(response)[:200]}") from exc
            if prefix and text.startswith(prefix):
                text = text[len(prefix) :]
            text = _restore_stop(text, choice, settings.stop)
            replies.append(cut_at_stop(text, settings.stop))
        return replies

    # -- option scoring -----------------------------------------------------------------------

    def option_logprobs(
        self, conversations: Sequence[Conversation], labels: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """log p(label, end of turn | conversation) per option.

        Exact with `tokenizer=` (echoed prompt log-probabilities from `/completions`);
        without it, the first reply token's top log-probabilities, which are exact only for
        single-token labels (see the module docstring).
        """
        if len(labels) != len(conversations):
            raise ValueError("one label list per conversation")
        if self.tokenizer_name is not None:
            return self._exact_option_logprobs(conversations, labels)
        return self._first_token_option_logprobs(conversations, labels)

    def _first_token_option_logprobs(
        self, conversations: Sequence[Conversation], labels: Sequence[Sequence[str]]
    ) -> list[list[float]]:
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
        for response, labs in zip(self._map(CHAT_PATH, payloads), labels):
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

    def _chat_tokens(self):
        """The `ChatTokens` of the configured tokenizer, loaded once."""
        if self._chat is None:
            from culturespa.inference.backends.base import ChatTokens
            from culturespa.inference.models import resolve_model

            try:
                from transformers import AutoTokenizer
            except ImportError as exc:
                raise CulturespaError(
                    "exact option scoring with `tokenizer` needs transformers "
                    "(pip install -e '.[hf]')"
                ) from exc
            try:
                tok = AutoTokenizer.from_pretrained(resolve_model(self.tokenizer_name))
            except (OSError, ValueError) as exc:
                raise CulturespaError(
                    f"cannot load tokenizer {self.tokenizer_name!r} for exact option scoring: {exc}"
                ) from exc
            self._chat = ChatTokens(tok)
        return self._chat

    def _exact_option_logprobs(
        self, conversations: Sequence[Conversation], labels: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        chat = self._chat_tokens()
        prompts = chat.encode_prompts(conversations)
        payloads, spans = [], []
        for ids, labs in zip(prompts, labels):
            for lab in labs:
                answer = chat.label_tokens(lab)
                payloads.append(
                    {
                        "model": self.model,
                        "prompt": [*ids, *answer],
                        "max_tokens": 1,
                        "echo": True,
                        "logprobs": 1,
                        "temperature": 0.0,
                    }
                )
                spans.append((len(ids), len(answer)))
        flat = [
            _echoed_sum(response, start, length)
            for response, (start, length) in zip(self._map(COMPLETIONS_PATH, payloads), spans)
        ]
        return group_by_labels(flat, labels)

    def close(self) -> None:
        return None


def _response_prefix(conversation: Conversation) -> str | None:
    """The content of a final assistant message (a response prefix), or None."""
    if conversation and conversation[-1].get("role") == "assistant":
        return conversation[-1].get("content") or ""
    return None


def _restore_stop(text: str, choice: dict, stop: Sequence[str]) -> str:
    """Put back the stop string the server removed from a reply that stopped on it."""
    if not stop or choice.get("finish_reason") != "stop":
        return text
    if any(s and text.endswith(s) for s in stop):
        return text
    if "stop_reason" in choice:  # vLLM: the matched string, or None/a token id for end of turn
        reason = choice["stop_reason"]
        return text + reason if isinstance(reason, str) and reason in stop else text
    if len(stop) == 1:
        return text + stop[0]
    return text


_NO_ECHO = (
    "the server did not return prompt log-probabilities (echo) from /completions; exact option "
    "scoring needs a server that does (vLLM). Use method: sample, or omit the tokenizer option "
    "to score the first reply token only"
)


def _echoed_sum(response: dict, start: int, length: int) -> float:
    """Sum of the echoed log-probabilities at prompt positions [start, start + length)."""
    try:
        logprobs = response["choices"][0]["logprobs"]["token_logprobs"]
    except (KeyError, IndexError, TypeError) as exc:
        raise CulturespaError(f"{_NO_ECHO} (response: {str(response)[:200]})") from exc
    if not isinstance(logprobs, list) or len(logprobs) < start + length:
        got = len(logprobs) if isinstance(logprobs, list) else 0
        raise CulturespaError(
            f"{_NO_ECHO} (got {got} token log-probabilities for a prompt of {start + length})"
        )
    window = logprobs[start : start + length]
    if any(value is None for value in window):
        raise CulturespaError(f"{_NO_ECHO} (answer positions without a log-probability)")
    return float(sum(window))
