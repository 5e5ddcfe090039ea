"""culturespa.evaluation and the `tasks-path`, `tasks` commands, without running a model."""

from __future__ import annotations

import json

import pytest

from culturespa.cli.main import main
from culturespa.errors import CulturespaError
from culturespa.evaluation.intervals import alignment_intervals, read_sample_log
from culturespa.evaluation.tasks import expand_tasks
from culturespa.inference.model_args import build_model_args, parse_model_args
from culturespa.inference.models import resolve_model
from culturespa_tasks import TASK_DIR

NAMES = ["wvs_culture_aware", "wvs_culture_aware_usa", "wvs_culture_aware_chn", "wvs_gen_x_usa"]


def test_expand_tasks_takes_names_and_globs_in_order():
    assert expand_tasks("wvs_culture_aware_*", NAMES) == [
        "wvs_culture_aware_chn",
        "wvs_culture_aware_usa",
    ]
    assert expand_tasks(["wvs_gen_x_usa", "wvs_culture_aware_usa,"], NAMES) == [
        "wvs_gen_x_usa",
        "wvs_culture_aware_usa",
    ]
    with pytest.raises(CulturespaError, match="no task matches 'wvs_nope'"):
        expand_tasks("wvs_nope", NAMES)
    with pytest.raises(CulturespaError, match="no task given"):
        expand_tasks(" , ", NAMES)


def test_group_members_are_dropped_and_overlapping_groups_refused():
    pytest.importorskip("lm_eval")
    from culturespa.evaluation.tasks import drop_covered, task_manager

    manager = task_manager()
    kept = drop_covered(
        ["wvs_culture_aware_usa", "wvs_culture_aware", "wvs_culture_aware_mex"], manager
    )
    assert kept == ["wvs_culture_aware", "wvs_culture_aware_mex"]
    with pytest.raises(CulturespaError, match="both run"):
        drop_covered(["wvs_culture_aware", "wvs_leaderboard"], manager)


def test_only_sampled_tasks_are_rerun_per_seed():
    """Sampled replies change with the seed; log-likelihoods and the greedy stated
    distributions do not, so `--seeds` runs them once."""
    pytest.importorskip("lm_eval")
    from culturespa.evaluation.tasks import sampled_tasks, task_manager

    manager = task_manager()
    names = [
        "wvs_culture_aware_usa", "wvs_rev_culture_aware_usa", "wvs_gen_culture_aware_usa",
        "wvs_dist_culture_aware_usa", "wvs_gen_culture_unaware", "wvs_dist_culture_unaware",
    ]  # fmt: skip
    assert sampled_tasks(names, manager) == ["wvs_gen_culture_aware_usa", "wvs_gen_culture_unaware"]


def test_model_args_per_backend():
    assert build_model_args("org/m", "hf", "dtype=bfloat16", peft="runs/lora") == {
        "pretrained": "org/m",
        "peft": "runs/lora",
        "dtype": "bfloat16",
    }
    assert build_model_args("org/m", "vllm", None, peft="a", seed=41) == {
        "pretrained": "org/m",
        "lora_local_path": "a",
        "seed": 41,
    }
    assert build_model_args("gpt", "local-chat-completions", {"base_url": "http://h/v1"}) == {
        "model": "gpt",
        "base_url": "http://h/v1",
    }
    with pytest.raises(CulturespaError, match="needs weights"):
        build_model_args("gpt", "local-completions", peft="a")
    with pytest.raises(CulturespaError, match="unknown backend"):
        build_model_args("m", "openai")
    with pytest.raises(CulturespaError, match="not key=value"):
        parse_model_args("dtype")
    # typed as lm-eval's own --model_args: the model is built from the dict, unconverted
    assert parse_model_args("max_model_len=1024,enforce_eager=True,dtype=float32,x=0.5") == {
        "max_model_len": 1024,
        "enforce_eager": True,
        "dtype": "float32",
        "x": 0.5,
    }


