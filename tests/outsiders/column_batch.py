"""Buggy backprops not in the zoo, in another style than per_sample_loops.py: one batch with
samples as columns (X is (n, N), W is (out, in), b is (out, 1), A = f(W A + b)), the way
column-vector derivations are batched, written from the README's contract with the
conventions declared. Each has one bug, named in its docstring."""

import numpy as np

import mybackprop

SUPPORTS = {"activations": ["sigmoid", "tanh", "identity"], "losses": ["mse"],
            "reductions": ["mean", "batch_mean", "sum"], "layout": "columns", "bias": True}


def _f(name, z):
    if name == "sigmoid":
        return 0.5 * (1 + np.tanh(0.5 * z))
    return np.tanh(z) if name == "tanh" else z


def _df(name, z, a, bug):
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a if bug == "tanh_no_square" else 1 - a * a
    return np.ones_like(z)


def _net(problem, bug=None):
    X, Y = problem.X, problem.Y
    n = X.shape[1]
    divisor = {"mean": Y.size, "batch_mean": n, "sum": 1}[problem.reduction]
    As, Zs = [X], []
    for W, b, name in zip(problem.weights, problem.biases, problem.activations):
        Zs.append(W @ As[-1] + b)
        As.append(_f(name, Zs[-1]))
    loss = float(np.sum((As[-1] - Y) ** 2) / divisor)
    G = 2 * (As[-1] - Y) / divisor
    dW, db = [None] * len(Zs), [None] * len(Zs)
    for l in reversed(range(len(Zs))):
        D = G * _df(problem.activations[l], Zs[l], As[l + 1], bug)
        source = As[l + 1] if bug == "dw_from_output" else As[l]
        dW[l] = D @ source.T
        db[l] = D.sum(axis=1, keepdims=True) if bug != "db_first_sample" else D[:, :1].copy()
        G = problem.weights[l].T @ D
    return {"loss": loss, "dW": dW, "db": db, "dX": G}


@mybackprop.candidate(**SUPPORTS)
def tanh_no_square(problem):
    """tanh' written 1 - a where 1 - a**2 belongs."""
    return _net(problem, "tanh_no_square")


@mybackprop.candidate(**SUPPORTS)
def dw_from_output(problem):
    """dW_l = Delta_l A_l^T, the layer's own output, where its input A_{l-1} belongs."""
    return _net(problem, "dw_from_output")


@mybackprop.candidate(**SUPPORTS)
def db_first_sample(problem):
    """db_l taken from the first sample's column only, not summed over the batch."""
    return _net(problem, "db_first_sample")
