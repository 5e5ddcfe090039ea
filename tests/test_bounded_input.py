"""Bounded input (issue 27): what a hostile or damaged file may cost is one line of error, never
minutes, gigabytes or a traceback; and the bounds leave every real input alone.

The one-line, exit-2, nothing-changed promise for each command is in tests/test_bad_inputs.py;
here are the cases that need their own setup (timing, a sparse 4 GiB file, memory) and the rules
of the readers themselves, stated with hand-made inputs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from culturespa import bounded_input
from culturespa.bounded_input import (
    MAX_JSON_DEPTH,
    BoundExceeded,
    iter_json_lines,
    load_yaml_text,
    loads_bounded,
)
from culturespa.cli.main import main as culturespa_main
from culturespa.errors import CulturespaError
from culturespa.fields import invalid, read_yaml_mapping, show

DATE = "2024-01-01T00-00-00"


def alias_bomb(levels: int = 9) -> str:
    """`countries` holding 9**levels strings when expanded; a few hundred bytes as text."""
    lines = ["countries:", "  - &a0 [" + ", ".join(["USA"] * 9) + "]"]
    lines += [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# -- YAML ------------------------------------------------------------------------------------------


def test_a_yaml_alias_bomb_is_refused_in_well_under_a_second(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text("model: {name: m}\n" + alias_bomb(), encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(CulturespaError) as caught:
        read_yaml_mapping(path, "config file")
    assert time.perf_counter() - start < 0.5
    message = str(caught.value)
    assert str(path) in message and "line 4" in message and "*a0" in message  # first alias
    assert len(message) < 300 and "\n" not in message


def test_an_anchor_without_alias_is_plain_yaml():
    assert load_yaml_text("a: &x [1, 2]\nb: 3\n", "f.yaml") == {"a": [1, 2], "b": 3}


def test_a_merge_key_is_an_alias_too():
    with pytest.raises(CulturespaError, match="aliases"):
        load_yaml_text("base: &b {x: 1}\nother:\n  <<: *b\n", "f.yaml")


def test_a_repeated_key_names_the_key_the_line_and_the_file():
    with pytest.raises(CulturespaError) as caught:
        load_yaml_text("seed: 1\nmodel:\n  name: a\n  name: b\n", "cfg.yaml")
    assert str(caught.value) == "cfg.yaml: line 4: key 'name' appears twice in one mapping"


def test_the_same_key_in_two_mappings_is_not_repeated():
    assert load_yaml_text("a: {k: 1}\nb: {k: 2}\n", "f.yaml") == {"a": {"k": 1}, "b": {"k": 2}}


def test_shipped_yaml_configs_read_as_before():
    """Every YAML in recipes/ reads the same with the bounded loader as with yaml.safe_load."""
    import yaml

    root = Path(__file__).resolve().parents[1] / "recipes"
    paths = sorted(root.rglob("*.yaml"))
    assert paths
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert load_yaml_text(text, str(path)) == yaml.safe_load(text), path


def test_an_error_shows_at_most_80_characters_of_a_value():
    huge = [["USA"] * 1000] * 1000  # a million strings, as a bomb would expand
    message = str(invalid("countries", huge, "ISO-3 codes"))
    assert len(message) < 140
    assert message.startswith('countries = [["USA", "USA"')
    assert show("x" * 10_000).endswith("...") and len(show("x" * 10_000)) == 80


def test_short_values_are_shown_as_json_writes_them():
    for value in ("no", 2.5, [1, 2], None, {"a": [1, "b"]}, [], True):
        assert show(value) == json.dumps(value)


# -- JSON ------------------------------------------------------------------------------------------


def test_200000_nested_brackets_are_refused_without_recursion_error():
    with pytest.raises(BoundExceeded, match="nested deeper"):
        loads_bounded("[" * 200_000 + "]" * 200_000)


def test_the_depth_limit_is_exact():
    assert loads_bounded("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(BoundExceeded, match="nested deeper"):
        loads_bounded("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    deep_object = '{"a": ' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(BoundExceeded, match="nested deeper"):
        loads_bounded(deep_object)


def test_a_100000_digit_number_is_refused_before_int_conversion():
    with pytest.raises(BoundExceeded, match="100000 characters"):
        loads_bounded("[" + "7" * 100_000 + "]")
    with pytest.raises(BoundExceeded, match="characters"):
        loads_bounded("0." + "1" * 5000)


def test_infinity_and_nan_are_not_json_numbers():
    for text in ("Infinity", "-Infinity", "[NaN]", "1e999"):
        with pytest.raises(BoundExceeded):
            loads_bounded(text)
    value = loads_bounded('{"alignment": NaN}', allow_nan=True)["alignment"]
    assert value != value  # lm-eval writes NaN for a metric without value
    with pytest.raises(BoundExceeded, match="Infinity"):
        loads_bounded('{"alignment": Infinity}', allow_nan=True)


def test_ordinary_json_reads_as_json_loads_reads_it():
    text = '{"a": [1, -2, 3.5, 1e-3, 2E5, true, null, "x"], "b": {"c": 0.6123456789012345}}'
    assert loads_bounded(text) == json.loads(text)


def test_json_lines_are_numbered_and_bad_lines_yielded_not_raised(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n\n{"a": \n[1e999]\n{"a": 2}', encoding="utf-8")
    rows = list(iter_json_lines(path))
    assert [n for n, _ in rows] == [1, 3, 4, 5]
    assert rows[0][1] == {"a": 1} and rows[3][1] == {"a": 2}
    assert isinstance(rows[1][1], json.JSONDecodeError) and isinstance(rows[2][1], BoundExceeded)


def test_a_line_that_is_not_utf8_names_line_and_byte(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')  # 9 bytes, then 10 before the \xe9
    with pytest.raises(CulturespaError, match=r"line 2, byte 19"):
        list(iter_json_lines(path))


# -- sample logs, streamed ---------------------------------------------------------------------------


def write_run(folder: Path, log: bytes | None = None) -> Path:
    """A results file of one task (and its sample log when given)."""
    run = folder / "org__model"
    run.mkdir(parents=True)
    results = {"results": {"wvs_culture_aware_usa": {"alignment,none": 0.5}}}
    (run / f"results_{DATE}.json").write_text(json.dumps(results), encoding="utf-8")
    log_path = run / f"samples_wvs_culture_aware_usa_{DATE}.jsonl"
    if log is not None:
        log_path.write_bytes(log)
    return log_path


def sample_line(qid: str, answer: int) -> bytes:
    return json.dumps({"doc": {"qid": qid}, "alignment": {"answer": answer}}).encode() + b"\n"


def test_a_4_gib_sample_log_is_never_read_whole(tmp_path, capsys, monkeypatch):
    """A sparse 4 GiB log (one real line, then a line of 4 GiB of zero bytes): one line, exit 2,
    in well under a second, because only one bounded line is ever read."""
    monkeypatch.setattr(bounded_input, "MAX_LINE_BYTES", 1024 * 1024)
    log = write_run(tmp_path / "runs", sample_line("Q1", 3))
    with log.open("r+b") as stream:
        stream.truncate(4 * 1024**3)
    start = time.perf_counter()
    code = culturespa_main(["report", str(tmp_path / "runs"), "-o", str(tmp_path / "out")])
    assert time.perf_counter() - start < 5  # the report's own imports included
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{log}: line 2: refused, line 2 is over 1048576 bytes" in err
    assert not (tmp_path / "out").exists()


def test_sample_logs_are_streamed_not_read_whole(tmp_path, monkeypatch):
    """Reading a report's sample log never calls read_text/read_bytes on it, and many lines cost
    no more memory than a few."""
    import tracemalloc

    from culturespa.report.run_scores import Notes
    from culturespa.report.sample_logs import read_samples

    lines = [sample_line(qid, 1) for qid in ["Q1", "Q2", "Q3"] * 20_000]
    lines += [sample_line("Q1", 2), sample_line("Q2", 3), sample_line("Q3", 4)]
    log = write_run(tmp_path, b"".join(lines))
    assert log.stat().st_size > 3_000_000
    for name in ("read_text", "read_bytes"):
        monkeypatch.setattr(Path, name, lambda self, *a, **k: pytest.fail(f"{self} read whole"))
    tracemalloc.start()
    answers, _ = read_samples(log, "loglik", Notes())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert answers == {"Q1": 2, "Q2": 3, "Q3": 4}  # the last line of each item
    assert peak < 1_000_000


def test_minus_infinity_is_a_log_likelihood_but_never_a_metric(tmp_path):
    """lm-eval logs -Infinity for an impossible option: the other option is the answer; an
    infinite per-item metric is damage, named with its line and field."""
    from culturespa.report.run_scores import Notes
    from culturespa.report.sample_logs import read_samples

    options = [1, 2]
    line = '{"doc": {"qid": "Q1", "options": [1, 2]}, "filtered_resps": [[-Infinity], [-0.5]]}\n'
    log = write_run(tmp_path / "a", line.encode())
    assert read_samples(log, "loglik", Notes())[0] == {"Q1": options[1]}
    bad = write_run(tmp_path / "b", b'{"doc": {"qid": "Q1"}, "alignment_w1": Infinity}\n')
    with pytest.raises(CulturespaError, match="line 1: field 'alignment_w1': expected a finite"):
        read_samples(bad, "gen", Notes())


def test_a_nan_metric_is_read_as_no_value(tmp_path):
    """lm-eval writes NaN for a metric no item had (no valid reply): the row is kept with no
    value, so the report shows it unranked instead of hiding the model's failure."""
    import math

    from culturespa.report.results_files import load_run
    from culturespa.report.run_scores import Notes

    run = tmp_path / "org__model"
    run.mkdir()
    path = run / f"results_{DATE}.json"
    path.write_text(
        '{"results": {"wvs_culture_aware_usa": {"alignment,none": NaN},'
        ' "wvs_culture_aware_deu": {"alignment,none": 0.4, "alignment_w1,none": NaN}}}',
        encoding="utf-8",
    )
    loaded = load_run(path, Notes())
    by_country = {t.country: t.metrics for t in loaded.tasks}
    assert set(by_country) == {"USA", "DEU"}
    assert math.isnan(by_country["USA"]["alignment"])
    assert by_country["DEU"]["alignment"] == 0.4 and math.isnan(by_country["DEU"]["alignment_w1"])


