"""Element level: backpropagation one weight at a time, with loops and scalar arithmetic.

This is the chain rule as the 3Blue1Brown derivation writes it, for sample n, layer l, unit j
of layer l and unit k of layer l-1 (every quantity below is one number):

    z_j      = b_j + sum_k w_jk a_k                      pre-activation of unit j
    a_j      = f(z_j)                                    (softmax: a_j depends on every z_i)
    dC/dz_j  = f'(z_j) dC/da_j                           (softmax: sum_i dC/da_i da_i/dz_j)
    dC/dw_jk = a_k dC/dz_j                               = a_k f'(z_j) dC/da_j
    dC/db_j  = dC/dz_j                                   (1 in place of a_k)
    dC/da_k  = sum_j w_jk dC/dz_j                        a unit feeds every unit of the next
                                                         layer, so its sensitivity is a sum

C_n is sample n's cost (its loss terms summed). The batch is the last step: the cost is
C = sum_n C_n / divisor (mean, sum or batch_mean), so every gradient is summed over samples
and divided once at the end.

Shapes of what it returns: dW[l] (n_l, n_{l-1}), db[l] (n_l,), dX (N, n_0).
It is slow by design (a few microseconds per multiply-add), hence its declared size limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mybackprop.spec.problem import Problem, add_penalty
from mybackprop.spec.table import ACTIVATIONS, Activation


def _scalar(x: Any) -> Any:
    """NumPy's where() returns 0-d arrays; the element level deals in plain scalars."""
    return x[()] if isinstance(x, np.ndarray) else x


def element(problem: Problem, *,
            table: Mapping[str, Activation] = ACTIVATIONS) -> dict[str, Any]:
    """Loss, dW, db and dX by loops over samples, layers and units, in the problem's dtype."""
    arch = problem.architecture
    activations = problem.architecture.specs_from(table)
    loss = arch.loss_spec
    W, b, widths = problem.weights, problem.biases, arch.widths
    zero = problem.dtype.type(0)
    n_samples, depth = problem.batch_size, arch.depth

    # Sums over samples of dC_n/dw_jk, dC_n/db_j and (per sample) dC_n/dx_k.
    dW_sum = [[[zero] * widths[l] for _ in range(widths[l + 1])] for l in range(depth)]
    db_sum = [[zero] * widths[l + 1] for l in range(depth)]
    dX = [[zero] * widths[0] for _ in range(n_samples)]
    cost_sum = zero
    divisor = arch.reduction_spec.divisor(n_samples, loss.terms_per_sample(widths[-1]))

    for n in range(n_samples):
        # Forward: a[l][k] is unit k of layer l for this sample; a[0] is the input x.
        a = [[problem.X[n, k] for k in range(widths[0])]]
        z: list[list[Any]] = []
        for l, f in enumerate(activations):
            z_l = []
            for j in range(widths[l + 1]):
                z_j = b[l][j] if b[l] is not None else zero
                for k in range(widths[l]):
                    z_j = z_j + W[l][j, k] * a[l][k]
                z_l.append(z_j)
            z.append(z_l)
            a.append(_activate(f, z_l))

        # The loss of this sample and dC_n/da_j of the output layer (the table works on a row).
        y_hat, y = np.array([a[-1]]), problem.Y[n : n + 1]
        for term in loss.terms(y_hat, y).ravel():
            cost_sum = cost_sum + term
        dC_da = [_scalar(g) for g in loss.derivative(y_hat, y)[0]]

        # Backward, layer by layer from the output.
        for l in reversed(range(depth)):
            dC_dz = _through_activation(activations[l], z[l], a[l + 1], dC_da)
            for j in range(widths[l + 1]):
                for k in range(widths[l]):
                    dW_sum[l][j][k] = dW_sum[l][j][k] + a[l][k] * dC_dz[j]
                db_sum[l][j] = db_sum[l][j] + dC_dz[j]
            dC_da = []
            for k in range(widths[l]):
                dC_da_k = zero
                for j in range(widths[l + 1]):
                    dC_da_k = dC_da_k + W[l][j, k] * dC_dz[j]
                dC_da.append(dC_da_k)
        dX[n] = dC_da

    # The batch level: one division, after every sample has been summed.
    dtype = problem.dtype
    return add_penalty(problem, {  # + l2 * (each w_jk^2), whose derivative is 2 l2 w_jk
        "loss": cost_sum / divisor,
        "dW": [np.array([[g / divisor for g in row] for row in dW_sum[l]], dtype=dtype)
               for l in range(depth)],
        "db": [np.array([g / divisor for g in db_sum[l]], dtype=dtype)
               if b[l] is not None else None for l in range(depth)],
        "dX": np.array([[g / divisor for g in row] for row in dX], dtype=dtype),
    })


def _activate(f: Activation, z_l: list[Any]) -> list[Any]:
    if f.elementwise:
        return [_scalar(f.forward(z_j)) for z_j in z_l]
    return [_scalar(a_j) for a_j in f.forward(np.array(z_l))]  # softmax needs the whole layer


def _through_activation(f: Activation, z_l: list[Any], a_l: list[Any],
                        dC_da: list[Any]) -> list[Any]:
    """dC/dz_j from dC/da: f'(z_j) dC/da_j, or for softmax sum_i dC/da_i da_i/dz_j."""
    if f.elementwise:
        return [_scalar(f.derivative(z_j, a_j)) * dC_da_j
                for z_j, a_j, dC_da_j in zip(z_l, a_l, dC_da, strict=True)]
    jacobian = f.derivative(np.array(z_l), np.array(a_l))  # jacobian[i, j] = da_i/dz_j
    dC_dz = []
    for j in range(len(z_l)):
        dC_dz_j = dC_da[0] * jacobian[0, j]
        for i in range(1, len(z_l)):
            dC_dz_j = dC_dz_j + dC_da[i] * jacobian[i, j]
        dC_dz.append(dC_dz_j)
    return dC_dz
