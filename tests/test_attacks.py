"""Candidates that attack the harness (tests/attacks/), run as the issue ran them: under
--isolate, in the sandbox, beside a correct candidate whose verdicts must not move."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mybackprop.harness import sandbox
from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.harness.isolate import IsolatedRunner

ROOT = Path(__file__).resolve().parent.parent
ATTACKS = Path(__file__).parent / "attacks"
COMMAND = str(Path(sys.executable).parent / "mybackprop")
needs_sandbox = pytest.mark.skipif(sandbox.bwrap() is None,
                                   reason="bubblewrap is not installed (scripts/setup.sh does it)")


def run(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env})


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "cases.jsonl").read_text().splitlines()]


def attack(name: str) -> str:
    return f"{ATTACKS / name}.py:backprop"


def verdicts(folder: Path, candidate: str) -> list[tuple[str, str]]:
    return [(r["verdict"], r["reason"]) for r in records(folder) if r["candidate"] == candidate]


@needs_sandbox
def test_a_pickle_on_the_reply_pipe_runs_nothing_in_the_harness(tmp_path):
    marker = Path("/tmp/mybackprop-attack-pickle-ran")
    marker.unlink(missing_ok=True)
    result = run("check", "--impl", attack("pickle_reply"), "--impl", "mybackprop:matrix",
                 "--isolate", "--cases", "6", "--out", str(tmp_path / "run"), "--no-html")
    assert result.returncode == 1, result.stdout + result.stderr
    assert not marker.exists()
    said = "isolated candidates run in a bubblewrap sandbox (own PID and network namespaces"
    assert said in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["run"]["isolation"].startswith("a bubblewrap sandbox")
    assert "Isolated candidates ran in a bubblewrap sandbox" in (
        tmp_path / "run" / "report.md").read_text()
    mine = verdicts(tmp_path / "run", attack("pickle_reply"))
    assert len(mine) == 6 and all(v == "error" for v, _ in mine), mine
    assert all("reply" in reason or "exit code" in reason for _, reason in mine), mine
    assert all(v == "pass" for v, _ in verdicts(tmp_path / "run", "mybackprop:matrix"))


@needs_sandbox
@pytest.mark.parametrize("name, said", [
    ("short_reply", "hung: no answer within the time limit of 3 s"),
    ("extra_reply", "broke the isolated worker's reply protocol: "),
])
def test_a_malformed_reply_is_an_error_and_never_hangs(tmp_path, name, said):
    started = time.monotonic()
    result = run("check", "--impl", attack(name), "--impl", "mybackprop:matrix", "--isolate",
                 "--time-limit", "3", "--cases", "3", "--out", str(tmp_path / "run"),
                 "--no-html")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    mine = verdicts(tmp_path / "run", attack(name))
    assert len(mine) == 3 and all(v == "error" and said in r for v, r in mine), mine
    assert all(v == "pass" for v, _ in verdicts(tmp_path / "run", "mybackprop:matrix"))
    assert time.monotonic() - started < 120


@needs_sandbox
def test_a_candidate_cannot_kill_the_harness_nor_leave_processes_behind(tmp_path):
    result = run("check", "--impl", attack("kills_parent"), "--impl", attack("forks_child"),
                 "--impl", "mybackprop:matrix", "--isolate", "--cases", "4", "--out",
                 str(tmp_path / "run"), "--no-html")
    assert result.returncode == 1, result.stdout + result.stderr  # forks_child fails
    assert (tmp_path / "run" / "summary.json").is_file()  # the run lived to write it
    assert all(v == "pass" for v, _ in verdicts(tmp_path / "run", attack("kills_parent")))
    assert all(v == "fail" for v, _ in verdicts(tmp_path / "run", attack("forks_child")))
    assert all(v == "pass" for v, _ in verdicts(tmp_path / "run", "mybackprop:matrix"))
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", "forks_child.py"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a forked child outlived the run"


@needs_sandbox
def test_a_cribber_finds_no_reference_answers_in_the_sandbox(tmp_path):
    """An earlier run's repro scripts hold reference answers; a sandboxed candidate sees no
    /tmp but its own and no folder but its own file's."""
    first = run("check", "--impl", "mybackprop.zoo:tanh_missing_square", "--activations",
                "tanh", "--cases", "20", "--repro", "all", "--out", str(tmp_path / "first"),
                "--no-html")
    assert first.returncode == 1 and list((tmp_path / "first" / "repro").iterdir())
    # without the sandbox it would find them (the attack is real) ...
    crib = run("check", "--impl", attack("cribs"), "--activations", "tanh", "--cases", "20",
               "--out", str(tmp_path / "open"), "--no-html", CRIB_FROM=str(tmp_path))
    assert any(v == "pass" for v, _ in verdicts(tmp_path / "open", attack("cribs"))), crib.stdout
    # ... and in it, it finds nothing
    crib = run("check", "--impl", attack("cribs"), "--activations", "tanh", "--cases", "20",
               "--isolate", "--out", str(tmp_path / "sandboxed"), "--no-html",
               CRIB_FROM=str(tmp_path))
    assert crib.returncode == 1
    assert all(v == "error" and "found no reference answers to crib" in r
               for v, r in verdicts(tmp_path / "sandboxed", attack("cribs")))


