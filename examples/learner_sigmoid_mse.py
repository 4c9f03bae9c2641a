"""A learner's first backprop: sigmoid layers, mean squared error, nothing else (and it says so).

Written against the README's contract only: a function of `problem` returning a dict, and a
`supports` dict naming what it handles. It imports nothing from mybackprop.

    mybackprop check --impl examples/learner_sigmoid_mse.py:backprop
    pytest --impl examples/learner_sigmoid_mse.py:backprop
"""

import numpy as np


def sigmoid(z):
    # exp only ever sees -|z|, so large pre-activations cannot overflow
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def backprop(problem):
    X, Y = problem.X, problem.Y
    n_samples, n_out = Y.shape
    # "mean" averages over every element, "batch_mean" over samples only, "sum" not at all.
    divisor = {"mean": n_samples * n_out, "batch_mean": n_samples, "sum": 1}[problem.reduction]

    # Forward: remember every layer's activation.
    activations = [X]
    for W, b in zip(problem.weights, problem.biases):
        z = activations[-1] @ W.T
        if b is not None:
            z = z + b
        activations.append(sigmoid(z))
    y_hat = activations[-1]
    loss = np.sum((y_hat - Y) ** 2) / divisor

    # Backward: dL/da for the output, then through each layer.
    dL_da = 2 * (y_hat - Y) / divisor
    dW, db = [], []
    for W, b, a_prev, a in zip(reversed(problem.weights), reversed(problem.biases),
                               reversed(activations[:-1]), reversed(activations[1:])):
        delta = dL_da * a * (1 - a)  # sigmoid'(z) = a (1 - a)
        dW.insert(0, delta.T @ a_prev)
        db.insert(0, delta.sum(axis=0) if b is not None else None)
        dL_da = delta @ W
    return {"loss": loss, "dW": dW, "db": db, "dX": dL_da}


backprop.supports = {"activations": ["sigmoid"], "losses": ["mse"]}