@pytest.mark.parametrize("name", ["default", "smollm2", "SmolLM2-135M-Instruct", " Default "])
def test_every_command_resolves_the_default_models_names_alike(monkeypatch, name):
    # `culturespa eval --model smollm2` must load what `build-data` loads for that name.
    import culturespa.inference.default_model as default_model
    from culturespa.inference.models import resolve_model as backend_resolve

    monkeypatch.setattr(default_model, "fetch_default_model", lambda: "/cache/smollm2")
    assert resolve_model(name) == "/cache/smollm2"
    assert backend_resolve(name) == "/cache/smollm2"
    assert resolve_model("org/model") == backend_resolve("org/model") == "org/model"


def test_an_evaluation_resolves_its_model_name_once_and_loads_what_it_names(monkeypatch, tmp_path):
    """`resolve_model` runs where the name enters the evaluation, once for every seed; the model
    arguments pass the resolved folder on as it is."""
    import culturespa.inference.default_model as default_model
    from culturespa.evaluation import run

    folder = tmp_path / "smollm2"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    fetched, loaded, evaluated = [], [], []
    monkeypatch.setattr(default_model, "fetch_default_model", lambda: fetched.append(1) or folder)
    monkeypatch.setattr(
        run, "_load_model", lambda model, backend, args, *rest: loaded.append(args) or "lm"
    )
    monkeypatch.setattr(run, "_evaluate_once", lambda lm, n, m, args, *rest: evaluated.append(args))
    run.evaluate_seeds(
        "smollm2", "wvs_gen_culture_aware_usa", seeds=(1, 2), options=run.EvalOptions(device="cpu")
    )
    assert fetched == [1]
    assert [a["pretrained"] for a in loaded + evaluated] == [str(folder)] * 3
    assert build_model_args(str(folder), "hf")["pretrained"] == str(folder)


def test_intervals_from_logged_samples(tmp_path):
    rows = [{"answer": a, "majority": 1, "max_distance": 3} for a in (1, 1, 2, 4, None)]
    log = tmp_path / "samples_wvs_culture_aware_usa.jsonl"
    log.write_text(
        "".join(json.dumps({"doc_id": i, "alignment": r}) + "\n" for i, r in enumerate(rows))
    )
    samples = {"wvs_culture_aware_usa": read_sample_log(log)}
    low, high = alignment_intervals(samples, n_resamples=200)["wvs_culture_aware_usa"]
    assert 0 <= low <= high <= 1
    with pytest.raises(CulturespaError, match="does not exist"):
        read_sample_log(tmp_path / "missing.jsonl")


def test_deduplicating_lm_sends_each_request_once_but_keeps_repeats():
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.api.model import LM

    from culturespa.evaluation.dedup import DeduplicatingLM

    class Echo(LM):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def loglikelihood(self, requests):
            self.calls += len(requests)
            return [(-float(len(r.args[1])), False) for r in requests]

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            self.calls += len(requests)
            return [f"reply {i}" for i in range(len(requests))]

    def inst(kind, args, task):
        return Instance(kind, {}, args, idx=0, metadata=(task, 0, 1))

    inner = Echo()
    lm = DeduplicatingLM(inner)
    same = [inst("loglikelihood", ("ctx", "1"), t) for t in ("a", "b", "c")]
    assert lm.loglikelihood([*same, inst("loglikelihood", ("ctx", "22"), "a")]) == [
        (-1.0, False),
        (-1.0, False),
        (-1.0, False),
        (-2.0, False),
    ]
    assert inner.calls == 2 and lm.sent["loglikelihood"] == 2
    repeated = inst("generate_until", ("ctx", {"do_sample": True}), "a")
    other_task = inst("generate_until", ("ctx", {"do_sample": True}), "b")
    replies = lm.generate_until([repeated, repeated, other_task])
    assert replies == ["reply 0", "reply 1", "reply 0"]


def test_tasks_path_prints_the_installed_folder(capsys):
    assert main(["tasks-path"]) == 0
    assert capsys.readouterr().out.strip() == str(TASK_DIR)