def test_a_worker_that_cannot_be_restarted_is_an_error_not_a_crash(tmp_path):
    """The candidate imports once, dies, and its file no longer imports: the next case is an
    error naming why (unsandboxed: the sandbox would not let it change its file)."""
    source = tmp_path / "once.py"
    source.write_text(f"""
import os
import signal
FLAG = {str(tmp_path / 'loaded')!r}
if os.path.exists(FLAG):
    raise ImportError("not twice")
open(FLAG, "w").close()


def backprop(problem):
    os._exit(1)
""")
    runner = IsolatedRunner(f"{source}:backprop", sandboxed=False)
    problem = sample_problem(np.random.default_rng(0), CaseSpace(max_depth=1))
    answer, reason = runner.run(problem, 10)
    assert answer is None and "exit code 1" in reason
    answer, reason = runner.run(problem, 10)
    assert answer is None and reason.startswith("could not be restarted: ")
    assert "not twice" in reason
    runner.close()


def test_without_bubblewrap_isolation_is_a_plain_process_and_the_run_says_so(tmp_path):
    """Where bwrap cannot be found (here: a PATH without it) --isolate still runs, and the
    header and the report name the weaker isolation."""
    path = str(Path(sys.executable).parent)  # the venv's tools, no /usr/bin
    result = run("check", "--impl", "tests/misbehaving/os_exit.py:backprop", "--isolate",
                 "--cases", "2", "--out", str(tmp_path / "run"), "--no-html", PATH=path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "isolated candidates run in plain processes with an address-space limit " \
           "(bubblewrap is not installed" in result.stdout
    assert all(v == "error" and "exit code 7" in r
               for v, r in verdicts(tmp_path / "run", "tests/misbehaving/os_exit.py:backprop"))
    assert "Isolated candidates ran in plain processes" in (tmp_path / "run" / "report.md"
                                                             ).read_text()


@needs_sandbox
def test_a_folder_of_submissions_is_sandboxed_by_default(tmp_path):
    """No --isolate: a folder is isolated all the same, so one submission that kills its
    parent cannot end the grading of the others; --no-isolate would run it in-process."""
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "mallory.py").write_text((ATTACKS / "kills_parent.py").read_text())
    (folder / "alice.py").write_text("import mybackprop\n\n\ndef backprop(problem):\n"
                                     "    return mybackprop.vector(problem)\n")
    result = run("check", "--impl", f"{folder}/:backprop", "--cases", "3", "--out",
                 str(tmp_path / "run"), "--no-html")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "isolated candidates run in a bubblewrap sandbox" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {Path(n.split(":")[0]).stem: c["pass"] for n, c in
            summary["by_candidate"].items()} == {"alice": 3, "mallory": 3}


