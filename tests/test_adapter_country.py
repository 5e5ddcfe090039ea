"""The country of an adapter, as a report reads it: its training record first; the adapter's path
only when there is no record (issue 23: no regex on folder names where the record can say)."""

from __future__ import annotations

import json

import pytest

from culturespa.report.run_identity import adapter_country, model_identity
from culturespa.run_files import TRAINING_RECORD


def _adapter(tmp_path, folder: str, record: dict | str | None):
    """An adapter folder, with a training record (a dict, or raw text) or without one."""
    path = tmp_path / folder
    path.mkdir(parents=True)
    if isinstance(record, dict):
        (path / TRAINING_RECORD).write_text(json.dumps(record))
    elif isinstance(record, str):
        (path / TRAINING_RECORD).write_text(record)
    return str(path)


def test_the_record_names_the_country_whatever_the_folder_is_called(tmp_path):
    adapter = _adapter(tmp_path, "adapters/first", {"country": "usa"})
    assert adapter_country(adapter, {"USA"}) == "USA"
    # A folder named after another country does not override the record.
    adapter = _adapter(tmp_path, "adapters/chn", {"country": "NGA"})
    assert adapter_country(adapter, {"CHN"}) == "NGA"


def test_a_record_without_a_country_is_joint_even_in_a_folder_named_for_one(tmp_path):
    for n, record in enumerate(({"country": None}, {}, {"country": ""})):
        adapter = _adapter(tmp_path, f"joint{n}/usa", record)
        assert adapter_country(adapter, {"USA"}) is None


def test_without_a_record_the_path_names_the_runs_one_country(tmp_path):
    assert adapter_country(_adapter(tmp_path, "runs/specific/usa", None), {"USA"}) == "USA"
    assert adapter_country(_adapter(tmp_path, "runs/USA_lora", None), {"USA"}) == "USA"
    assert adapter_country("not/on/this/disk/deu", {"DEU"}) == "DEU"
    # A path naming the code inside a word, or another country, is a joint adapter.
    assert adapter_country(_adapter(tmp_path, "runs/causal", None), {"USA"}) is None
    assert adapter_country(_adapter(tmp_path, "runs/chn", None), {"USA"}) is None
    # A run of several countries has no one country for the path to name.
    assert adapter_country(_adapter(tmp_path, "more/usa", None), {"USA", "CHN"}) is None


@pytest.mark.parametrize("record", ["{not json", "[1, 2]"])
def test_an_unreadable_record_counts_as_none(tmp_path, record):
    adapter = _adapter(tmp_path, f"bad{len(record)}/usa", record)
    assert adapter_country(adapter, {"USA"}) == "USA"
    assert adapter_country(adapter, {"USA", "CHN"}) is None


def test_the_label_puts_the_recorded_country_as_cc(tmp_path):
    config = {"model_args": {"pretrained": "org/base"}}
    named = _adapter(tmp_path, "specific/usa", {"country": "USA"})
    unnamed = _adapter(tmp_path, "specific/first", {"country": "USA"})
    joint = _adapter(tmp_path, "joint/usa", {"country": None})
    cases = {
        named: ("org/base + specific/{CC}", "specific"),
        unnamed: ("org/base + specific/{CC}", "specific"),
        joint: ("org/base + joint/usa", "joint"),
    }
    for adapter, (label, kind) in cases.items():
        config["model_args"]["peft"] = adapter
        model, shown, base, found = model_identity(config, {"USA"})
        assert (model, shown, base, found) == (f"org/base+{adapter}", label, "org/base", kind)
    no_adapter = model_identity({"model_args": "pretrained=org/base"}, {"USA"})
    assert no_adapter == ("org/base", "org/base", "org/base", "base")
