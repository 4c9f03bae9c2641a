"""Sweeps: the cases depend only on the seed, whatever the workers; a run killed with kill -9
and resumed has exactly the cases of an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_cli import ROOT, read_jsonl, run

CANDIDATES = ["--impl", "mybackprop:matrix", "--impl", "mybackprop.zoo:sign_flipped"]


def identity(folder: Path) -> list[tuple]:
    """What must match between runs: which cases, their contents and verdicts."""
    return sorted((r["case"], r["candidate"], json.dumps(r["config"], sort_keys=True),
                   r["verdict"]) for r in read_jsonl(folder / "cases.jsonl"))


def test_two_workers_write_the_cases_jsonl_of_one_with_a_progress_bar(tmp_path):
    common = ["check", *CANDIDATES, "--cases", "16", "--seed", "9", "--no-shrink",
              "--chunk", "4"]  # 4 chunks, so both workers get some
    one = run(*common, "--quiet", "--out", str(tmp_path / "one"))
    two = run(*common, "--workers", "2", "--out", str(tmp_path / "two"))
    assert one.returncode == two.returncode == 1, two.stderr
    assert len(identity(tmp_path / "one")) == 32
    # Same records, byte for byte, in case order: answers depend on the chunk, not the worker.
    assert (tmp_path / "one" / "cases.jsonl").read_bytes() == (
        tmp_path / "two" / "cases.jsonl").read_bytes()
    assert "16/16" in two.stderr and "case/s" in two.stderr  # tqdm: count, rate, ETA


def test_kill_9_halfway_then_resume_loses_and_repeats_nothing(tmp_path):
    # Enough cases that the run is still going when the first 20 records are in (the workers
    # start beside the parent, so 40 cases were over within one poll of the file).
    common = ["check", *CANDIDATES, "--cases", "200", "--seed", "11", "--no-shrink", "--quiet",
              "--chunk", "2"]
    whole = run(*common, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 1, whole.stderr

    folder = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "mybackprop", *common, "--workers", "2",
                                "--out", str(folder)], cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cases = folder / "cases.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (
            not cases.exists() or len(cases.read_text().splitlines()) < 20):
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the parent and its workers, mid-run
    process.wait()
    recorded = len(cases.read_text().splitlines())
    assert 20 <= recorded < 400, recorded
    with open(cases, "a") as file:  # a line cut short, as a kill mid-write leaves it
        file.write('{"case": 199, "candidate": "mybackprop:ma')

    resumed = run(*common, "--workers", "2", "--resume", "--out", str(folder))
    assert resumed.returncode == 1, resumed.stderr
    assert identity(folder) == identity(tmp_path / "whole")
    keys = [(r["case"], r["candidate"]) for r in read_jsonl(cases)]
    assert len(keys) == len(set(keys)) == 400


def test_resume_with_other_settings_is_a_one_line_error(tmp_path):
    folder = tmp_path / "run"
    assert run("check", "--cases", "2", "--seed", "1", "--quiet",
               "--out", str(folder)).returncode == 0
    other = run("check", "--cases", "2", "--seed", "2", "--resume", "--out", str(folder))
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and "started with other settings (seed)" in other.stderr
    again = run("check", "--cases", "2", "--seed", "1", "--out", str(folder))
    assert again.returncode == 2 and "add --resume to continue it" in again.stderr
    nothing = run("check", "--resume", "--out", str(tmp_path / "nowhere"))
    assert nothing.returncode == 2 and "holds no run to resume" in nothing.stderr