@pytest.mark.parametrize(
    ("metric", "value"),
    [("alignment", 1.5), ("alignment", -9.5), ("coverage", 2), ("out_of_range", -1.0)],
)
def test_a_metric_no_run_can_have_is_damage(tmp_path, metric, value):
    from culturespa.report.results_files import load_run
    from culturespa.report.run_scores import Notes

    run = tmp_path / "org__model"
    run.mkdir()
    path = run / f"results_{DATE}.json"
    entry = {"alignment,none": 0.5, f"{metric},none": value}
    path.write_text(json.dumps({"results": {"wvs_culture_aware_usa": entry}}), encoding="utf-8")
    with pytest.raises(CulturespaError, match=rf"metric '{metric},none'"):
        load_run(path, Notes())


# -- answers ------------------------------------------------------------------------------------------


def test_a_reply_of_thousands_of_digits_is_an_invalid_answer_not_a_crash():
    """The paper's parser: the first integer, valid only in 0..10; leading zeros do not count."""
    from culturespa.scoring.answers import parse_answer

    start = time.perf_counter()
    assert parse_answer("5" * 5000) is None
    assert parse_answer("1" * 100_000 + " or 3") is None
    assert time.perf_counter() - start < 0.5
    assert parse_answer("0" * 5000 + "7") == 7
    assert parse_answer("010") == 10
    assert parse_answer("-" + "0" * 50 + "3") is None
    assert parse_answer("11") is None


