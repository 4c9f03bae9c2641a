"""A deep binary classifier in column layout, in the style of a popular course: X is (n_0, m),
W is (n_out, n_in), b is (n, 1), relu hidden layers, a sigmoid output and cross-entropy on the
probabilities, cost = -1/m sum(Y log A + (1 - Y) log(1 - A)).
"""

import numpy as np

from mybackprop import candidate


@candidate(layout="columns", hidden_activations={"relu"}, output_activations={"sigmoid"},
           losses={"binary_cross_entropy"}, reductions={"batch_mean"}, bias=True)
def model_backward(problem):
    X, Y = problem.X, problem.Y
    m = X.shape[1]
    caches, A = [], X
    L = len(problem.weights)
    for l, (W, b) in enumerate(zip(problem.weights, problem.biases), start=1):
        Z = W @ A + b
        caches.append((A, Z))
        A = 1 / (1 + np.exp(-Z)) if l == L else np.maximum(0, Z)
    AL = A
    cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m

    grads_W, grads_b = [None] * L, [None] * L
    dA = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    for l in reversed(range(L)):
        A_prev, Z = caches[l]
        if l == L - 1:
            s = 1 / (1 + np.exp(-Z))
            dZ = dA * s * (1 - s)
        else:
            dZ = dA * (Z > 0)
        grads_W[l] = dZ @ A_prev.T / m
        grads_b[l] = np.sum(dZ, axis=1, keepdims=True) / m
        dA = problem.weights[l].T @ dZ
    return {"loss": cost, "dW": grads_W, "db": grads_b, "dX": dA / m}
