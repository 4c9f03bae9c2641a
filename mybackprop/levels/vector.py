"""Vector level: backpropagation one sample at a time, with vectors and outer products.

For one sample, with n_l units in layer l:

    a^(0) = x                                     (n_0,)
    z^(l) = W^(l) a^(l-1) + b^(l)                 (n_l,)  = (n_l, n_{l-1}) @ (n_{l-1},)
    a^(l) = f(z^(l))                              (n_l,)
    g^(L) = dC_n/da^(L)                           (n_L,)  from the loss
    delta^(l) = J_f(z^(l))^T g^(l)                (n_l,)  = g ⊙ f'(z) for elementwise f
    dC_n/dW^(l) = delta^(l) a^(l-1)^T             (n_l, n_{l-1})  an outer product
    dC_n/db^(l) = delta^(l)                       (n_l,)
    g^(l-1) = W^(l)^T delta^(l)                   (n_{l-1},)  i.e. delta^(l-1) = (W^T delta) ⊙ f'

The batch level comes last: sum the per-sample gradients, divide once by the reduction's
divisor. Shapes returned: dW[l] (n_l, n_{l-1}), db[l] (n_l,), dX (N, n_0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mybackprop.spec.problem import Problem, add_penalty
from mybackprop.spec.table import ACTIVATIONS, Activation


def vector(problem: Problem, *,
           table: Mapping[str, Activation] = ACTIVATIONS) -> dict[str, Any]:
    """Loss, dW, db and dX one sample at a time, in the problem's dtype."""
    arch = problem.architecture
    activations = problem.architecture.specs_from(table)
    loss = arch.loss_spec
    depth, n_samples = arch.depth, problem.batch_size
    divisor = arch.reduction_spec.divisor(n_samples, loss.terms_per_sample(arch.widths[-1]))

    dW_sum = [np.zeros_like(W) for W in problem.weights]
    db_sum = [np.zeros_like(W[:, 0]) for W in problem.weights]
    dX = np.zeros_like(problem.X)
    cost_sum = problem.dtype.type(0)
    for n in range(n_samples):
        a, z = [problem.X[n]], []
        for W, b, f in zip(problem.weights, problem.biases, activations, strict=True):
            z.append(W @ a[-1] + b if b is not None else W @ a[-1])
            a.append(f.forward(z[-1]))
        y = problem.Y[n : n + 1]
        cost_sum = cost_sum + loss.terms(a[-1][None, :], y).sum()
        g = loss.derivative(a[-1][None, :], y)[0]  # dC_n/da^(L)
        for l in reversed(range(depth)):
            f = activations[l]
            if f.elementwise:
                delta = g * f.derivative(z[l], a[l + 1])
            else:
                delta = f.derivative(z[l], a[l + 1]).T @ g  # J[i, j] = da_i/dz_j
            dW_sum[l] += np.outer(delta, a[l])
            db_sum[l] += delta
            g = problem.weights[l].T @ delta
        dX[n] = g

    return add_penalty(problem, {
        "loss": cost_sum / divisor,
        "dW": [dW / divisor for dW in dW_sum],
        "db": [db / divisor if b is not None else None
               for db, b in zip(db_sum, problem.biases, strict=True)],
        "dX": dX / divisor,
    })