def test_an_answer_beyond_the_parser_range_is_out_of_range_never_averaged():
    """10**30 cannot come from the paper's parser: not scored, counted as out of range."""
    from culturespa.report.row_building import answer_coverage
    from culturespa.scoring.answers import collect_scored_items
    from culturespa.survey.items import items_with_data

    qids = list(items_with_data("USA"))[:2]
    answers = {qids[0]: 10**30, qids[1]: 1}
    assert [r.qid for r in collect_scored_items(answers, "USA")] == [qids[1]]
    assert answer_coverage(answers, "USA")[1] == 1


# -- devices, model arguments ----------------------------------------------------------------------


def test_devices_torch_knows_pass_and_others_are_one_line():
    from culturespa.inference.models import check_device

    for device in ("auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps", None):
        assert check_device(device, "--device") == device
    for device in ("cpux", "cuda:", "gpu", "cuda:a", "", "CPU "):
        with pytest.raises(CulturespaError, match="expected auto, cpu, cuda, cuda:N or mps"):
            check_device(device, "--device")


def test_a_cuda_device_must_be_one_torch_sees(monkeypatch):
    """`cuda:N` is checked against the GPUs torch reports (faked here: two, then none); other
    devices pass as they are."""
    import torch

    from culturespa.inference.models import check_device_present, pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for device in ("cuda", "cuda:0", "cuda:1", "cpu", "mps", "auto", None):
        check_device_present(device, "--device")
    assert pick_device("cuda:1") == "cuda:1"
    for device in ("cuda:2", "cuda:12"):
        with pytest.raises(CulturespaError, match=r"torch sees 2 CUDA GPUs \(cuda:0 to cuda:1;"):
            check_device_present(device, "--device")
    with pytest.raises(CulturespaError, match=r"model\.device 'cuda:3': torch sees 2 "):
        pick_device("cuda:3", "model.device")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(CulturespaError, match=f"--device '{device}': torch sees no CUDA GPU"):
            check_device_present(device, "--device")
    check_device_present("cpu", "--device")


