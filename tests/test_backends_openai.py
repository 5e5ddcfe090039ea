"""The OpenAI-compatible backend against a stub server on 127.0.0.1 (no network)."""

from __future__ import annotations

import json
import threading
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from culturespa.backends.base import SamplingSettings
from culturespa.backends.openai_compat import MISSING_LOGPROB, OpenAICompatBackend
from culturespa.errors import CulturespaError


class _Stub(BaseHTTPRequestHandler):
    fail_first = 0
    requests: typing.ClassVar[list] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        user = body["messages"][-1]["content"]
        if body.get("logprobs"):
            top = [{"token": "2", "logprob": -0.1}, {"token": " 1", "logprob": -2.5}]
            choice = {"message": {"content": "2"}, "logprobs": {"content": [{"top_logprobs": top}]}}
        else:
            choice = {"message": {"content": f"echo {user} seed={body['seed']}"}}
        data = json.dumps({"choices": [choice]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server():
    _Stub.requests = []
    _Stub.fail_first = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _conv(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "S"}, {"role": "user", "content": text}]


def test_generate_keeps_order_and_seeds(server):
    backend = OpenAICompatBackend("stub", api_base=server, concurrency=4, timeout_s=5)
    replies = backend.generate(
        [_conv(f"q{i}") for i in range(9)], SamplingSettings(8, 0.6, 0.9, 100)
    )
    assert replies == [f"echo q{i} seed={100 + i}" for i in range(9)]
    assert len(_Stub.requests) == 9 and _Stub.requests[0]["temperature"] == 0.6


def test_option_logprobs_from_top_logprobs(server):
    backend = OpenAICompatBackend("stub", api_base=server, timeout_s=5)
    scores = backend.option_logprobs([_conv("q")], [["1", "2", "3"]])
    assert scores == [[-2.5, -0.1, MISSING_LOGPROB]]
    assert _Stub.requests[0]["max_tokens"] == 1


def test_retries_are_bounded(server):
    _Stub.fail_first = 2
    backend = OpenAICompatBackend("stub", api_base=server, max_retries=2, timeout_s=5)
    assert backend.generate([_conv("q")], SamplingSettings(4, 0.0, 1.0, 0))
    _Stub.fail_first = 10
    _Stub.requests = []
    with pytest.raises(CulturespaError, match="failed after 2 tries"):
        OpenAICompatBackend("stub", api_base=server, max_retries=1, timeout_s=5).generate(
            [_conv("q")], SamplingSettings(4, 0.0, 1.0, 0)
        )
    assert len(_Stub.requests) == 2


def test_unreachable_server_is_a_clear_error():
    backend = OpenAICompatBackend(
        "stub", api_base="http://127.0.0.1:9/v1", max_retries=0, timeout_s=2
    )
    with pytest.raises(CulturespaError, match=r"request to http://127\.0\.0\.1:9/v1"):
        backend.generate([_conv("q")], SamplingSettings(4, 0.0, 1.0, 0))
