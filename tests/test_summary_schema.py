"""summary.json follows the versioned JSON Schema shipped in the package."""

from __future__ import annotations

import json

import jsonschema
import pytest
from test_cli import run

from mybackprop.reporting.records import SUMMARY_SCHEMA, SUMMARY_SCHEMA_VERSION


@pytest.fixture(scope="module")
def schema():
    document = json.loads(SUMMARY_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def test_a_failing_run_with_several_candidates_validates(tmp_path, schema):
    folder = tmp_path / "run"
    result = run("check", "--impl", "mybackprop:matrix", "--impl", "mybackprop.zoo:sign_flipped",
                 "--cases", "4", "--seed", "1", "--no-shrink", "--quiet", "--out", str(folder))
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["schema_version"] == SUMMARY_SCHEMA_VERSION
    assert summary["problems"], "the run should have failures to validate"
    jsonschema.validate(summary, schema)


def test_the_schema_rejects_a_summary_that_breaks_it(tmp_path, schema):
    folder = tmp_path / "run"
    run("check", "--cases", "2", "--seed", "1", "--quiet", "--out", str(folder))
    summary = json.loads((folder / "summary.json").read_text())
    jsonschema.validate(summary, schema)
    summary["verdicts"]["passed"] = summary["verdicts"].pop("pass")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(summary, schema)