@pytest.mark.parametrize("option, said", [
    (["--time-limit", "inf"], "--time-limit is inf: give a number of seconds > 0 and at most"),
    (["--time-limit", "1e300"], "--time-limit is 1e+300"),
    (["--seed", "-1"], "--seed is -1: give an integer from 0 to 2**63 - 1"),
    (["--memory-limit", "nan"], "--memory-limit is nan: give GiB > 0"),
    (["--memory-limit", "inf"], "--memory-limit is inf: give GiB > 0 and at most 1024"),
    (["--logit-scale", "inf"], "--logit-scale is inf: give a power of 10"),
    (["--tolerance-factor", "float32=inf"], "tolerance factor for float32 is inf: give a finite"),
    (["--max-depth", str(10**20)], "max_depth is 100000000000000000000: it must be an integer "
                                   "from 1 to 100"),
    (["--batch", f"1-{10**20}"], "max_batch is 100000000000000000000: it must be an integer"),
    (["--widths", "3,100000,2"], "all integers from 1 to 4096"),
    (["--workers", str(10**20)], "--workers is 100000000000000000000: give a number of "
                                 "processes from 1 to 1,024"),
    (["--cases", str(10**20)], "give a number of cases from 1 to 1,000,000,000"),
    (["--logit-scale", "1e300"], "--logit-scale is 1e+300: give a power of 10 from 1 to 1e+06"),
    (["--l2", "1e300"], "l2 coefficients (1e+300,): give one or more numbers from 0 to 1000"),
    (["--leaky-slope", "1e30"], "leaky_slope is 1e+30: leaky_relu's slope below zero is a "
                                "number from 0 to 10"),
    (["--out", "/etc/passwd"], "--out /etc/passwd is a file: give a folder"),
    (["--out", "/proc/mybackprop/run"], "cannot write the run folder there"),
])
def test_an_option_that_cannot_be_used_is_one_line_before_anything_runs(option, said):
    result = run("check", "--cases", "2", "--no-html", *option)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("declared, said", [
    ('{"max_parameters": "500"}', "supports max_parameters is '500': give an integer >= 1"),
    ('{"max_batch": -3}', "supports max_batch is -3: give an integer >= 1"),
    ('{"returns_dX": "no"}', "supports returns_dX is 'no': give True or False"),
    ('{"dtypes": []}', "supports dtypes is empty: declare at least one dtype"),
])
def test_a_declaration_that_cannot_be_used_is_one_line_never_a_pass(tmp_path, declared, said):
    (tmp_path / "zeros.py").write_text(
        "import numpy as np\n\n\ndef backprop(problem):\n    return {'loss': 0.0, 'dW': "
        "[np.zeros_like(w) for w in problem.weights], 'db': [None if b is None else "
        "np.zeros_like(b) for b in problem.biases], 'dX': np.zeros_like(problem.X)}\n\n\n"
        f"backprop.supports = {declared}\n")
    result = run("check", "--impl", f"{tmp_path / 'zeros.py'}:backprop", "--cases", "2",
                 "--out", str(tmp_path / "run"), "--no-html")
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and said in result.stderr, result.stderr


# Every key of a declaration, each with values of the wrong type, out of range or absurd.
_BAD_VALUES = [float("nan"), float("inf"), -1, 0, 1e300, "", "abc", 10**30, 1.5, [], [1],
               {"a": 1}, True, "500", (3, 1), (0, 2), ("a", "b"), [[]]]
_KEYS = ["activations", "losses", "reductions", "dtypes", "max_parameters", "max_batch",
         "returns_dX", "returns_intermediates", "depth", "widths", "width",
         "hidden_activations", "output_activations", "bias", "batch", "l2", "l2_half",
         "l2_biases", "leaky_slope", "elu_alpha", "weights", "layout", "bias_shape", "targets",
         "per_sample"]


