"""Matrix level: backpropagation for the whole batch at once, in NumPy only.

Shapes, with N samples and n_l units in layer l:

    A_{l-1} (N, n_{l-1})   W_l (n_l, n_{l-1})   b_l (n_l,)
    Z_l = A_{l-1} @ W_l.T + b_l             (N, n_l)
    A_l = f_l(Z_l)                          (N, n_l)
    G_l = dL/dA_l                           (N, n_l)
    Delta_l = dL/dZ_l = G_l * f_l'(Z_l)     (N, n_l)   (softmax: each row times its Jacobian)
    dL/dW_l = Delta_l.T @ A_{l-1}           (n_l, n_{l-1})  the sum over samples is the product
    dL/db_l = Delta_l summed over samples   (n_l,)
    G_{l-1} = Delta_l @ W_l                 (N, n_{l-1})

The reduction over the batch enters once, at the top: G_L = dterms/dYhat / divisor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mybackprop.spec.problem import Problem, add_penalty, penalty
from mybackprop.spec.table import ACTIVATIONS, Activation, Loss


@dataclass
class ForwardPass:
    """Every Z_l and A_l of a batch (a[0] is X), the cost, and its batch divisor."""

    z: list[np.ndarray]
    a: list[np.ndarray]
    cost: Any
    divisor: int


def forward(problem: Problem, activations: list[Activation] | None = None,
            loss: Loss | None = None) -> ForwardPass:
    """The forward pass and the cost (finite differences call it on perturbed copies)."""
    arch = problem.architecture
    activations = activations or list(arch.activation_specs)
    a_layers, z_layers = [problem.X], []
    for W, b, f in zip(problem.weights, problem.biases, activations, strict=True):
        z = a_layers[-1] @ W.T
        if b is not None:
            z += b  # in place: z is the product's fresh array (a new one costs page faults)
        z_layers.append(z)
        a_layers.append(f.forward(z))
    y_hat, loss = a_layers[-1], loss or arch.loss_spec
    divisor = arch.reduction_spec.divisor(problem.batch_size, loss.terms_per_sample(y_hat.shape[1]))
    cost = loss.terms(y_hat, problem.Y).sum() / divisor
    if arch.l2:
        cost = cost + penalty(problem)[0]
    return ForwardPass(z_layers, a_layers, cost, divisor)


def matrix(problem: Problem, *,
           table: Mapping[str, Activation] = ACTIVATIONS, loss: Loss | None = None
           ) -> dict[str, Any]:
    """Loss, dW, db and dX for the whole batch, computed in the problem's dtype.

    `table` maps activation names to entries, `loss` replaces the problem's loss entry: tests
    pass doctored ones to plant a bug, and the kink conventions one that takes a side.
    """
    arch = problem.architecture
    activations = problem.architecture.specs_from(table)
    loss = loss or arch.loss_spec
    fwd = forward(problem, activations, loss)
    z_layers, a_layers = fwd.z, fwd.a

    # Backward: G is dL/dA of the current layer; the batch reduction is applied here, once.
    G = loss.derivative(a_layers[-1], problem.Y) / fwd.divisor
    dW: list[np.ndarray] = [np.empty(0)] * arch.depth
    db: list[np.ndarray | None] = [None] * arch.depth
    for l in reversed(range(arch.depth)):
        f = activations[l]
        if f.elementwise:  # in place: G is always an array made here, never an input
            delta = np.multiply(G, f.derivative(z_layers[l], a_layers[l + 1]), out=G)
        else:
            delta = f.backward(z_layers[l], a_layers[l + 1], G)
        dW[l] = delta.T @ a_layers[l]
        if problem.biases[l] is not None:
            db[l] = delta.sum(axis=0)
        G = delta @ problem.weights[l]
    answer = add_penalty(problem, {"loss": fwd.cost, "dW": dW, "db": db, "dX": G})
    if arch.l2:  # the forward's cost already holds the penalty's value
        answer["loss"] = fwd.cost
    return answer
