"""The OpenAI-compatible backend against a stub server on 127.0.0.1 (no network)."""

from __future__ import annotations

import json
import math
import threading
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise

import pytest

from culturespa.errors import CulturespaError
from culturespa.inference.backends.base import SamplingSettings
from culturespa.inference.backends.openai import MISSING_LOGPROB, OpenAICompatBackend


class _Stub(BaseHTTPRequestHandler):
    """A chat/completions server whose behaviour the tests switch with class attributes."""

    fail_first = 0
    requests: typing.ClassVar[list] = []
    paths: typing.ClassVar[list] = []
    honour_stop = True  # False: ignore `stop` like a server without support for it
    report_stop_reason = False  # True: vLLM's `stop_reason` in the choice
    echo_prefix = False  # True: the reply repeats the response prefix
    echo_prompt = True  # False: /completions returns no prompt log-probabilities
    reject_extensions = False  # True: HTTP 400 for continue_final_message
    logprob: typing.ClassVar[typing.Callable[[int, int], float] | None] = None
    prompt_logprobs: typing.ClassVar[typing.Callable[[list[int]], list[float]] | None] = None
    """When set, the echoed log-probabilities of a whole prompt (positions 1..n-1), e.g. from a
    real model; otherwise `logprob(previous token, token)`."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stub = type(self)
        stub.requests.append(body)
        stub.paths.append(self.path)
        if stub.fail_first > 0:
            stub.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        if stub.reject_extensions and "continue_final_message" in body:
            self.send_response(400)  # a server without vLLM's chat extensions
            self.end_headers()
            self.wfile.write(b'{"error": "unknown field continue_final_message"}')
            return
        if self.path.endswith("/completions") and not self.path.endswith("/chat/completions"):
            choice = self._completion(body)
        elif body.get("logprobs"):
            top = [{"token": "2", "logprob": -0.1}, {"token": " 1", "logprob": -2.5}]
            choice = {"message": {"content": "2"}, "logprobs": {"content": [{"top_logprobs": top}]}}
        else:
            choice = self._chat(body)
        data = json.dumps({"choices": [choice]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chat(self, body: dict) -> dict:
        stub = type(self)
        messages = body["messages"]
        if body.get("continue_final_message"):
            prefix = messages[-1]["content"]
            full = f"{prefix} and more"
            text = full if stub.echo_prefix else full[len(prefix) :]
        else:
            text = f"echo {messages[-1]['content']} seed={body['seed']}"
        choice: dict = {"message": {"content": text}, "finish_reason": "length"}
        hits = [(text.find(s), s) for s in body.get("stop", []) if s in text]
        if stub.honour_stop and hits:
            at, matched = min(hits)
            choice = {"message": {"content": text[:at]}, "finish_reason": "stop"}
            if stub.report_stop_reason:
                choice["stop_reason"] = matched
        return choice

    def _completion(self, body: dict) -> dict:
        """Echo: one log-probability per prompt token (None for the first), then one new token."""
        stub = type(self)
        ids = body["prompt"]
        if not stub.echo_prompt:
            return {"text": "x", "logprobs": {"tokens": ["x"], "token_logprobs": [-0.3]}}
        if stub.prompt_logprobs is not None:
            logprobs = [None, *stub.prompt_logprobs(ids)]
        else:
            logprobs = [None] + [stub.logprob(p, c) for p, c in pairwise(ids)]
        return {
            "text": "x",
            "finish_reason": "length",
            "logprobs": {
                "tokens": [str(i) for i in ids] + ["x"],
                "token_logprobs": [*logprobs, -0.3],
            },
        }


@pytest.fixture()
def server():
    _Stub.requests = []
    _Stub.paths = []
    _Stub.fail_first = 0
    _Stub.honour_stop = True
    _Stub.report_stop_reason = False
    _Stub.echo_prefix = False
    _Stub.echo_prompt = True
    _Stub.reject_extensions = False
    _Stub.logprob = None
    _Stub.prompt_logprobs = None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _conv(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "S"}, {"role": "user", "content": text}]


def _settings(stop: tuple[str, ...] = ()) -> SamplingSettings:
    return SamplingSettings(32, 0.0, 1.0, 0, stop=stop)


def test_generate_keeps_order_and_seeds(server):
    backend = OpenAICompatBackend("stub", api_base=server, concurrency=4, timeout_s=5)
    replies = backend.generate(
        [_conv(f"q{i}") for i in range(9)], SamplingSettings(8, 0.6, 0.9, 100)
    )
    assert replies == [f"echo q{i} seed={100 + i}" for i in range(9)]
    assert len(_Stub.requests) == 9 and _Stub.requests[0]["temperature"] == 0.6
    assert "stop" not in _Stub.requests[0]
    assert "continue_final_message" not in _Stub.requests[0]


def test_single_stop_string_is_sent_and_restored(server):
    backend = OpenAICompatBackend("stub", api_base=server, timeout_s=5)
    replies = backend.generate([_conv("a. b"), _conv("no dot")], _settings(stop=(".",)))
    assert _Stub.requests[0]["stop"] == ["."]
    assert replies == ["echo a.", "echo no dot seed=1"]


def test_several_stop_strings_use_vllm_stop_reason(server):
    _Stub.report_stop_reason = True
    backend = OpenAICompatBackend("stub", api_base=server, timeout_s=5)
    replies = backend.generate([_conv("x; y. z"), _conv("x. y; z")], _settings(stop=(".", ";")))
    assert _Stub.requests[0]["stop"] == [".", ";"]
    assert replies == ["echo x;", "echo x."]


def test_stop_not_appended_when_it_cannot_be_known(server, monkeypatch):
    backend = OpenAICompatBackend("stub", api_base=server, timeout_s=5)
    # several stop strings and no stop_reason: which one matched is unknown
    assert backend.generate([_conv("x; y")], _settings(stop=(".", ";"))) == ["echo x"]

    # vLLM says the reply ended at the end of turn (stop_reason None), not on the stop string
    def end_of_turn(self, body):
        return {"message": {"content": "done"}, "finish_reason": "stop", "stop_reason": None}

    monkeypatch.setattr(_Stub, "_chat", end_of_turn)
    assert backend.generate([_conv("q")], _settings(stop=(".",))) == ["done"]


def test_stop_strings_cut_locally_when_server_ignores_them(server):
    _Stub.honour_stop = False
    backend = OpenAICompatBackend("stub", api_base=server, timeout_s=5)
    assert backend.generate([_conv("a. b. c")], _settings(stop=(".",))) == ["echo a."]


@pytest.mark.parametrize("echo_prefix", [False, True])
def test_response_prefix_is_continued(server, echo_prefix):
    _Stub.echo_prefix = echo_prefix
    backend = OpenAICompatBackend("stub", api_base=server, timeout_s=5)
    conv = [*_conv("q"), {"role": "assistant", "content": "Question:"}]
    assert backend.generate([conv, _conv("plain")], _settings()) == [
        " and more",
        "echo plain seed=1",
    ]
    # requests are concurrent: tell them apart by their last message, not by arrival order
    first, second = sorted(_Stub.requests, key=lambda r: r["messages"][-1]["role"] != "assistant")
    assert first["messages"] == conv
    assert first["continue_final_message"] is True and first["add_generation_prompt"] is False
    assert "continue_final_message" not in second and "add_generation_prompt" not in second


def test_a_server_without_prefix_support_gets_a_hint(server):
    _Stub.reject_extensions = True
    backend = OpenAICompatBackend("stub", api_base=server, timeout_s=5, max_retries=0)
    conv = [*_conv("q"), {"role": "assistant", "content": "Question:"}]
    with pytest.raises(CulturespaError, match=r'HTTP 400.*set generate.response_prefix: ""'):
        backend.generate([conv], _settings())
    assert backend.generate([_conv("plain")], _settings()) == ["echo plain seed=0"]


def test_option_logprobs_from_top_logprobs(server):
    backend = OpenAICompatBackend("stub", api_base=server, timeout_s=5)
    scores = backend.option_logprobs([_conv("q")], [["1", "2", "3"]])
    assert scores == [[-2.5, -0.1, MISSING_LOGPROB]]
    assert _Stub.requests[0]["max_tokens"] == 1
    assert _Stub.paths == ["/v1/chat/completions"]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from support.tiny_model import build_tiny_tokenizer

    path = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_tokenizer(vocab_size=400).save_pretrained(path)
    return path


def test_exact_option_logprobs_sum_echoed_answer_tokens(server, tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    one, zero = tok.convert_tokens_to_ids(["1", "0"])
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.encode("10", add_special_tokens=False) == [one, zero]  # digits are split

    def logprob(prev: int, cur: int) -> float:
        if cur == end:  # ending right after '1' is unlikely, after '0' likely
            return -6.0 if prev == one else -0.05
        return -0.01 * (cur % 17) - 0.1

    _Stub.logprob = logprob
    convs = [_conv("first"), _conv("second")]
    labels = [["1", "10"], ["3", "10", "2"]]
    backend = OpenAICompatBackend(
        "stub", api_base=server, timeout_s=5, tokenizer=str(tokenizer_dir), concurrency=3
    )
    scores = backend.option_logprobs(convs, labels)

    want = []
    sent = {tuple(r["prompt"]) for r in _Stub.requests}
    for conv, labs in zip(convs, labels):
        prompt = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        prompt_ids = tok.encode(prompt, add_special_tokens=False)
        row = []
        for lab in labs:
            answer = [*tok.encode(lab, add_special_tokens=False), end]
            full = [*prompt_ids, *answer]
            assert tuple(full) in sent
            n = len(prompt_ids)
            row.append(sum(logprob(full[i - 1], full[i]) for i in range(n, n + len(answer))))
        want.append(row)
    assert len(scores) == 2 and [len(r) for r in scores] == [2, 3]
    for got_row, want_row in zip(scores, want):
        assert got_row == pytest.approx(want_row, abs=1e-6)
    assert scores[0][1] > scores[0][0]  # '10' beats '1', whose first token it shares
    gap = logprob(one, zero) + logprob(zero, end) - logprob(one, end)
    assert math.isclose(scores[0][1] - scores[0][0], gap, abs_tol=1e-6)
    assert len(_Stub.requests) == 5 and set(_Stub.paths) == {"/v1/completions"}
    request = _Stub.requests[0]
    assert request["echo"] is True and request["logprobs"] == 1
    assert request["temperature"] == 0 and request["max_tokens"] in (0, 1)
    assert all(isinstance(i, int) for i in request["prompt"])


def test_exact_option_logprobs_without_echo_is_a_clear_error(server, tokenizer_dir):
    _Stub.echo_prompt = False
    backend = OpenAICompatBackend(
        "stub", api_base=server, timeout_s=5, tokenizer=str(tokenizer_dir)
    )
    with pytest.raises(CulturespaError, match=r"did not return prompt log-probabilities \(echo\)"):
        backend.option_logprobs([_conv("q")], [["1", "10"]])


def _model_prompt_logprobs(model_dir):
    """log p(token i | tokens before it) of the tiny model for a whole prompt, one plain forward
    pass (no cache, no batching): what `vllm serve` echoes."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    lock = threading.Lock()  # the stub server answers requests on several threads

    def prompt_logprobs(ids: list[int]) -> list[float]:
        with lock, torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        return [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]

    return prompt_logprobs