@pytest.mark.parametrize("key", _KEYS)
def test_every_declared_key_takes_only_what_it_can_use(key):
    """Each bad value is a one-line CandidateLoadError naming the key, or a value the key can
    use (an int is a depth, (3, 1) are widths): never another exception, never a bool taken
    for a number or a number for a bool."""
    from mybackprop.harness.contract import CandidateLoadError, Supports

    for value in _BAD_VALUES:
        try:
            supports = Supports.coerce({key: value})
        except CandidateLoadError as exc:
            assert "\n" not in str(exc) and key in str(exc), (key, value, str(exc))
            continue
        kept = getattr(supports, key, getattr(supports.conventions, key, None))
        assert not isinstance(value, bool) or key in ("returns_dX", "returns_intermediates",
                                                      "bias", "l2_half", "l2_biases",
                                                      "per_sample"), (key, value)
        assert value not in ("", "abc", "500") and not isinstance(value, dict), (key, value)
        if isinstance(value, float) and key not in ("l2", "leaky_slope", "elu_alpha"):
            raise AssertionError((key, value, kept))
        if key in ("l2", "leaky_slope", "elu_alpha"):
            assert 0 <= kept <= 1e3, (key, value)


def _strict(text: str) -> object:
    def refuse(token: str) -> None:
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def test_an_error_past_float_range_is_strict_json_and_every_report_renders(tmp_path):
    result = run("check", "--impl", attack("huge_error"), "--cases", "4", "--out",
                 str(tmp_path / "run"))
    assert result.returncode == 1, result.stdout + result.stderr
    summary = _strict((tmp_path / "run" / "summary.json").read_text())
    assert summary["max_err_over_tol"] == float("inf")  # written 1e999, read back as inf
    for line in (tmp_path / "run" / "cases.jsonl").read_text().splitlines():
        _strict(line)
    again = run("report", str(tmp_path / "run"))
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr


def test_a_record_file_changed_during_the_run_is_never_judged(tmp_path):
    """In-process, a candidate can reach the harness's open cases.jsonl; the run notices that
    the file is not what it wrote, and says so instead of a verdict."""
    result = run("check", "--impl", attack("truncates_records"), "--cases", "20", "--chunk", "5",
                 "--out", str(tmp_path / "run"), "--no-html")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "was changed while the run ran" in result.stderr
    assert "PASS" not in result.stdout and not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("garbage", ['{"case": "x"}', "not json", '{"case": 0, "candidate": '
                                     '"a", "verdict": "maybe", "reason": ""}', "[1, 2]"])
