"""A course-style network built from layer functions, checked with its declaration alone.

Each layer is a pair of functions: the forward returns (out, cache), the backward takes the
upstream gradient and the cache. Weights are (in, out), as in `x.dot(w) + b`; the losses
average over the batch; `sgd` is the update step a training loop calls. The last lines declare
which function is which; nothing is converted by hand:

    mybackprop layers --impl examples/layers_course.py:net     # every layer alone
    mybackprop check  --impl examples/layers_course.py:net     # networks built from them
"""

import numpy as np

import mybackprop


def affine_forward(x, w, b):
    out = x.dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T)
    dw = x.T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    x = cache
    dx = dout * (x > 0)
    return dx


def sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    cache = out
    return out, cache


def sigmoid_backward(dout, cache):
    out = cache
    return dout * out * (1 - out)


def softmax_loss(x, y):
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def sgd(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    return w, config


net = mybackprop.layer_functions(
    dense=(affine_forward, affine_backward),
    activations={"relu": (relu_forward, relu_backward),
                 "sigmoid": (sigmoid_forward, sigmoid_backward)},
    loss={"softmax_cross_entropy": softmax_loss},
    weights="(in, out)",
    update=sgd,
)
