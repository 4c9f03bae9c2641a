"""Candidates with known bugs or bad manners, written against the public contract only."""

from __future__ import annotations

import sys

import numpy as np

import mybackprop as mb


def dw_not_averaged(problem):
    """The classic: dW summed over the batch, never divided by N (db is right)."""
    answer = mb.matrix(problem)
    if problem.reduction in ("mean", "batch_mean"):
        answer["dW"] = [dw * problem.batch_size for dw in answer["dW"]]
    return answer


def raises(problem):
    raise ValueError("boom")


def returns_none(problem):
    return None


def drops_a_layer(problem):
    answer = mb.matrix(problem)
    answer["dW"] = answer["dW"][:-1]
    return answer


def transposed_dw(problem):
    answer = mb.matrix(problem)
    answer["dW"] = [dw.T for dw in answer["dW"]]
    return answer


def float64_always(problem):
    answer = mb.matrix(problem)
    answer["dW"] = [dw.astype(np.float64) for dw in answer["dW"]]
    return answer


def nan_gradient(problem):
    answer = mb.matrix(problem)
    answer["dW"][0] = np.full_like(answer["dW"][0], np.nan)
    return answer


def changes_weights_in_place(problem):
    answer = mb.matrix(problem)
    problem.weights[0][...] = 0.0
    return answer


def exits(problem):
    sys.exit(3)


def chatty(problem):
    print("debug output the harness must swallow")
    return mb.matrix(problem)


@mb.candidate(activations={"sigmoid"}, losses={"mse"})
def sigmoid_mse_only(problem):
    return mb.matrix(problem)


@mb.candidate(returns_dX=False)
def without_dx(problem):
    answer = mb.matrix(problem)
    del answer["dX"]
    return answer


def forgets_dx(problem):
    answer = mb.matrix(problem)
    del answer["dX"]
    return answer


def hangs(problem):
    while True:
        pass


def sigmoid_wrong_derivative(problem):
    """sigmoid'(a) for sigmoid'(z) (the derivative at the activation); everything else right."""
    import dataclasses

    sigmoid = mb.ACTIVATIONS["sigmoid"]
    wrong = dataclasses.replace(
        sigmoid, derivative=lambda z, a: sigmoid.derivative(a, sigmoid.forward(a)))
    return mb.matrix(problem, table={**mb.ACTIVATIONS, "sigmoid": wrong})


def returns_torch_tensors(problem):
    import torch

    answer = mb.matrix(problem)
    answer["dW"] = [torch.from_numpy(dw) for dw in answer["dW"]]
    return answer


def returns_tensors_that_require_grad(problem):
    import torch

    answer = mb.matrix(problem)
    answer["dW"] = [torch.from_numpy(dw).requires_grad_() for dw in answer["dW"]]
    return answer


def returns_strings(problem):
    answer = mb.matrix(problem)
    answer["dX"] = "not an array"
    return answer


@mb.candidate(returns_intermediates=True)
def with_intermediates(problem):
    from mybackprop.levels.matrix import forward

    answer = mb.matrix(problem)
    fwd = forward(problem)
    G = problem.architecture.loss_spec.derivative(fwd.a[-1], problem.Y) / fwd.divisor
    deltas = []
    for l in reversed(range(problem.architecture.depth)):
        f = problem.architecture.activation_specs[l]
        deltas.insert(0, f.backward(fwd.z[l], fwd.a[l + 1], G))
        G = deltas[0] @ problem.weights[l]
    answer["intermediates"] = {"Z": fwd.z, "A": fwd.a[1:], "delta": deltas}
    return answer


@mb.candidate(returns_intermediates=True)
def intermediates_of_the_wrong_shape(problem):
    answer = with_intermediates(problem)
    answer["intermediates"]["A"][0] = answer["intermediates"]["A"][0].T
    return answer


_seen: set[bytes] = set()


def wrong_the_first_time(problem):
    """Off by a factor 3 the first time it sees an input, right afterwards: a failure that does
    not come back when the case runs again."""
    key = problem.X.tobytes() + problem.weights[0].tobytes()
    answer = mb.matrix(problem)
    if key not in _seen:
        _seen.add(key)
        answer["dW"] = [3 * dw for dw in answer["dW"]]
    return answer


def _with_kink_slopes(problem, relu=None, leaky=None, hardtanh=None):
    """The matrix level with the derivative at the kinks written as a person may write it."""
    import dataclasses

    arch = problem.architecture
    table = {name: arch.activation_spec(name) for name in mb.ACTIVATIONS}
    if relu is not None:  # np.where(z >= 0, 1, 0) for relu = 1, or a value of its own at 0
        table["relu"] = dataclasses.replace(table["relu"], derivative=lambda z, a: np.where(
            z > 0, 1.0, np.where(z == 0, relu, 0.0)).astype(z.dtype))
    if leaky is not None:
        s = arch.leaky_slope
        table["leaky_relu"] = dataclasses.replace(
            table["leaky_relu"], derivative=lambda z, a: np.where(
                z > 0, 1.0, np.where(z == 0, leaky(s), s)).astype(z.dtype))
    if hardtanh is not None:
        table["hardtanh"] = dataclasses.replace(
            table["hardtanh"], derivative=lambda z, a: np.where(
                np.abs(z) < 1, 1.0, np.where(np.abs(z) == 1, hardtanh, 0.0)).astype(z.dtype))
    return mb.matrix(problem, table=table)


def relu_derivative_one_at_zero(problem):
    """relu'(z) = 1 where z >= 0 (np.where(z >= 0, 1, 0)): the right derivative at the kink."""
    return _with_kink_slopes(problem, relu=1.0)


def midpoints_at_kinks(problem):
    """Half-way between the one-sided derivatives at every kink: relu'(0) = 0.5, leaky_relu'(0)
    = (1 + s) / 2, hardtanh'(+-1) = 0.5; and relu'(0) = 1 beside them in another function."""
    return _with_kink_slopes(problem, relu=1.0, leaky=lambda s: (1 + s) / 2, hardtanh=0.5)
