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


def _serve(reply_for: Callable[[dict], str]):
    """A local OpenAI-style chat endpoint answering `reply_for(request body)`; records requests."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            reply = {
                "id": "x",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": reply_for(body)},
                    }
                ],
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/chat/completions", seen
    server.shutdown()


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
    from culturespa.evaluation.run import run_evaluation

    url, seen = chat_server
    results = run_evaluation(
        "stub-model",
        ["wvs_gen_culture_aware_nga"],
        backend="local-chat-completions",
        model_args={"base_url": url, "num_concurrent": 1, "max_retries": 1},
        limit=2,
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
    from culturespa.evaluation.run import run_evaluation

    url, seen = stated_server
    results = run_evaluation(
        "stub-model",
        ["wvs_dist_culture_aware_nga"],
        backend="local-chat-completions",
        model_args={"base_url": url, "num_concurrent": 1, "max_retries": 1},
        limit=2,
        log_samples=True,
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
