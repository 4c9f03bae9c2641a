"""A course's two-layer classifier, as assignments write it: X @ W with (in, out) weights, (1, n)
biases, a softmax output, cross-entropy on the probabilities with one-hot targets, and an L2
penalty reg * sum(W^2) on the weights. Nothing is converted by hand: the declaration says how.
"""

import numpy as np

from mybackprop import candidate

REG = 0.05


@candidate(weights="(in, out)", bias_shape="(1, n)", targets="one_hot", depth=2,
           hidden_activations={"relu"}, output_activations={"softmax"},
           losses={"categorical_cross_entropy"}, reductions={"mean"}, bias=True,
           l2=REG, l2_half=False, l2_biases=False)
def two_layer_net(problem):
    X, Y = problem.X, problem.Y
    W1, W2 = problem.weights
    b1, b2 = problem.biases
    N = X.shape[0]

    hidden = np.maximum(0, X @ W1 + b1)
    scores = hidden @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)
    loss = -np.sum(Y * np.log(probs)) / N + REG * (np.sum(W1 * W1) + np.sum(W2 * W2))

    dscores = (probs - Y) / N
    dW2 = hidden.T @ dscores + 2 * REG * W2
    db2 = np.sum(dscores, axis=0, keepdims=True)
    dhidden = dscores @ W2.T
    dhidden[hidden <= 0] = 0
    dW1 = X.T @ dhidden + 2 * REG * W1
    db1 = np.sum(dhidden, axis=0, keepdims=True)
    dX = dhidden @ W1.T
    return {"loss": loss, "dW": [dW1, dW2], "db": [db1, db2], "dX": dX}
