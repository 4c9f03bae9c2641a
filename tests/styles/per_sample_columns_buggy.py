"""The per-sample textbook network with a planted slip: sigmoid' taken at the activation a, not z.

x is a column vector (n_0, 1), weights are (n_out, n_in), biases (n, 1); the cost of one sample
is 1/2 ||a_L - y||^2 and backprop returns that sample's gradients. The declaration says so; the
harness does the batch (and the mean over samples) itself.
"""

import numpy as np

from mybackprop import candidate


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


@candidate(per_sample=True, layout="columns", losses={"half_mse"}, activations={"sigmoid"},
           returns_dX=False, bias=True)
def backprop(problem):
    x, y = problem.x, problem.y
    activation, activations, zs = x, [x], []
    for w, b in zip(problem.weights, problem.biases):
        z = w @ activation + b
        zs.append(z)
        activation = sigmoid(z)
        activations.append(activation)
    cost = 0.5 * np.sum((activations[-1] - y) ** 2)
    nabla_w = [None] * len(zs)
    nabla_b = [None] * len(zs)
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
    nabla_b[-1] = delta
    nabla_w[-1] = delta @ activations[-2].T
    for l in range(2, len(zs) + 1):
        # BUG: sigmoid' at the activation a, not at z
        delta = (problem.weights[-l + 1].T @ delta) * sigmoid_prime(activations[-l])
        nabla_b[-l] = delta
        nabla_w[-l] = delta @ activations[-l - 1].T
    return {"loss": cost, "dW": nabla_w, "db": nabla_b}
