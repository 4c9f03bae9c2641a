"""A book's layer objects: Dense, LeakyReLU(alpha=0.2) and ELU(alpha=0.5), each with forward and
backward and a cache, stacked by a Sequential, weights stored (in, out) as X @ W + b. The
constants are the book's, hard-coded; the declaration says which ones, nothing is converted.
"""

import numpy as np

from mybackprop import candidate


class Dense:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        out = x @ self.W
        return out if self.b is None else out + self.b

    def backward(self, grad):
        self.dW = self.x.T @ grad
        self.db = None if self.b is None else grad.sum(axis=0)
        return grad @ self.W.T


class LeakyReLU:
    def __init__(self, alpha=0.2):
        self.alpha = alpha

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, self.alpha * x)

    def backward(self, grad):
        grad = grad.copy()
        grad[self.x <= 0] *= self.alpha
        return grad


class ELU:
    def __init__(self, alpha=0.5):
        self.alpha = alpha

    def forward(self, x):
        self.x = x
        self.out = np.where(x > 0, x, self.alpha * (np.exp(np.minimum(x, 0)) - 1))
        return self.out

    def backward(self, grad):
        return grad * np.where(self.x > 0, 1.0, self.out + self.alpha)


class Identity:
    def forward(self, x):
        return x

    def backward(self, grad):
        return grad


ACTIVATION = {"leaky_relu": LeakyReLU, "elu": ELU, "identity": Identity}


class Sequential:
    def __init__(self, layers):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad


@candidate(weights="(in, out)", hidden_activations={"leaky_relu", "elu"},
           output_activations={"identity"}, losses={"mse"}, reductions={"mean"},
           leaky_slope=0.2, elu_alpha=0.5)
def train_step(problem):
    layers = []
    for W, b, name in zip(problem.weights, problem.biases, problem.activations):
        layers += [Dense(W, b), ACTIVATION[name]()]
    net = Sequential(layers)
    out = net.forward(problem.X)
    diff = out - problem.Y
    loss = np.mean(diff ** 2)
    dX = net.backward(2 * diff / diff.size)
    dense = layers[::2]
    return {"loss": loss, "dW": [d.dW for d in dense], "db": [d.db for d in dense], "dX": dX}
