"""A broken `--config FILE` is one line naming the file, the line and the column, for YAML and JSON,
and never quotes the file's text."""

from __future__ import annotations

import pytest

from kaip.aiplatform import training
from kaip.errors import UsageError


def error(text: str, source: str = "job.yaml") -> str:
    with pytest.raises(UsageError) as info:
        training.read_config(text, source=source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_yaml_error_names_file_line_and_column() -> None:
    text = "trainingInput:\n  scaleTier: CUSTOM\n  masterType: a: b\n"
    assert error(text) == (
        "--config job.yaml: not valid YAML at line 3, column 16: mapping values are not allowed here"
    )


def test_an_unclosed_flow_sequence_says_where_it_starts() -> None:
    assert error("trainingInput:\n  args: [--epochs, 3\n", "c.yaml") == (
        "--config c.yaml: not valid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence that starts at line 2, column 9)"
    )


def test_a_tab_in_yaml() -> None:
    assert error("trainingInput:\n\tscaleTier: BASIC\n") == (
        "--config job.yaml: not valid YAML at line 2, column 1: found character '\\t' that cannot start any token"
    )


def test_a_control_character() -> None:
    assert error("jobId: a\x07b\n") == (
        "--config job.yaml: not valid YAML at line 1, column 9: special characters are not allowed "
        "(character #x0007)"
    )


def test_json_error_names_file_line_and_column() -> None:
    text = '{\n  "trainingInput": {\n    "scaleTier" "BASIC"\n  }\n}\n'
    assert error(text, "job.json") == (
        "--config job.json: not valid JSON at line 3, column 17: Expecting ':' delimiter"
    )


def test_json_with_tabs_is_read_though_yaml_refuses_it() -> None:
    doc = training.read_config('{\n\t"trainingInput": {"scaleTier": "BASIC"}\n}\n', source="job.json")
    assert doc == {"trainingInput": {"scaleTier": "BASIC"}}


def test_the_files_text_is_not_quoted() -> None:
    message = error('labels:\n  team: vision\n  token: "s3cr3t-value\n')
    assert "line 4" in message and "s3cr3t" not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("labels: [team]\n", "--config job.yaml: labels must be a mapping, not list"),
        ("trainingInput:\n  masterConfig: big\n", "trainingInput.masterConfig must be a mapping, not str"),
        ("trainingInput:\n  scheduling: 7200s\n", "trainingInput.scheduling must be a mapping, not str"),
        ("trainingInput: [1]\n", "trainingInput must be a mapping, not list"),
    ],
)
def test_sections_of_the_wrong_shape_are_named(text: str, message: str) -> None:
    assert message in error(text)
