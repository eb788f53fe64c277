"""Process definitions: YAML in, validated, registered in the dataset, versioned."""

from __future__ import annotations

from pathlib import Path

import pytest

from jangin.core import ConfigError, Dataset
from jangin.core.process_definition import (
    ProcessDefinition,
    get_process,
    list_processes,
    load_process_definition,
    register_process,
)

YAML = """
name: milling
display_name: Milling
channels:
  - {name: spindle_rpm, display_name: spindle speed, unit: rpm, role: operator, higher: faster, lower: slower}
  - {name: spindle_rpm_cmd, unit: rpm, role: machine, duplicate_of: spindle_rpm}
  - {name: coolant_temp_C, unit: degC, role: context, quantity: interval}
steps: {source: phase_column, column: phase, ignore: [idle]}
labels:
  - {question: tool_condition, choices: [worn, unworn]}
parameters:
  - {name: feed_rate_mm_min, unit: mm/min}
words: {session: run}
"""


def test_yaml_round_trip_and_accessors(tmp_path: Path) -> None:
    p = tmp_path / "milling.yaml"
    p.write_text(YAML)
    d = load_process_definition(p)
    assert d.channel("spindle_rpm").advisable and d.channel("spindle_rpm").scoring_weight == 1.0
    assert d.channel("spindle_rpm_cmd").scoring_weight == 0.0  # a duplicate counts once
    assert d.channel("coolant_temp_C").scoring_weight == 0.0 and d.channel("nope") is None
    assert d.steps.column == "phase" and d.label_spec("tool_condition").choices == ["worn", "unworn"]
    assert d.word("session", "session") == "run" and d.word("operator", "operator") == "operator"
    assert ProcessDefinition.from_yaml(d.to_yaml()) == d


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nchannels: [{name: a, role: boss}]", "channels.0.role"),
        ("name: x\nchannels: [{name: a}, {name: a}]", "defined twice"),
        ("name: x\nchannels: [{name: a, duplicate_of: b}]", "duplicate_of 'b'"),
        ("name: 'a b'", "name"),
        ("name: x\ncolour: red", "colour"),
        ("- just a list", "expected a mapping"),
        ("name: [unclosed", "not valid YAML"),
    ],
)
def test_bad_definitions_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match="bad.yaml") as err:
        load_process_definition(p)
    assert message in str(err.value)


def test_register_is_idempotent_and_versioned(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "ds")
    assert get_process(ds, "milling") is None
    d = ProcessDefinition.from_yaml(YAML)
    assert register_process(ds, d) == 1
    snap = ds.snapshot()
    assert register_process(ds, d) == 1  # same text: nothing added
    assert ds.counts()["processes"] == 1
    d2 = d.model_copy(update={"display_name": "Milling (v2)"})
    assert register_process(ds, d2) == 2
    assert get_process(ds, "milling").display_name == "Milling (v2)"
    assert get_process(ds, "milling", snapshot=snap).display_name == "Milling"
    assert [p.name for p in list_processes(ds)] == ["milling"]
    assert ds.query("SELECT version FROM current_processes").to_pylist() == [{"version": 2}]