def test_eval_and_the_loop_check_the_cuda_index_before_anything_loads(
    monkeypatch, tmp_path, capsys
):
    import torch

    from culturespa.cli.main import main
    from culturespa.loop.config import load_loop_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    argv = ["eval", "--tasks", "wvs_culture_aware_usa", "--model", str(tmp_path / "none")]
    assert main([*argv, "--device", "cuda:3", "--output-path", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device 'cuda:3': torch sees 1 CUDA GPU (cuda:0;" in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(CulturespaError, match="config: device 'cuda:1': torch sees 1 CUDA GPU"):
        load_loop_config("tiny", {"device": "cuda:1"})


def test_model_arguments_are_those_of_the_lm_eval_class():
    from culturespa.inference.model_args import accepted_model_args, check_extra_model_args

    known = accepted_model_args("hf")
    assert {"pretrained", "dtype", "max_length", "peft", "attn_implementation"} <= known
    assert "foo" not in known
    assert "stop_at_answer" in accepted_model_args("culturespa-hf")
    check_extra_model_args("hf", {"dtype": "bfloat16", "max_length": 2048}, None)
    with pytest.raises(CulturespaError, match="conflicts with --peft"):
        check_extra_model_args("hf", {"peft": "a"}, "b")
    with pytest.raises(CulturespaError, match="max_batch_size=0"):
        check_extra_model_args("hf", {"max_batch_size": 0}, None)


@pytest.mark.parametrize(
    ("metric", "value", "real"),
    [
        # The paper's score of out-of-range answers: one two-option item answered 10 against a
        # majority of 1 is 1 - 9/1 = -8; against a majority of 0 (a 0-based item) 1 - 10 = -9.
        ("alignment", -8.0, True),
        ("alignment", -9.0, True),
        ("alignment", -0.67, True),
        ("alignment_specific", -0.5, True),
        ("alignment", -9.5, False),
        ("alignment", 1.01, False),
        # Shares stay in 0..1; counts are >= 0.
        ("alignment_w1", -0.1, False),
        ("majority_match", 1.5, False),
        ("out_of_range", 12.0, True),
        ("out_of_range", -1.0, False),
    ],
)
def test_metric_ranges_follow_what_a_run_can_produce(metric, value, real):
    from culturespa.report.damage import metric_problem

    assert (metric_problem(metric, value) is None) == real
