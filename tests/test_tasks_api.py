"""The generation tasks on an API model without log-probabilities (`local-chat-completions`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from culturespa.prompts.templates import render

pytestmark = pytest.mark.slow
pytest.importorskip("lm_eval")
pytest.importorskip("requests")
pytest.importorskip("tenacity")  # lm-eval[api]


@pytest.fixture()
def chat_server():
    """A local OpenAI-style chat endpoint that answers "2" and records the requests."""
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
                        "message": {"role": "assistant", "content": "2"},
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
