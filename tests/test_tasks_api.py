"""The generation tasks on an API model without log-probabilities (`local-chat-completions`)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from culturespa.prompts.templates import render
from culturespa_tasks import TASK_DIR

pytestmark = pytest.mark.slow
pytest.importorskip("lm_eval")
pytest.importorskip("requests")
pytest.importorskip("tenacity")  # lm-eval[api]


def _serve_json(respond: Callable[[dict], dict], path: str):
    """A local OpenAI-style endpoint at `path` answering each POST with `respond(request body)`;
    records the requests."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            data = json.dumps(respond(body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}{path}", seen
    server.shutdown()


def _serve(reply_for: Callable[[dict], str]):
    """A local chat endpoint answering `reply_for(request body)` as the assistant's message."""

    def respond(body: dict) -> dict:
        message = {"role": "assistant", "content": reply_for(body)}
        return {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        }

    yield from _serve_json(respond, "/v1/chat/completions")


@pytest.fixture()
def chat_server():
    """A chat endpoint that answers "2"."""
    yield from _serve(lambda body: "2")


def stated_reply(body: dict) -> str:
    """Half of the people on the first option listed, the rest spread evenly, one line each,
    for the options the request's last user turn lists."""
    options = body["messages"][-1]["content"].rsplit("#Options: ", 1)[1].split("\n", 1)[0]
    numbers = re.findall(r"(?:^|\s)(\d+)\.", options)
    rest = 50 / (len(numbers) - 1)
    return "\n".join(f"{n}: {50 if i == 0 else rest:.2f}%" for i, n in enumerate(numbers))


@pytest.fixture()
def stated_server():
    """A chat endpoint that states a distribution with its largest share on the first option."""
    yield from _serve(stated_reply)


def test_generation_task_through_local_chat_completions(chat_server):
    from culturespa.evaluation.run import EvalOptions, run_evaluation

    url, seen = chat_server
    results = run_evaluation(
        "stub-model",
        ["wvs_gen_culture_aware_nga"],
        options=EvalOptions(
            backend="local-chat-completions",
            model_args={"base_url": url, "num_concurrent": 1, "max_retries": 1},
            limit=2,
        ),
    )
    row = results["results"]["wvs_gen_culture_aware_nga"]
    assert row["coverage,none"] == 1.0
    assert 0.0 <= row["alignment,none"] <= 1.0
    assert len(seen) == 2
    first = seen[0]
    assert first["messages"][0] == {
        "role": "system",
        "content": render("culture_aware", "Q1", "NGA").system,
    }
    assert (first["temperature"], first["top_p"], first["max_tokens"]) == (0.6, 0.9, 256)


def test_stated_distribution_through_local_chat_completions(stated_server):
    from culturespa.evaluation.run import EvalOptions, run_evaluation

    url, seen = stated_server
    results = run_evaluation(
        "stub-model",
        ["wvs_dist_culture_aware_nga"],
        options=EvalOptions(
            backend="local-chat-completions",
            model_args={"base_url": url, "num_concurrent": 1, "max_retries": 1},
            limit=2,
            log_samples=True,
        ),
    )
    row = results["results"]["wvs_dist_culture_aware_nga"]
    assert row["coverage,none"] == 1.0 and row["unparsed,none"] == 0.0
    for sample in results["samples"]["wvs_dist_culture_aware_nga"]:
        assert sample["alignment"]["answer"] == sample["doc"]["options"][0]  # the 50% option
    first = seen[0]
    system, user = first["messages"][0], first["messages"][-1]["content"]
    assert system == {"role": "system", "content": render("culture_aware", "Q1", "NGA").system}
    assert user == render("culture_aware", "Q1", "NGA", shares=True).user
    assert (first["temperature"], first["max_tokens"]) == (0.0, 256)  # greedy, whole replies


