"""Correct formulations other than mybackprop's own: none may ever fail (issue 24, item 1).

    .venv/bin/python bench/formulations.py                  # 10,000 default-space cases per dtype
    .venv/bin/python bench/formulations.py --cases 500      # a quick look
    .venv/bin/python bench/formulations.py --space ordinary # ordinary networks

Each candidate below computes the right gradients in a way people write them, differently from
the matrix level: softmax as exp(z - logsumexp(z)), sigmoid through tanh or as 1 / (1 + e^-z),
tanh' as sech^2, log-sum-exp by np.logaddexp.reduce, binary cross-entropy through softplus,
one sample at a time (the vector level), float32 computed in float64 then rounded, and
PyTorch's autograd in the case's dtype. All run in one `mybackprop check` over the default
space (so the oracles answer each case once), and the script prints each candidate's verdicts
per dtype: anything but pass is a false alarm.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

import mybackprop as mb
from mybackprop.levels.matrix import matrix
from mybackprop.spec.table import ACTIVATIONS, LOSSES


def _table(problem, **replaced):
    arch = problem.architecture
    return {**{name: arch.activation_spec(name) for name in ACTIVATIONS}, **replaced}


def _lse(z):
    m = z.max(axis=-1, keepdims=True)
    return m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def _softmax_lse(z):
    return np.exp(z - _lse(z))


def softmax_via_logsumexp(problem):
    """softmax(z) = exp(z - logsumexp(z)), in the layer and in cross-entropy's softmax(z) - y."""
    table = _table(problem, softmax=dataclasses.replace(ACTIVATIONS["softmax"],
                                                        forward=_softmax_lse))
    loss = None
    if problem.architecture.loss == "softmax_cross_entropy":
        def derivative(yhat, y):
            p = _softmax_lse(yhat)
            p[np.arange(len(y)), y] -= 1
            return p
        loss = dataclasses.replace(LOSSES["softmax_cross_entropy"], derivative=derivative)
    return matrix(problem, table=table, loss=loss)


def logsumexp_by_logaddexp(problem):
    """Cross-entropy on logits as np.logaddexp.reduce(z) - z_y."""
    loss = None
    if problem.architecture.loss == "softmax_cross_entropy":
        def terms(yhat, y):
            return np.logaddexp.reduce(yhat, axis=-1) - yhat[np.arange(len(y)), y]
        loss = dataclasses.replace(LOSSES["softmax_cross_entropy"], terms=terms)
    return matrix(problem, loss=loss)


def _sigmoid_tanh(z):
    return (0.5 * (1 + np.tanh(0.5 * z))).astype(z.dtype)


def _sigmoid_exp(z):
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-z))).astype(z.dtype)


def sigmoid_via_tanh(problem):
    """sigmoid(z) = (1 + tanh(z / 2)) / 2, and its derivative s (1 - s)."""
    entry = dataclasses.replace(ACTIVATIONS["sigmoid"], forward=_sigmoid_tanh,
                                derivative=lambda z, a: a * (1 - a))
    return matrix(problem, table=_table(problem, sigmoid=entry))


def sigmoid_as_written(problem):
    """sigmoid(z) = 1 / (1 + exp(-z)), as most courses write it (exp overflows to inf: 0)."""
    entry = dataclasses.replace(ACTIVATIONS["sigmoid"], forward=_sigmoid_exp,
                                derivative=lambda z, a: a * (1 - a))
    return matrix(problem, table=_table(problem, sigmoid=entry))


def tanh_derivative_as_sech_squared(problem):
    """tanh'(z) = 1 / cosh(z)^2 (cosh overflows to inf: 0)."""
    def derivative(z, a):
        with np.errstate(over="ignore"):
            return (1 / np.cosh(z) ** 2).astype(z.dtype)
    entry = dataclasses.replace(ACTIVATIONS["tanh"], derivative=derivative)
    return matrix(problem, table=_table(problem, tanh=entry))


def bce_through_softplus(problem):
    """Binary cross-entropy on logits as y softplus(-z) + (1 - y) softplus(z), softplus by
    np.logaddexp(0, z)."""
    loss = None
    if problem.architecture.loss == "binary_cross_entropy_with_logits":
        def terms(yhat, y):
            return y * np.logaddexp(0, -yhat) + (1 - y) * np.logaddexp(0, yhat)
        loss = dataclasses.replace(LOSSES["binary_cross_entropy_with_logits"], terms=terms)
    return matrix(problem, loss=loss)


def float64_then_rounded(problem):
    """float32 cases computed in float64 and rounded to float32 at the end."""
    answer = matrix(problem.as_float64())
    if problem.dtype_name == "float64":
        return answer
    def cast(a):
        return None if a is None else np.asarray(a, np.float32)
    return {"loss": float(np.float32(answer["loss"])), "dW": [cast(w) for w in answer["dW"]],
            "db": [cast(b) for b in answer["db"]], "dX": cast(answer["dX"])}


def one_sample_at_a_time(problem):
    """The vector level: per-sample loops, summed in another order than a batch's matmul."""
    return mb.vector(problem)


def autograd_in_the_cases_dtype(problem):
    """PyTorch's autograd on the problem in its own dtype: a framework's formulation, its float32
    kernels (BLAS, vectorised exp and log) included."""
    from mybackprop.oracles.torch_oracle import autograd

    answer = autograd(problem)
    return {"loss": answer.loss, "dW": answer.dW, "db": answer.db, "dX": answer.dX}


FORMULATIONS = (softmax_via_logsumexp, logsumexp_by_logaddexp, sigmoid_via_tanh,
                sigmoid_as_written, tanh_derivative_as_sech_squared, bce_through_softplus,
                float64_then_rounded, one_sample_at_a_time, autograd_in_the_cases_dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per dtype (10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--space", default="default", choices=("default", "ordinary", "stress"),
                        help="the scales drawn, as `mybackprop check --space` (default)")
    args = parser.parse_args()
    impls = [arg for f in FORMULATIONS for arg in ("--impl", f"{__file__}:{f.__name__}")]
    started = time.perf_counter()
    found: dict[tuple[str, str], Counter[str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for dtype in ("float32", "float64"):
            out = Path(folder) / dtype
            subprocess.run([sys.executable, "-m", "mybackprop", "check", *impls, "--dtype", dtype,
                            "--cases", str(args.cases), "--seed", str(args.seed), "--space",
                            args.space, "--workers", str(args.workers), "--no-isolate",
                            "--no-shrink", "--repro", "none", "--no-html", "--quiet", "--out",
                            str(out)], check=False,
                           capture_output=True)
            with open(out / "cases.jsonl") as lines:
                for line in lines:
                    record = json.loads(line)
                    name = record["candidate"].rpartition(":")[2]
                    found.setdefault((name, dtype), Counter())[record["verdict"]] += 1
                    if record["verdict"] not in ("pass", "skipped"):
                        print(f"  {name} case {record['case']} {dtype}: {record['verdict']}: "
                              f"{record['reason'][:150]}")
    print("| formulation | dtype | cases | pass | not pass |\n|---|---|---:|---:|---:|")
    for (name, dtype), counts in sorted(found.items()):
        checked = sum(counts.values()) - counts["skipped"]
        print(f"| {name} | {dtype} | {checked} | {counts['pass']} | {checked - counts['pass']} |")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