def test_tasks_lists_names_by_glob(capsys):
    pytest.importorskip("lm_eval")
    assert main(["tasks", "wvs_self_alignment_*"]) == 0
    names = capsys.readouterr().out.split()
    assert len(names) == 19 and all(n.startswith("wvs_self_alignment_") for n in names)
    assert main(["tasks", "wvs_nothing_*"]) == 2


def test_model_args_are_typed_as_lm_eval_types_them():
    pytest.importorskip("lm_eval")
    parsed = parse_model_args("trust_remote_code=false,dtype=bfloat16,max_length=512,x=none,s='1'")
    assert parsed == {
        "trust_remote_code": False,
        "dtype": "bfloat16",
        "max_length": 512,
        "x": None,
        "s": "1",
    }
    assert parse_model_args("trust_remote_code=True")["trust_remote_code"] is True
    for bad in ("trust_remote_code=yes", "trust_remote_code=0", {"trust_remote_code": "false"}):
        with pytest.raises(CulturespaError, match=r"trust_remote_code.*expected true or false"):
            parse_model_args(bad)


def remote_code_model(folder, marker):
    """A model folder whose config.json maps AutoConfig to a module shipped in the folder; that
    module writes `marker` when it is imported, i.e. when the folder's code runs."""
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "culturespa_marker",
                "auto_map": {
                    "AutoConfig": "marker_code.MarkerConfig",
                    "AutoModelForCausalLM": "marker_code.MarkerModel",
                },
            }
        )
    )
    (folder / "marker_code.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('the model folder ran its code')\n"
        "from transformers import PretrainedConfig\n\n\n"
        "class MarkerConfig(PretrainedConfig):\n"
        "    model_type = 'culturespa_marker'\n"
    )
    return folder


@pytest.mark.slow
def test_remote_code_runs_only_with_a_real_true(tmp_path, capsys):
    """`--model-args trust_remote_code=false` once reached transformers as the text "false"
    (truthy) and ran the folder's code. Now false, its absence and a non-boolean never run it;
    only true does (the last call proves the folder's code would run if allowed)."""
    pytest.importorskip("lm_eval")
    marker = tmp_path / "marker"
    model = remote_code_model(tmp_path / "remote", marker)
    base = ["eval", "--model", str(model), "--tasks", "wvs_culture_aware_usa", "--limit", "1"]
    base += ["--device", "cpu", "--output-path", str(tmp_path / "out")]
    for extra in (
        [],
        ["--model-args", "trust_remote_code=false"],
        ["--model-args", "dtype=float32,trust_remote_code=False"],
        ["--model-args", "trust_remote_code=no"],
    ):
        assert main(base + extra) == 2
        assert not marker.exists(), extra
        assert "error:" in capsys.readouterr().err
    assert main([*base, "--model-args", "trust_remote_code=true"]) == 2  # no real model in it
    assert marker.read_text() == "the model folder ran its code"
    assert not (tmp_path / "out").exists()


def test_eval_summary_shows_scores_x100_and_item_counts_as_counts():
    from culturespa.cli.tasks import format_summary

    results = {
        "results": {
            "wvs_dist_culture_aware_chn": {
                "alignment,none": 0.3476,
                "coverage,none": 0.8423,
                "unparsed,none": 35.0,
                "alignment_stderr,none": "N/A",
            },
            "wvs_gen_culture_aware_usa": {"alignment,none": 0.5, "out_of_range,none": 2},
        },
        "culturespa": {"alignment_ci95": {"wvs_dist_culture_aware_chn": [0.2735, 0.4383]}},
    }
    text = format_summary(results)
    chn, usa = text.splitlines()[1:]
    assert "34.76" in chn and "[27.35, 43.83]" in chn
    assert "coverage 84.23" in chn and "unparsed 35" in chn and "3500" not in chn
    assert "out_of_range 2" in usa and "200" not in usa