def test_lm_eval_runs_the_stated_distributions_by_glob_on_a_chat_api(stated_server, tmp_path):
    """The Done-when command with `local-chat-completions` (no log-likelihoods)."""
    if shutil.which("lm_eval") is None:
        pytest.skip("lm_eval command not installed")
    url, seen = stated_server
    command = [
        "lm_eval", "--model", "local-chat-completions",
        "--model_args", f"model=stub,base_url={url},num_concurrent=1,max_retries=1",
        "--apply_chat_template", "--include_path", str(TASK_DIR),
        "--tasks", "wvs_dist_culture_aware_*", "--limit", "2", "--output_path", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = tmp_path.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    tasks = [t for t in results if t.startswith("wvs_dist_culture_aware_")]
    assert len(tasks) == 19
    for task in tasks:
        assert results[task]["coverage,none"] == 1.0 and results[task]["unparsed,none"] == 0.0
        assert not math.isnan(results[task]["alignment_w1,none"])
    assert len(seen) == 19 * 2


# Reversed options through an API with log-likelihoods ------------------------------------------


def _serve_completions(tokenizer_dir):
    """A local OpenAI-style `/v1/completions` endpoint for lm-eval's `local-completions`
    log-likelihood requests (`echo`, `logprobs`, prompts as token ids): every prompt token gets
    log-probability -1, except the last one, -0.1 when the prompt ends in the number 1 (an end
    of turn after it allowed) and -5 otherwise, so the option numbered 1 is the most likely
    continuation, whatever the options' numbers."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    def choice(index: int, ids: list[int]) -> dict:
        text = tokenizer.decode(ids).strip().removesuffix("<|im_end|>").rstrip()
        number = re.search(r"(\d+)$", text)
        last = -0.1 if number and number.group(1) == "1" else -5.0
        logprobs = [None] + [-1.0] * (len(ids) - 2) + [last] + [-1.0]
        return {
            "index": index,
            "text": "",
            "finish_reason": "length",
            "logprobs": {
                "tokens": [str(i) for i in ids] + ["x"],
                "token_logprobs": logprobs,
                "top_logprobs": [None] + [{"x": -0.1}] * len(ids),
            },
        }

    def respond(body: dict) -> dict:
        prompts = body["prompt"]
        prompts = prompts if isinstance(prompts[0], list) else [prompts]
        choices = [choice(i, ids) for i, ids in enumerate(prompts)]
        return {"id": "x", "object": "text_completion", "choices": choices}

    yield from _serve_json(respond, "/v1/completions")


@pytest.fixture()
def completions_server(tiny_model_dir):
    yield from _serve_completions(tiny_model_dir)


def evaluate_on_completions_server(url: str, tokenizer_dir, task: str) -> dict:
    """The first 3 items of `task` through lm-eval's `local-completions` model on `url`."""
    from culturespa.evaluation.run import EvalOptions, run_evaluation

    model_args = {
        "base_url": url, "tokenizer": str(tokenizer_dir), "tokenizer_backend": "huggingface",
        "num_concurrent": 1, "max_retries": 1,
    }  # fmt: skip
    options = EvalOptions(backend="local-completions", model_args=model_args, limit=3,
                          log_samples=True)  # fmt: skip
    return run_evaluation("stub-model", [task], options=options)


def test_reversed_options_through_local_completions(completions_server, tiny_model_dir):
    """The reversed-order tasks need log-likelihoods, so on an API they run through
    `local-completions` (chat APIs have none). A server whose model always prefers the option
    numbered 1, the first one listed, gives every item its last survey code."""
    url, seen = completions_server
    task = "wvs_rev_culture_aware_usa"
    results = evaluate_on_completions_server(url, tiny_model_dir, task)
    samples = results["samples"][task]
    assert len(samples) == 3 and seen and all(body["echo"] for body in seen)
    for sample in samples:
        codes = sample["doc"]["options"]  # the survey's codes in the order listed: last first
        assert codes == sorted(codes, reverse=True)
        assert sample["alignment"]["answer"] == codes[0], sample["doc"]["qid"]
        scores = [float(r[0]) for r in sample["filtered_resps"]]
        assert scores[0] > max(scores[1:]), scores  # chosen, not a tie broken to the first
    from culturespa.survey.items import survey_majority

    row = results["results"][task]
    hits = [survey_majority("USA", s["doc"]["qid"]) == s["doc"]["options"][0] for s in samples]
    assert row["majority_match,none"] == pytest.approx(sum(hits) / 3)
    assert 0.0 <= row["alignment,none"] <= 1.0


@pytest.mark.parametrize("task", ["wvs_perm_culture_aware_usa", "wvs_cal_culture_aware_usa"])
def test_debiased_ways_through_local_completions(completions_server, tiny_model_dir, task):
    """The same server, whose model only likes the number 1: under the permuted way every option
    is numbered 1 once, and the calibration prompt is numbered as the item, so the number's
    pull cancels and every item gets the uniform distribution and no answer (a tie)."""
    url, seen = completions_server
    results = evaluate_on_completions_server(url, tiny_model_dir, task)
    samples = results["samples"][task]
    assert len(samples) == 3 and seen
    for sample in samples:
        k = len(sample["doc"]["shown"])
        assert len(sample["resps"]) == k * len(sample["doc"]["users"])
        assert sample["alignment"]["shares"] == pytest.approx([1 / k] * k, abs=1e-9)
        assert sample["alignment"]["answer"] is None
    row = results["results"][task]
    assert row["tied,none"] == 3 and row["coverage,none"] == 0.0
    assert 0.0 <= row["alignment_w1,none"] <= 1.0
