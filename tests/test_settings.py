"""One settings object, built at every door: the command line, the pytest plugin and the Python
API turn their options into the same RunSettings, and the layers below only read it."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mybackprop
from mybackprop.cli import build_parser, settings_from_args
from mybackprop.harness.settings import RunSettings, SettingsError

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent


def from_command_line(*argv: str) -> RunSettings:
    return settings_from_args(build_parser().parse_args(["check", *argv]))


def test_the_command_line_and_the_api_build_the_same_settings(tmp_path):
    cli = from_command_line("--impl", "mybackprop:vector", "--cases", "50", "--seed", "3",
                            "--activations", "tanh,relu", "--losses", "mse", "--dtype",
                            "float64", "--max-depth", "2", "--kinks", "hit",
                            "--tolerance-factor", "float32=8", "--memory-limit", "2",
                            "--isolate", "--no-shrink", "--out", str(tmp_path))
    api = mybackprop.run_settings("mybackprop:vector", cases=50, seed=3,
                                  activations=["tanh", "relu"], losses="mse", dtype="float64",
                                  max_depth=2, kinks="hit", tolerance_factor={"float32": 8},
                                  memory_limit=2, isolate=True, shrink=False, out=tmp_path)
    assert cli == api
    assert cli.space.activations == ("tanh", "relu") and cli.space.dtypes == ("float64",)
    assert cli.memory_limit == 2 * 2**30 and cli.tolerance.factor["float32"] == 8.0
    assert pickle.loads(pickle.dumps(cli)) == cli  # what a sweep's workers receive
    assert from_command_line() == mybackprop.run_settings() == RunSettings()


def test_the_pytest_plugin_builds_the_same_settings(pytester):
    pytester.makepyfile(test_door="""
        from mybackprop import run_settings
        from mybackprop.cli import build_parser, settings_from_args

        def test_same(request, mybackprop_checker):
            plugin = request.config._mybackprop_settings
            cli = settings_from_args(build_parser().parse_args(
                ["check", "--impl", "mybackprop:vector"]))
            assert plugin == cli == run_settings("mybackprop:vector")
            # the checker is the one these settings describe
            assert mybackprop_checker.tolerance == plugin.tolerance
            assert mybackprop_checker.time_limit == plugin.time_limit
            assert [o.name for o in mybackprop_checker.oracles] == list(plugin.oracles)
    """)
    result = pytester.runpytest_subprocess("--impl", "mybackprop:vector", "test_door.py",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("options, message", [
    ({"cases": 0}, "--cases is 0: give a number of cases from 1 to 1,000,000,000"),
    ({"workers": 0}, "--workers is 0"),
    ({"activations": "rleu"}, "unknown activation 'rleu'"),
    ({"memory_limit": 0}, "--memory-limit is 0"),
    ({"scheduler": "host:1"}, "--scheduler goes with --executor dask"),
    ({"tolerance_factor": "float32"}, "is not DTYPE=NUMBER"),
    ({"oracles": ""}, "--oracles is empty"),
    ({"case": 10}, "unknown setting 'case'"),
])
def test_a_bad_setting_is_one_line_at_every_door(options, message):
    with pytest.raises(SettingsError, match=re.escape(message)) as error:
        mybackprop.run_settings(**options)
    assert "\n" not in str(error.value)


def test_the_api_runs_the_same_check_as_the_command_line(tmp_path):
    options = ["--impl", "mybackprop:vector", "--cases", "40", "--seed", "5", "--quiet"]
    cli = subprocess.run([sys.executable, "-m", "mybackprop", "check", *options, "--out",
                          str(tmp_path / "cli")], capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 0, cli.stderr
    checked = mybackprop.check("mybackprop:vector", cases=40, seed=5, quiet=True,
                               out=tmp_path / "api")
    assert checked.failed == 0 and checked.summary["verdicts"]["pass"] == 40
    assert checked.folder == tmp_path / "api"
    for name in ("cases.jsonl", "run.json"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    with pytest.raises(SettingsError, match="already holds a run"):
        mybackprop.check("mybackprop:vector", cases=40, seed=5, quiet=True, out=tmp_path / "api")
