"""Buggy backprops not in the zoo, written from the README's contract alone: numpy only, one
sample at a time, their own activation code. Each has one bug, named in its docstring."""

import math

import numpy as np


def _act(name, z):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "gelu":
        return z * 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    return z  # identity


def _dact(name, z, bug=None):
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "gelu":
        cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
        pdf = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        return cdf if bug == "gelu" else cdf + z * pdf
    return np.ones_like(z)


def _backprop(problem, bug=None):
    X, Y = problem.X, problem.Y
    n = len(X)
    divisor = {"mean": Y.size, "batch_mean": n, "sum": 1}[problem.reduction]
    if bug == "sum_divides":
        divisor = n
    dW = [np.zeros_like(W) for W in problem.weights]
    db = [None if b is None else np.zeros_like(b) for b in problem.biases]
    dX = np.zeros_like(X)
    loss = 0.0
    for i in range(n):
        a, zs, acts = X[i], [], [X[i]]
        for W, b, name in zip(problem.weights, problem.biases, problem.activations):
            z = W @ a + (0 if b is None else b)
            a = _act(name, z)
            zs.append(z)
            acts.append(a)
        loss += np.sum((a - Y[i]) ** 2)
        g = 2 * (a - Y[i]) / divisor
        for l in reversed(range(len(problem.weights))):
            delta = g * _dact(problem.activations[l], zs[l], bug)
            dW[l] += np.outer(delta, acts[l + 1] if bug == "outer_own_layer" else acts[l])
            if db[l] is not None:
                db[l] += delta * (n if bug == "bias_times_n" else 1)
            g = problem.weights[l].T @ delta
        dX[i] = g
    return {"loss": loss / divisor, "dW": dW, "db": db, "dX": dX}


SUPPORTS = {"activations": ["sigmoid", "tanh", "relu", "gelu", "identity"], "losses": ["mse"]}


def gelu_without_pdf(problem):
    """gelu'(z) = Phi(z): the z phi(z) of the product rule is missing."""
    return _backprop(problem, "gelu")


def bias_times_n(problem):
    """db accumulates delta * N per sample: N times too big."""
    return _backprop(problem, "bias_times_n")


def sum_divides_by_n(problem):
    """Divides by N even when the reduction is 'sum' (the loss too)."""
    return _backprop(problem, "sum_divides")


def outer_own_layer(problem):
    """dW_l = outer(delta_l, a_l): this layer's activation, not the one below."""
    return _backprop(problem, "outer_own_layer")


def clipped_gradient(problem):
    """Clips every gradient element to [-1, 1] 'for stability'."""
    answer = _backprop(problem)
    answer["dW"] = [np.clip(w, -1, 1) for w in answer["dW"]]
    return answer


for _f in (gelu_without_pdf, bias_times_n, sum_divides_by_n, outer_own_layer,
           clipped_gradient):
    _f.supports = SUPPORTS
