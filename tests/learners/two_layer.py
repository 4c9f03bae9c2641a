"""A learner's two-layer network: relu hidden layer, linear output, softmax cross-entropy."""
import numpy as np


class TwoLayerNet:
    def forward(self, X, W1, b1, W2, b2):
        self.X = X
        self.z1 = X @ W1.T + b1
        self.a1 = np.maximum(self.z1, 0)
        self.scores = self.a1 @ W2.T + b2
        return self.scores

    def loss(self, scores, y, reduction):
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = len(y)
        loss = -log_probs[np.arange(n), y].sum()
        dscores = np.exp(log_probs)
        dscores[np.arange(n), y] -= 1
        if reduction in ("mean", "batch_mean"):
            loss, dscores = loss / n, dscores / n
        return loss, dscores

    def backward(self, dscores, W2, planted_bug=False):
        dW2 = dscores.T @ self.a1
        db2 = dscores.sum(axis=0)
        da1 = dscores @ W2
        dz1 = da1 * (self.z1 > 0)
        dW1 = dz1.T @ self.X
        if planted_bug:
            dW1 = dW1 / len(self.X)
        db1 = dz1.sum(axis=0)
        return dW1, db1, dW2, db2, dz1 @ self._W1


def _run(problem, planted_bug):
    (W1, W2), (b1, b2) = problem.weights, problem.biases
    net = TwoLayerNet()
    net._W1 = W1
    scores = net.forward(problem.X, W1, b1, W2, b2)
    loss, dscores = net.loss(scores, problem.Y, problem.reduction)
    dW1, db1, dW2, db2, dX = net.backward(dscores, W2, planted_bug)
    return {"loss": loss, "dW": [dW1, dW2], "db": [db1, db2], "dX": dX}


def backprop(problem):
    return _run(problem, planted_bug=False)


def buggy(problem):
    return _run(problem, planted_bug=True)


DECLARED = {"depth": 2, "hidden_activations": ["relu"], "output_activations": ["identity"],
            "losses": ["softmax_cross_entropy"], "bias": True}
backprop.supports = DECLARED
buggy.supports = DECLARED
