"""An adapter that checks HIPS autograd (https://github.com/HIPS/autograd) as a candidate.

autograd differentiates plain NumPy-style code; this adapter writes the network with
autograd.numpy and asks autograd.grad for every gradient. Nobody here wrote autograd: a run
tells whether its gradients of these networks agree with PyTorch and JAX.

    pip install autograd
    mybackprop check --impl examples/autograd_adapter.py:backprop

gelu is not declared: autograd's erf lives in autograd.scipy and needs SciPy.
"""

import autograd.numpy as anp
import numpy as np
from autograd import grad


def sigmoid(z):
    # exp(-softplus(-z)): accurate to the last bits even deep in the tails. (0.5 (tanh(z/2) + 1)
    # is exact in algebra but cancels to 0 for z < -40; mybackprop flags the lost gradients.)
    return anp.exp(-anp.logaddexp(0.0, -z))


ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: anp.maximum(z, 0.0),
    "leaky_relu": lambda z: anp.where(z > 0, z, 0.01 * z),
    "sigmoid": sigmoid,
    "tanh": anp.tanh,
    "softplus": lambda z: anp.logaddexp(z, 0.0),
    "elu": lambda z: anp.where(z > 0, z, anp.expm1(anp.minimum(z, 0.0))),
    "silu": lambda z: z * sigmoid(z),
    "softmax": lambda z: anp.exp(z - logsumexp(z)),
}


def logsumexp(z):
    m = anp.max(z, axis=1, keepdims=True)
    return m + anp.log(anp.sum(anp.exp(z - m), axis=1, keepdims=True))


def loss_terms(name, y_hat, y):
    if name == "mse":
        return (y_hat - y) ** 2
    if name == "softmax_cross_entropy":
        log_p = y_hat - logsumexp(y_hat)
        return -log_p[anp.arange(len(y)), y]
    if name == "binary_cross_entropy_with_logits":
        return anp.logaddexp(y_hat, 0.0) - y_hat * y
    d = anp.abs(y_hat - y)  # huber, delta 1
    return anp.where(d <= 1.0, 0.5 * d * d, d - 0.5)


def backprop(problem):
    n_samples, depth = problem.X.shape[0], len(problem.weights)
    per_sample = problem.loss == "softmax_cross_entropy"
    n_terms = 1 if per_sample else problem.weights[-1].shape[0]
    divisor = {"mean": n_samples * n_terms, "batch_mean": n_samples, "sum": 1}[problem.reduction]
    with_bias = [b is not None for b in problem.biases]

    def cost(params):
        weights, biases, a = params[:depth], params[depth:2 * depth], params[-1]
        for W, b, has_bias, name in zip(weights, biases, with_bias, problem.activations):
            z = anp.dot(a, W.T) + (b if has_bias else 0.0)
            a = ACTIVATIONS[name](z)
        return anp.sum(loss_terms(problem.loss, a, problem.Y)) / divisor

    zeros = [anp.zeros(W.shape[0], dtype=W.dtype) for W in problem.weights]
    params = [*problem.weights, *(b if b is not None else z
                                  for b, z in zip(problem.biases, zeros)), problem.X]
    # autograd's tanh vjp is g / cosh(x)**2: cosh overflows for |x| > 710 and the result is
    # the right 0, with a warning we silence.
    with np.errstate(over="ignore"):
        grads = grad(cost)(params)
    cast = problem.X.dtype.type
    return {
        "loss": cast(cost(params)),
        "dW": [g.astype(problem.X.dtype) for g in grads[:depth]],
        "db": [g.astype(problem.X.dtype) if has else None
               for g, has in zip(grads[depth:2 * depth], with_bias)],
        "dX": grads[-1].astype(problem.X.dtype),
    }


backprop.supports = {"activations": sorted(ACTIVATIONS),
                     "losses": ["mse", "softmax_cross_entropy",
                                "binary_cross_entropy_with_logits", "huber"]}
