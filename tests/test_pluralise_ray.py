"""The data builder's model stages on a local Ray with two CPUs: two replicas of the tiny model.

The answer stage on Ray writes the files of the run in one process (log-likelihood answers are
deterministic; only the answer log's line order, the order in which chunks finished, differs), and
a run whose driver is killed with SIGKILL resumes from that log. Generation on N replicas gives the
questions of one run per topic group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")

from culturespa.errors import CulturespaError
from culturespa.pluralise.config import load_config
from culturespa.pluralise.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "generated" / "sample_questions.jsonl"
ANSWER_LOG = "answers/answers.log.jsonl"
LOCAL_RAY = {"replicas": 2, "num_cpus": 2}


def config_file(tmp_path: Path, model: Path, out: Path, ray: dict | None, **changes) -> Path:
    """recipes/data/tiny.yaml on the tiny model, one thread per model (the same sums in this
    process and in a replica), one question per topic, chunks of 4 prompts."""
    data = yaml.safe_load((ROOT / "recipes" / "data" / "tiny.yaml").read_text())
    data["model"].update(name=str(model), num_threads=1)
    data.update(output_dir=str(out), questions_file=str(SAMPLE), questions_limit_per_topic=1)
    data["answer"]["chunk_size"] = 4
    if ray is not None:
        data["ray"] = ray
    data.update(changes)
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def result_files(out: Path) -> dict[str, bytes]:
    """Every file of a run except the wall-clock timings."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "timings.json"
    }


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture(autouse=True)
def torch_threads():
    """The runs in this process set torch to one thread (model.num_threads); give it back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.long
def test_answer_stage_on_ray_resumes_after_sigkill_and_equals_one_process(tmp_path, tiny_model_dir):
    reference = tmp_path / "reference"
    run_pipeline(load_config(config_file(tmp_path, tiny_model_dir, reference, None)))

    out = tmp_path / "ray"
    command = [
        sys.executable,
        "-m",
        "culturespa.cli.main",
        "build-data",
        "--config",
        str(config_file(tmp_path, tiny_model_dir, out, LOCAL_RAY)),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    total = 12 * 7  # 12 questions kept, 7 prompts each
    # the driver is killed with SIGKILL once two chunks are in the log; its own session holds
    # the local Ray it started, whose last processes are ended afterwards
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if lines(out / ANSWER_LOG) >= 8:
            break
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = lines(out / ANSWER_LOG)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL and 0 < killed_at < total, killed_at
    assert not (out / "answers" / "answers.jsonl").exists()

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 replicas on Ray (local)" in done.stderr
    ours, theirs = result_files(out), result_files(reference)
    assert ours.keys() == theirs.keys()
    # the log holds the same records, in the order the chunks finished
    assert sorted(ours.pop(ANSWER_LOG).splitlines()) == sorted(theirs.pop(ANSWER_LOG).splitlines())
    assert ours == theirs  # answers, collected rows, training sets: byte for byte


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with two CPUs for this module (the stages join it instead of starting one)."""
    import logging

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_generation_on_two_replicas_is_one_run_per_topic_group(tmp_path, tiny_model_dir, local_ray):
    """Corruption (topic 4) and Migration (topic 5) fall in different groups of two: on Ray each
    round is one call per group, so the replies are those of a run on each topic alone. The
    random tiny model writes no usable question, so every stage run ends with that error."""
    gen = {"questions_file": None, "questions_limit_per_topic": None}
    logs = {}
    for name, topics, ray in (
        ("ray", ["Corruption", "Migration"], LOCAL_RAY),
        ("corruption", ["Corruption"], None),
        ("migration", ["Migration"], None),
    ):
        out = tmp_path / name
        path = config_file(tmp_path, tiny_model_dir, out, ray, topics=topics, **gen)
        config = load_config(path)
        config.generate.max_new_tokens = 12
        with pytest.raises(CulturespaError, match="too few usable JSON questions"):
            run_pipeline(config, stages=("generate",))
        log = (out / "questions" / "generation.log.jsonl").read_text().splitlines()
        logs[name] = sorted((json.loads(x) for x in log), key=lambda r: (r["round"], r["id"]))
    assert len(logs["ray"]) == 8 and all(r["groups"] == 2 for r in logs["ray"])

    def same(record: dict) -> dict:
        return {k: v for k, v in record.items() if k not in ("groups", "unit_size")}

    for name, topic in (("corruption", "Corruption"), ("migration", "Migration")):
        assert [same(r) for r in logs["ray"] if r["topic"] == topic] == [
            same(r) for r in logs[name]
        ]


@pytest.mark.slow
def test_a_replica_that_cannot_load_its_model_is_one_error(tmp_path, local_ray):
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    config = load_config(config_file(tmp_path, empty, tmp_path / "out", LOCAL_RAY))
    with pytest.raises(CulturespaError, match=r"^ray: a replica failed loading the model: .*"):
        run_pipeline(config, stages=("filter", "answer"))
