"""The oracles themselves: JAX's shape buckets change nothing but rounding; imports stay lazy."""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import jax
import numpy as np
from hypothesis import given, settings
from mybackprop.oracles import OracleUnavailable, load_oracle, versions
from mybackprop.oracles._padding import bucket, bucket_shape
from mybackprop.oracles.jax_oracle import SMALL_STACK, STACK, STACK_MIN_DEPTH, JaxOracle

from mybackprop.harness.cases import CaseSpace, sample_problem
from mybackprop.judging.compare import compare
from mybackprop.judging.tolerance import Tolerance, gradient_scales
from mybackprop.strategies import problems


# Each example compiles an exact-shape XLA function (~2 s on CI): 20 of them in the ci profile,
# 60 in the thorough one.
@settings(max_examples=60 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 20)
@given(problems(dtypes=["float64"]))
def test_padding_into_shape_buckets_changes_the_jax_answer_only_by_rounding(problem):
    padded, tight = JaxOracle(pad=True).gradients(problem), JaxOracle(pad=False).gradients(problem)
    allowed = Tolerance().allowed(gradient_scales(problem), "float64")
    failing = [c.describe() for c in compare(padded, tight, allowed) if not c.passed]
    assert not failing, failing


def test_compiled_functions_are_kept_as_files_and_a_bad_file_is_compiled_again(
        tmp_path, monkeypatch):
    import mybackprop.oracles.jax_oracle as jo

    monkeypatch.setenv("MYBACKPROP_JAX_CACHE", str(tmp_path))
    problem = sample_problem(np.random.default_rng(0), CaseSpace(dtypes=("float64",)))
    args = jo._pack(problem.float64(), JaxOracle()._shape(problem))
    expected = jax.tree_util.tree_leaves(jo._JITTED["one"](*args))

    def run_in_a_new_process() -> None:  # as far as loading goes: nothing kept in memory
        answer = jax.tree_util.tree_leaves(jo._Compiled()("one", args))
        assert all(np.array_equal(a, b) for a, b in zip(answer, expected, strict=True))

    run_in_a_new_process()  # compiled, and written
    (path,) = tmp_path.glob("one-*.xla")
    written = path.stat().st_ino
    run_in_a_new_process()
    assert path.stat().st_ino == written  # loaded: not written again
    path.write_bytes(path.read_bytes()[:1000])  # cut short
    run_in_a_new_process()  # compiled again, and replaced
    replaced = path.stat().st_ino
    assert replaced != written and path.stat().st_size > 1000
    run_in_a_new_process()
    assert path.stat().st_ino == replaced  # the replacement loads


def test_buckets_are_powers_of_two_above_a_floor():
    assert [bucket(n, 16) for n in (1, 16, 17, 64, 65)] == [16, 16, 32, 64, 128]


def test_an_unknown_oracle_is_a_clear_error():
    try:
        load_oracle("tensorflow")
    except OracleUnavailable as exc:
        assert str(exc) == "unknown oracle 'tensorflow': choose from torch, jax"
    else:
        raise AssertionError("load_oracle accepted an unknown name")


def test_versions_are_read_without_importing_the_frameworks():
    code = ("import sys; from mybackprop.oracles import versions; v = versions(); "
            "print(sorted(m for m in ('torch', 'jax') if m in sys.modules), v['torch'][:6])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["[]", "2.13.0"]
    assert versions()["jax"]


def test_both_oracles_compute_in_float64_from_float32_parameters(torch_oracle, jax_oracle):
    from mybackprop import Architecture, Layer
    from mybackprop.harness.cases import CaseConfig, build_problem

    arch = Architecture(3, (Layer(4, "tanh"),), "mse", "mean")
    problem = build_problem(CaseConfig(arch, 5, "float32", 1.0, 1.0, seed=1))
    for oracle in (torch_oracle, jax_oracle):
        g = oracle.gradients(problem)
        assert g.dW[0].dtype == np.float64 and g.dX.dtype == np.float64


def test_batched_answers_are_the_one_case_answers_to_within_rounding(torch_oracle, jax_oracle):
    """gradients_many (stacks of padded cases: vmapped in JAX, one graph in torch) changes
    nothing but rounding, in every size class: 95 default cases (every activation and loss,
    both dtypes; in JAX, stacks of 64 and of 16, each filled up with repeats), and 12 wider,
    deeper, larger-batch ones (their own classes; fewer than JAX's MIN_STACKED go one at a
    time)."""
    from mybackprop.sweep.sweeps import case_problem

    default, large = CaseSpace(), CaseSpace(max_depth=9, max_width=40, max_batch=100)

    def both_stack_sizes(problems: list) -> bool:
        sizes = collections.Counter(bucket_shape(p, STACK_MIN_DEPTH) for p in problems).values()
        last_stacks = {n % STACK or STACK for n in sizes}  # each bucket's last (or only) stack
        return any(n <= SMALL_STACK for n in last_stacks) and any(
            n > SMALL_STACK for n in last_stacks)

    # 95 default cases or the first few more that end some bucket in a small stack and some in
    # a large one (which counts do depends on the draws)
    problems = [case_problem(21, k, default) for k in range(95)]
    while not both_stack_sizes(problems) and len(problems) < 300:
        problems.append(case_problem(21, len(problems), default))
    problems += [case_problem(22, k, large) for k in range(12)]
    assert both_stack_sizes(problems)
    for oracle in (torch_oracle, jax_oracle):
        batched = oracle.gradients_many(problems)
        for problem, together in zip(problems, batched, strict=True):
            alone = oracle.gradients(problem)
            allowed = Tolerance().allowed(gradient_scales(problem, "float64"), "float64")
            failing = [c.describe() for c in compare(together, alone, allowed) if not c.passed]
            assert not failing, (oracle.name, problem.architecture.describe(), failing)
            assert [t.shape for t in together.tensors().values()] == [
                t.shape for t in alone.tensors().values()]


def test_padded_rows_never_put_nan_into_a_loss_on_probabilities(torch_oracle, jax_oracle):
    """Found by the property suite: one sample padded to a bucket's batch, a sigmoid output
    under binary cross-entropy. A padded row's output comes from the biases alone and rounded
    to 1, log1p(-1) = -inf there, and the mask applied after the loss still carried 0 * inf =
    NaN into JAX's gradient. Padded rows are now masked before the loss, like padded units."""
    from mybackprop.harness.cases import CaseConfig, build_problem

    layers = [{"width": w, "activation": a, "bias": b} for w, a, b in (
        (3, "identity", False), (12, "relu", True), (2, "identity", True),
        (12, "identity", False), (6, "sigmoid", False))]
    problem = build_problem(CaseConfig.from_dict({
        "architecture": {"input_width": 16, "layers": layers, "loss": "binary_cross_entropy",
                         "reduction": "mean"},
        "batch_size": 1, "dtype": "float64", "input_scale": 1.0, "output_scale": 100.0,
        "seed": 5092138, "kinks": "avoid"}))
    allowed = Tolerance().allowed(gradient_scales(problem), "float64")
    reference = torch_oracle.gradients(problem)
    for answer in (jax_oracle.gradients(problem), *jax_oracle.gradients_many([problem] * 9)):
        failing = [c.describe() for c in compare(answer, reference, allowed) if not c.passed]
        assert not failing, failing
