"""Layer functions written with samples as columns (x is (n, N), W is (out, in), b is (out,
1)), as books that derive backprop one column vector at a time write them, batched."""

import numpy as np

import mybackprop


def dense_forward(x, w, b):
    return w @ x + b, (x, w)


def dense_backward(dout, cache):
    x, w = cache
    return w.T @ dout, dout @ x.T, dout.sum(axis=1, keepdims=True)


def sigmoid_forward(z):
    a = 0.5 * (1 + np.tanh(0.5 * z))
    return a, a


def sigmoid_backward(dout, a):
    return dout * a * (1 - a)


def quadratic_cost(a, y):
    """Half the squared error, summed over outputs, averaged over the samples (columns)."""
    n = a.shape[1]
    return 0.5 * np.sum((a - y) ** 2) / n, (a - y) / n


net = mybackprop.layer_functions(
    dense=(dense_forward, dense_backward),
    activations={"sigmoid": (sigmoid_forward, sigmoid_backward)},
    loss={"half_mse": quadratic_cost}, reduction="batch_mean", layout="columns")