def test_report_diff_and_resume_refuse_a_line_mybackprop_did_not_write(tmp_path, garbage):
    assert run("check", "--cases", "3", "--out", str(tmp_path / "run"), "--no-html"
               ).returncode == 0
    with open(tmp_path / "run" / "cases.jsonl", "a") as file:
        file.write(garbage + "\n")
    for command in (["report", str(tmp_path / "run")],
                    ["diff", str(tmp_path / "run"), str(tmp_path / "run")],
                    ["check", "--cases", "3", "--out", str(tmp_path / "run"), "--resume"]):
        result = run(*command)
        assert result.returncode == 2, (command, result.stdout + result.stderr)
        assert "line 4: " in result.stderr and "not a record mybackprop wrote" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_markdown_carries_no_html_from_a_candidates_text(tmp_path):
    (tmp_path / "xss.py").write_text("def backprop(problem):\n    raise ValueError("
                                     "'<img src=x onerror=alert(1)>')\n")
    result = run("check", "--impl", f"{tmp_path / 'xss.py'}:backprop", "--cases", "2",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    markdown = (tmp_path / "run" / "report.md").read_text()
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in markdown
    assert "<img src=x" not in (tmp_path / "run" / "report.html").read_text()


def test_in_process_a_candidate_can_neither_hang_the_run_nor_change_the_harness(tmp_path):
    """In-process (--no-isolate): a candidate that swallows the timeout, one whose answer is
    a generator that never ends, one that leaves NumPy raising, the working directory moved
    and the streams closed, one that raises KeyboardInterrupt, and one that writes to the
    frozen architecture and the case's config it was handed: each gets its verdict, and the
    matrix level beside them passes every case."""
    names = ["swallows_timeout", "generator_answer", "changes_the_problem",
             "changes_the_process", "raises_keyboard_interrupt"]
    impls = [arg for name in names for arg in ("--impl", attack(name))]
    started = time.monotonic()
    result = run("check", *impls, "--impl", "mybackprop:matrix", "--no-isolate",
                 "--time-limit", "2", "--cases", "3", "--out", str(tmp_path / "run"),
                 "--no-html")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    folder = tmp_path / "run"
    for name in ("swallows_timeout", "generator_answer"):
        got = verdicts(folder, attack(name))
        assert len(got) == 3 and all(v == "error" and r.startswith("hung: ") for v, r in got), got
    assert all(v == "pass" for v, _ in verdicts(folder, attack("changes_the_process")))
    assert all(v == "error" and r == "raised KeyboardInterrupt"
               for v, r in verdicts(folder, attack("raises_keyboard_interrupt")))
    assert all(v == "pass" for v, _ in verdicts(folder, attack("changes_the_problem")))
    assert [v for v, _ in verdicts(folder, "mybackprop:matrix")] == ["pass"] * 3
    # What it wrote to its problem reached neither the records nor the next candidate handed
    # the same draw (the attacks share one; matrix reads the penalty and is drawn its own).
    def configs(name: str) -> list[dict]:
        return [r["config"] for r in records(folder) if r["candidate"] == name]

    assert configs(attack("changes_the_problem")) == configs(attack("changes_the_process"))
    assert all(c["architecture"]["loss"] != "l1" for c in configs(attack("changes_the_process")))
    assert run("check", "--impl", attack("changes_the_process"), "--cases", "3", "--out",
               str(tmp_path / "alone"), "--no-html").returncode == 0
    assert [r["config"] for r in records(tmp_path / "alone")] == configs(
        attack("changes_the_problem"))
    assert time.monotonic() - started < 120


def test_resume_refuses_a_candidate_edited_since_the_run_started(tmp_path):
    source = tmp_path / "net.py"
    source.write_text("import mybackprop\n\n\ndef backprop(problem):\n"
                      "    return mybackprop.matrix(problem)\n")
    spec = f"{source}:backprop"
    assert run("check", "--impl", spec, "--cases", "3", "--out", str(tmp_path / "run"),
               "--no-html").returncode == 0
    source.write_text(source.read_text() + "# edited\n")
    result = run("check", "--impl", spec, "--cases", "3", "--out", str(tmp_path / "run"),
                 "--resume", "--no-html")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"--resume: {spec} changed since" in result.stderr, result.stderr


def test_two_runs_never_write_one_folder_at_once(tmp_path):
    (tmp_path / "slow.py").write_text("import time\n\nimport mybackprop\n\n\n"
                                      "def backprop(problem):\n    time.sleep(0.5)\n"
                                      "    return mybackprop.matrix(problem)\n")
    spec = f"{tmp_path / 'slow.py'}:backprop"
    first = subprocess.Popen([COMMAND, "check", "--impl", spec, "--cases", "40", "--chunk", "1",
                              "--out", str(tmp_path / "run"), "--no-html", "--quiet"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until it has begun writing
            if (tmp_path / "run" / "cases.jsonl").exists():
                break
            time.sleep(0.1)
        second = run("check", "--impl", spec, "--cases", "40", "--chunk", "1", "--out",
                     str(tmp_path / "run"), "--resume", "--no-html")
        assert second.returncode == 2, second.stdout + second.stderr
        assert "is being written by another run" in second.stderr
    finally:
        first.kill()
        first.wait()


@pytest.mark.parametrize("isolate", ["--no-isolate", "--isolate"])
def test_a_child_the_candidate_forks_never_returns_into_the_harness(tmp_path, isolate):
    """The child returns the right answer, the parent a wrong one: the child ends where it
    returns, and only the parent's answers are judged, once each."""
    result = run("check", "--impl", attack("forks_into_the_harness"), isolate, "--cases", "4",
                 "--out", str(tmp_path / "run"), "--no-html")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "4 cases: 4 fail" in result.stdout, result.stdout
    assert [v for v, _ in verdicts(tmp_path / "run", attack("forks_into_the_harness"))] == \
        ["fail"] * 4


def test_a_candidate_that_ends_the_process_in_process_is_never_a_clean_exit(tmp_path):
    """The check runs under a supervisor no candidate runs in: os._exit(0) in a call ends the
    run process, and the supervisor says so and exits 1, where the shell would have seen 0."""
    result = run("check", "--impl", attack("exits_mid_run"), "--no-isolate", "--cases", "5",
                 "--out", str(tmp_path / "run"), "--no-html")
    assert result.returncode == 1, result.stdout + result.stderr
    said = (f"the run ended with exit code 0 during case 2 of {attack('exits_mid_run')}, with 0 "
            "of 5 records")
    assert said in result.stderr and "(--isolate)" in result.stderr, result.stderr
    assert "PASS" not in result.stdout and not (tmp_path / "run" / "summary.json").exists()
    # isolated, the same candidate is an error of its case, and the run goes on to a summary
    result = run("check", "--impl", attack("exits_mid_run"), "--impl", "mybackprop:matrix",
                 "--isolate", "--cases", "5", "--out", str(tmp_path / "isolated"), "--no-html")
    assert result.returncode == 1, result.stdout + result.stderr
    mine = verdicts(tmp_path / "isolated", attack("exits_mid_run"))
    assert [v for v, _ in mine] == ["pass", "pass", "error", "pass", "pass"], mine
    assert "ended the interpreter with exit code 0" in mine[2][1]
    assert all(v == "pass" for v, _ in verdicts(tmp_path / "isolated", "mybackprop:matrix"))


def test_sys_exit_at_import_is_that_submissions_error_and_the_others_are_judged(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "a_exits.py").write_text((ATTACKS / "exits_at_import.py").read_text())
    (folder / "b_correct.py").write_text("from mybackprop import matrix as backprop\n")
    result = run("check", "--impl", f"{folder}/:backprop", "--no-isolate", "--cases", "3",
                 "--out", str(tmp_path / "run"), "--no-html")
    assert result.returncode == 1, result.stdout + result.stderr
    exits = verdicts(tmp_path / "run", f"{folder / 'a_exits.py'}:backprop")
    assert len(exits) == 3 and all(v == "error" and "called sys.exit(0)" in r for v, r in exits)
    assert [v for v, _ in verdicts(tmp_path / "run", f"{folder / 'b_correct.py'}:backprop")
            ] == ["pass"] * 3
    alone = run("check", "--impl", attack("exits_at_import"), "--cases", "3", "--out",
                str(tmp_path / "alone"), "--no-html")
    assert alone.returncode == 2 and "called sys.exit(0)" in alone.stderr, alone.stderr


def test_the_supervisor_judges_the_records_a_finished_run_left(tmp_path):
    from mybackprop.harness.supervise import judge

    assert run("check", "--cases", "4", "--out", str(tmp_path / "run"), "--no-html"
               ).returncode == 0
    state = {"folder": str(tmp_path / "run"), "expect": 4, "exit": 0}
    assert judge(0, state) == ("", 0)
    lines = (tmp_path / "run" / "cases.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "run" / "cases.jsonl").write_text("".join(lines + lines[:1]))
    assert judge(0, state) == (f"{tmp_path / 'run' / 'cases.jsonl'} holds 1 records twice: the "
                               "run is not judged", 1)
    (tmp_path / "run" / "cases.jsonl").write_text("".join(lines[:3]))
    assert judge(0, state)[1] == 1 and "holds 3 records where the run asked for 4" in judge(
        0, state)[0]
    # a run that never said it finished is never judged, whatever its exit code
    verdict, code = judge(0, {"folder": str(tmp_path / "run"), "expect": 4})
    assert code == 1 and "ended with exit code 0" in verdict
    verdict, code = judge(-9, {"folder": str(tmp_path / "run"), "expect": 4,
                               "calling": "case 3 of x"}, sent=[])
    assert code == 137 and "killed by SIGKILL during case 3 of x" in verdict
    assert "out of memory?" in verdict


def test_in_process_no_candidate_reads_a_reference_answer_of_its_own_case(tmp_path):
    """--repro all writes reference answers into the run folder, which an in-process candidate
    can read: they are written only once every candidate of the case has answered."""
    result = run("check", "--impl", "mybackprop.zoo:tanh_missing_square", "--impl",
                 attack("cribs"), "--no-isolate", "--activations", "tanh", "--cases", "12",
                 "--repro", "all", "--out", str(tmp_path / "run"), "--no-html",
                 CRIB_FROM=str(tmp_path / "run"))
    assert result.returncode == 1
    assert list((tmp_path / "run" / "repro").iterdir())  # they were there to crib from
    cribbed = verdicts(tmp_path / "run", attack("cribs"))
    assert len(cribbed) == 12 and not any(v == "pass" for v, _ in cribbed), cribbed


def _without_timing(folder: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds",)} for r in records(folder)]


def test_a_pool_worker_that_dies_is_replaced_and_its_chunk_runs_again(tmp_path):
    """--workers 2: a worker that dies once (as the out-of-memory killer would kill it) costs a
    restart; its chunk runs again, and the records are those of one process."""
    common = ("--impl", attack("kills_pool_worker"), "--cases", "24", "--chunk", "8",
              "--no-isolate", "--no-html", "--no-shrink")
    alone = run("check", *common, "--out", str(tmp_path / "alone"))
    assert alone.returncode == 0, alone.stdout + alone.stderr
    started = time.monotonic()
    pooled = run("check", *common, "--workers", "2", "--out", str(tmp_path / "pooled"),
                 MYBACKPROP_ATTACK_ONCE=str(tmp_path / "died"))
    assert (tmp_path / "died").exists()  # a pool worker did die
    assert pooled.returncode == 0, pooled.stdout + pooled.stderr
    assert _without_timing(tmp_path / "pooled") == _without_timing(tmp_path / "alone")
    assert time.monotonic() - started < 120


def test_a_pool_worker_that_always_dies_on_a_case_makes_that_pair_an_error(tmp_path):
    common = ("--impl", attack("kills_pool_worker"), "--impl", "mybackprop:matrix",
              "--cases", "16", "--chunk", "8", "--no-isolate", "--no-html", "--no-shrink")
    assert run("check", *common, "--out", str(tmp_path / "first")).returncode == 0
    batch = records(tmp_path / "first")[0]["batch_size"]  # case 0: in the pool's first chunk
    result = run("check", *common, "--workers", "2", "--out", str(tmp_path / "run"),
                 MYBACKPROP_ATTACK_BATCH=str(batch))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    mine = [(r["verdict"], r["reason"], r["batch_size"]) for r in records(tmp_path / "run")
            if r["candidate"] == attack("kills_pool_worker")]
    assert len(mine) == 16 and mine[0][0] == "error", mine
    assert all(v == "pass" or (v == "error" and n == batch and "pool process running it died"
                               in r) for v, r, n in mine), mine
    assert all(v == "pass" for v, _ in verdicts(tmp_path / "run", "mybackprop:matrix"))


def test_resume_keeps_only_the_records_this_run_would_write(tmp_path):
    """Forged, duplicated and foreign lines in an interrupted run's cases.jsonl are removed
    (and said); their pairs run again, and the folder ends as an uninterrupted run's."""
    common = ("check", "--impl", "mybackprop:matrix", "--impl",
              "mybackprop.zoo:tanh_missing_square", "--cases", "10", "--no-html", "--no-shrink",
              "--quiet")
    assert run(*common, "--out", str(tmp_path / "whole")).returncode == 1
    whole = (tmp_path / "whole" / "cases.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "run.json").write_text((tmp_path / "whole" / "run.json").read_text())
    forged = [json.loads(line) for line in whole[12:15]]
    forged[0]["seed"] = 7
    forged[1]["config"]["seed"] += 1  # another case's arrays
    forged[2]["candidate"] = "someone else"
    (tmp_path / "cut" / "cases.jsonl").write_text("".join(
        whole[:12] + whole[:2] + [json.dumps(r) + "\n" for r in forged[:3]]))
    resumed = run(*common, "--resume", "--out", str(tmp_path / "cut"))
    assert resumed.returncode == 1, resumed.stderr
    said = ("--resume: removed 5 records from {} that this run would not write (2 twice, 1 of "
            "another seed, 1 of a case this run does not draw, 1 of a candidate this run does "
            "not check); their cases run again").format(tmp_path / "cut" / "cases.jsonl")
    assert said in resumed.stdout, resumed.stdout
    def by_pair(folder: Path) -> list[tuple]:  # an oracle's last bits depend on its batch
        return sorted((r["case"], r["candidate"], json.dumps(r["config"], sort_keys=True),
                       r["verdict"]) for r in records(folder))

    assert by_pair(tmp_path / "cut") == by_pair(tmp_path / "whole")


@needs_sandbox
def test_the_memory_limit_holds_for_the_whole_process_tree(tmp_path):
    """Two forked children of 1.25 GiB each stay under a 2 GiB limit per process, not under one
    on the tree: in the sandbox, with a cgroup, a child is killed. Where no cgroup can be made
    the limit is per process, the children get their memory, and the run says so."""
    on_tree = "memory limits on the whole tree" in sandbox.describe(True)
    result = run("check", "--impl", attack("forks_past_memory"), "--impl", "mybackprop:matrix",
                 "--isolate", "--memory-limit", "2", "--cases", "2", "--no-shrink",
                 "--time-limit", "60",  # filling 2.5 GiB on a loaded machine is slow
                 "--out", str(tmp_path / "run"), "--no-html")
    mine = verdicts(tmp_path / "run", attack("forks_past_memory"))
    if on_tree:
        assert result.returncode == 1, result.stdout + result.stderr
        assert len(mine) == 2 and all(v == "error" and r.startswith(
            "raised RuntimeError: a forked child was killed by SIGKILL") for v, r in mine), mine
    else:  # the weaker fallback, named where the run starts
        assert "an address-space limit per process (no writable cgroups here)" in result.stdout
        assert [v for v, _ in mine] == ["pass", "pass"], mine
    assert all(v == "pass" for v, _ in verdicts(tmp_path / "run", "mybackprop:matrix"))


def test_a_candidate_that_ignores_signals_cannot_keep_the_run_alive(tmp_path):
    """In-process, a candidate sets SIGTERM (and SIGINT, SIGHUP) to be ignored in every call: a
    kill still stops the run, the supervisor killing it when it has not stopped 10 s later."""
    process = subprocess.Popen(
        [COMMAND, "check", "--impl", attack("ignores_signals"), "--no-isolate", "--cases",
         "300", "--out", str(tmp_path / "run"), "--no-html"], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(5)  # loaded, and in its calls
    told = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    # It stops on the signal where it lands between calls (the harness puts its handler back
    # after each), or the supervisor kills it 10 s later where the candidate held it off.
    assert time.monotonic() - told < 20, err
    assert (process.returncode == 143 and "SIGTERM was sent to mybackprop;" in err) or (
        process.returncode == 137 and "SIGTERM was sent to mybackprop, and the run did not "
        "stop within 10 s (a candidate run in-process may ignore it), so the supervisor killed "
        "it" in err), (process.returncode, err)
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", "ignores_signals.py"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