BUILDER_QUESTIONS = (
    ("t00-a", "Colour?", ("Red", "Green", "Blue"), 1),
    ("t01-b", "Pet?", ("Cat", "Dog", "Fish", "Bird"), 0),
    ("t02-c", "Season?", ("Spring", "Summer", "Winter"), 1),  # numbered as the first
)


@pytest.mark.parametrize("debias", ["none", "permute", "calibrate"])
def test_builder_answers_through_the_server_match_transformers(server, tiny_model_dir, debias):
    """The answer stage with `answer.debias` through exact option scoring (`tokenizer`) against a
    server that echoes the tiny model's log-probabilities: the same answers and distributions as
    the transformers backend, and each content-free question sent once per option."""
    from culturespa.inference.backends.hf import HFBackend
    from culturespa.pluralise.answer import answer_questions
    from culturespa.pluralise.questions import Question
    from culturespa.pluralise.sections import AnswerSection
    from culturespa.survey.items import TOPIC_NAMES

    _Stub.prompt_logprobs = _model_prompt_logprobs(tiny_model_dir)
    questions = [
        Question(qid, TOPIC_NAMES[i], text, options, first_option=first)
        for i, (qid, text, options, first) in enumerate(BUILDER_QUESTIONS)
    ]
    section = AnswerSection(debias=debias, cross_culture_thinking=False, chunk_size=8)
    client = OpenAICompatBackend(
        "stub", api_base=server, timeout_s=300, tokenizer=str(tiny_model_dir), concurrency=4
    )
    got = answer_questions(client, questions, ["USA", "CHN"], section)
    local = HFBackend(str(tiny_model_dir), device="cpu", dtype="float32", batch_size=8)
    want = answer_questions(local, questions, ["USA", "CHN"], section)
    assert [r["id"] for r in got] == [r["id"] for r in want] and len(got) == 3 * 3
    assert [r["answer"] for r in got] == [r["answer"] for r in want]
    for mine, theirs in zip(got, want):
        assert mine["probs"] == pytest.approx(theirs["probs"], abs=1e-5)
    assert set(_Stub.paths) == {"/v1/completions"}
    # one request per prompt and option, for each system prompt (unaware, USA, CHN); calibration
    # adds one content-free question per system prompt and numbering (1..3 and 0..3), not per
    # question
    per_system = {"none": 3 + 4 + 3, "permute": 3 * 3 + 4 * 4 + 3 * 3, "calibrate": 10 + 3 + 4}
    assert len(_Stub.requests) == 3 * per_system[debias]
    assert len({tuple(r["prompt"]) for r in _Stub.requests}) == len(_Stub.requests)


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
