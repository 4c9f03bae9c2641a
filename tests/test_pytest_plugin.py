"""`pytest --impl`: the packaged suite run on a candidate, as a user runs it (real processes)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from helpers import SUITE_TESTS

import mybackprop as mb

# -k matches substrings: tanh and mse, not gelu_tanh, hardtanh or half_mse
ONLY = "mse and not half and not gelu and not hard"
TANH_MSE = f"test_gradients and tanh and {ONLY}"

pytest_plugins = ["pytester"]
CANDIDATES = Path(__file__).parent / "candidates.py"
FAST = ["--mybackprop-examples", "5", "-p", "no:cacheprovider"]


STATUS = "PASSED|FAILED|SKIPPED|XFAIL|XPASS|ERROR"
PLAIN = re.compile(rf"::(?P<id>\S+) (?P<status>{STATUS})\b")  # path::id STATUS
WORKER = re.compile(rf"\] (?P<status>{STATUS}) \S*::(?P<id>\S+)")  # [gw0] [ 50%] STATUS path::id


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """test id -> PASSED/FAILED/SKIPPED/XFAIL, from the -v lines of one process or of xdist."""
    found = {}
    for line in result.outlines:
        match = PLAIN.search(line) or WORKER.search(line)
        if match:
            found[match["id"]] = match["status"]
    return found


def test_a_correct_candidate_passes_the_whole_suite_and_the_header_names_it(pytester):
    result = pytester.runpytest_subprocess("--impl", "mybackprop:vector", *FAST)
    result.assert_outcomes(passed=SUITE_TESTS)
    result.stdout.fnmatch_lines(["mybackprop: candidate mybackprop:vector (all activations*"])


def test_a_broken_candidate_fails_with_the_smallest_network_and_a_repro(pytester):
    result = pytester.runpytest_subprocess(
        "--impl", f"{CANDIDATES}:dw_not_averaged", "-k",
        TANH_MSE, *FAST)
    result.assert_outcomes(failed=1)
    # The drawn case, the line that rebuilds it, then the smallest case that keeps the
    # diagnosis, found by mybackprop's shrinker.
    result.stdout.fnmatch_lines(["*fail [*dw_not_averaged vs torch+jax, *",
                                 "*dW1[[]*]: candidate *",
                                 "*reproduce: from mybackprop import problem_from_config; *",
                                 "*smallest case that keeps this diagnosis (*): 1-1(tanh*N=2 *",
                                 "*fail [*dw_not_averaged vs torch+jax, 1-1(tanh*N=2, *",
                                 "*diagnosis (constant_factor)*"])
    # The reproduce line runs exactly as printed, in a fresh interpreter, and rebuilds the case
    # that failed: its architecture and batch, and the same failure from the candidate.
    context = next(line for line in result.outlines if "fail [" in line)
    line = next(line for line in result.outlines if "reproduce: " in line)
    code = line.split("reproduce: ", 1)[1]
    check = (f"{code}\nimport sys; sys.path.insert(0, {str(CANDIDATES.parent)!r})\n"
             "import candidates, mybackprop\n"
             "print(problem.architecture.describe(), problem.batch_size, problem.dtype_name)\n"
             "good, bad = mybackprop.matrix(problem), candidates.dw_not_averaged(problem)\n"
             "print(float(abs(bad['dW'][0] - good['dW'][0]).max()) > 0)\n")
    rebuilt = pytester.run(sys.executable, "-c", check)
    assert rebuilt.ret == 0, rebuilt.stderr.str()
    architecture, batch, dtype = rebuilt.outlines[0].rsplit(" ", 2)
    assert f", {architecture}, N={batch}, {dtype}]" in context
    assert rebuilt.outlines[1] == "True"


def test_a_failure_that_does_not_come_back_is_reported_unshrunk(pytester):
    # The suite judges a test's cases together, then checks the first failing case once more
    # alone before shrinking it; a failure that does not come back is still reported.
    result = pytester.runpytest_subprocess(
        "--impl", f"{CANDIDATES}:wrong_the_first_time", "-k",
        TANH_MSE,
        *FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*fail [*wrong_the_first_time vs torch+jax, *",
                                 "*reproduce: from mybackprop import problem_from_config; *",
                                 "*run again alone it gave pass, so it was not shrunk*"])


def test_unsupported_activations_are_skipped_not_crashed(pytester):
    result = pytester.runpytest_subprocess("--impl", f"{CANDIDATES}:sigmoid_mse_only",
                                           "-k", "test_gradients", *FAST)
    result.assert_outcomes(passed=1, skipped=len(mb.ACTIVATIONS) * len(mb.LOSSES) - 1)


def test_skip_and_xfail_lists_come_from_a_file(pytester):
    expect = pytester.makefile(".txt", expect="""
        # brackets are literal, * is a wildcard
        skip   test_gradients[softmax-*]   softmax comes next week
        xfail  test_gradients[tanh-mse]    known: dW not averaged
    """)
    result = pytester.runpytest_subprocess(
        "--impl", f"{CANDIDATES}:dw_not_averaged", "--mybackprop-expect", str(expect),
        "-k", f"test_gradients and (softmax or tanh) and {ONLY}", "-v", *FAST)
    assert outcomes(result) == {"test_gradients[tanh-mse]": "XFAIL",
                                "test_gradients[softmax-mse]": "SKIPPED"}


def test_a_bad_impl_is_a_usage_error(pytester):
    result = pytester.runpytest_subprocess("--impl", "no_such_module:backprop")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no module named 'no_such_module'*"])


def test_two_workers_give_the_same_verdicts_as_one_process(pytester):
    args = ["--impl", f"{CANDIDATES}:sigmoid_wrong_derivative", "-v",
            "-k", "test_gradients and (sigmoid or tanh) and not softmax_cross", *FAST]
    alone = outcomes(pytester.runpytest_subprocess(*args))
    parallel = outcomes(pytester.runpytest_subprocess(*args, "-n", "2"))
    assert alone == parallel
    assert sorted(set(alone.values())) == ["FAILED", "PASSED"]


def test_each_mistake_is_shrunk_once_a_session(pytester):
    result = pytester.runpytest_subprocess(
        "--impl", "mybackprop.zoo:batch_sum", "-k",
        f"test_gradients and (tanh or sigmoid) and {ONLY}", *FAST)
    result.assert_outcomes(failed=2)
    # The failures section only: the short summary at the end repeats messages, in full where
    # there is no terminal to cut them to (CI).
    text = result.stdout.str().split("short test summary info")[0]
    assert text.count("smallest case that keeps this diagnosis") == 2
    assert text.count("(shrunk once for this diagnosis, in an earlier test)") == 1


def test_a_layer_kit_gets_the_layer_checks_named_after_its_layers(pytester):
    """pytest --impl on a kit: each layer alone, its state and the trajectories are tests of
    their own (a candidate that is no kit does not collect them: the suite's count above)."""
    twin = Path(__file__).parent / "layers" / "accumulating_book.py"
    result = pytester.runpytest_subprocess("--impl", f"{twin}:net", "-k",
                                           "layer or trajectory", "-v", *FAST)
    assert outcomes(result) == {
        "test_layer_alone[dense]": "PASSED", "test_layer_alone[activation-relu]": "PASSED",
        "test_layer_alone[loss-mse]": "PASSED", "test_layer_state[dense]": "FAILED",
        "test_layer_state[activation-relu]": "PASSED", "test_layer_state[loss-mse]": "PASSED",
        "test_training_trajectory[0.0]": "FAILED", "test_training_trajectory[0.9]": "FAILED"}
    result.stdout.fnmatch_lines(["*Layer_Dense.backward accumulates its gradients across "
                                 "iterations*", "*step 2: the gradients are the sum of this "
                                 "step's and every earlier step's*"])
