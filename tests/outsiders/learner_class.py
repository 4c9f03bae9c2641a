"""Buggy backprops not in the zoo, in a third style: a learner's network class that keeps its
caches on self, weights (in, out) used as X @ W, half the squared error, and an L2 penalty
lam/2 * sum(W^2) on the weights, as a tutorial writes it. A thin function hands the problem to
the class under the declared conventions. Each candidate has one bug, named in its docstring."""

import numpy as np

import mybackprop

LAM = 0.01
SUPPORTS = {"activations": ["relu", "tanh", "sigmoid"], "losses": ["half_mse"],
            "reductions": ["batch_mean"], "depth": 2, "hidden_activations": ["relu", "tanh"],
            "output_activations": ["sigmoid"], "weights": "(in, out)", "bias": True,
            "bias_shape": "(1, n)", "l2": LAM, "l2_half": True, "l2_biases": False}


class TwoLayerNet:
    def __init__(self, W1, b1, W2, b2, hidden, bug=None):
        self.W1, self.b1, self.W2, self.b2 = W1, b1, W2, b2
        self.hidden, self.bug = hidden, bug

    def forward(self, X):
        self.X = X
        self.z1 = X @ self.W1 + self.b1
        self.a1 = np.maximum(self.z1, 0) if self.hidden == "relu" else np.tanh(self.z1)
        if self.bug == "cache_overwritten":
            self.X = self.a1  # the same attribute kept for the next layer's input
        self.z2 = self.a1 @ self.W2 + self.b2
        self.a2 = 1 / (1 + np.exp(-self.z2))
        return self.a2

    def loss(self, Y):
        n = Y.shape[0]
        data = 0.5 * np.sum((self.a2 - Y) ** 2) / n
        return data + 0.5 * LAM * (np.sum(self.W1 ** 2) + np.sum(self.W2 ** 2))

    def backward(self, Y):
        n = Y.shape[0]
        da2 = (self.a2 - Y) / n
        if self.bug == "sigmoid_derivative_of_z":
            dz2 = da2 * self.z2 * (1 - self.z2)  # the formula a(1 - a) applied to z
        else:
            dz2 = da2 * self.a2 * (1 - self.a2)
        penalty = 2 * LAM if self.bug == "penalty_doubled" else LAM
        dW2 = self.a1.T @ dz2 + penalty * self.W2
        db2 = dz2.sum(axis=0, keepdims=True)
        da1 = dz2 @ self.W2.T
        if self.hidden == "relu":
            mask = da1 > 0 if self.bug == "relu_mask_from_dout" else self.z1 > 0
            dz1 = da1 * mask
        else:
            dz1 = da1 * (1 - self.a1 ** 2)
        dW1 = self.X.T @ dz1 + penalty * self.W1
        db1 = dz1.sum(axis=0, keepdims=True)
        return dW1, db1, dW2, db2, dz1 @ self.W1.T


def _run(problem, bug):
    (W1, W2), (b1, b2) = problem.weights, problem.biases
    net = TwoLayerNet(W1, b1, W2, b2, problem.activations[0], bug)
    net.forward(problem.X)
    loss = net.loss(problem.Y)
    dW1, db1, dW2, db2, dX = net.backward(problem.Y)
    return {"loss": loss, "dW": [dW1, dW2], "db": [db1, db2], "dX": dX}


@mybackprop.candidate(**SUPPORTS)
def penalty_doubled(problem):
    """The penalty lam/2 sum W^2 differentiated as 2 lam W: twice its gradient."""
    return _run(problem, "penalty_doubled")


@mybackprop.candidate(**SUPPORTS)
def relu_mask_from_dout(problem):
    """relu's backward masks by the incoming gradient (da1 > 0) where the pre-activation
    (z1 > 0) belongs."""
    return _run(problem, "relu_mask_from_dout")


@mybackprop.candidate(**SUPPORTS)
def cache_overwritten(problem):
    """self.X is reused for the next layer's input, so dW1 is taken from the hidden layer's
    own output."""
    return _run(problem, "cache_overwritten")


@mybackprop.candidate(**SUPPORTS)
def sigmoid_derivative_of_z(problem):
    """sigmoid's derivative a(1 - a) written with z in place of a: z(1 - z)."""
    return _run(problem, "sigmoid_derivative_of_z")


@mybackprop.candidate(**SUPPORTS)
def right(problem):
    """The same class without a bug: it must pass."""
    return _run(problem, None)
