"""PyTorch autograd oracle: the network spelled with torch's own functions, in float64."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mybackprop._problem import Gradients, Problem


class TorchOracle:
    name = "torch"

    def describe(self) -> dict[str, Any]:
        return {"version": torch.__version__, "dtype": "float64", "device": "cpu",
                "settings": "torch.nn.functional.linear + the table's torch spellings"}

    def gradients(self, problem: Problem) -> Gradients:
        p = problem.as_float64()
        arch = p.architecture

        def leaf(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)

        X = leaf(p.X)
        weights = [leaf(w) for w in p.weights]
        biases = [leaf(b) for b in p.biases]
        a = X
        for W, b, f in zip(weights, biases, arch.activation_specs, strict=True):
            a = f.torch(torch, torch.nn.functional.linear(a, W, b))
        loss_spec, reduction = arch.loss_spec, arch.reduction_spec
        Y = torch.tensor(p.Y)
        loss = loss_spec.torch(torch, a, Y, reduction.torch_native)
        if reduction.torch_divides_by_batch:
            loss = loss / p.batch_size
        inputs = [X, *weights, *(b for b in biases if b is not None)]
        grads = iter(torch.autograd.grad(loss, inputs))
        dX = next(grads).numpy()
        dW = [next(grads).numpy() for _ in weights]
        db = [None if b is None else next(grads).numpy() for b in biases]
        return Gradients(float(loss.detach()), dW, db, dX)

    def intermediates(self, problem: Problem) -> dict[str, list[np.ndarray]]:
        """Z_l, A_l and delta_l = dL/dZ_l per layer, in float64 (the diagnosis compares them)."""
        p = problem.as_float64()
        arch = p.architecture
        a = torch.tensor(p.X)
        zs, activations = [], []
        for W, b, f in zip(p.weights, p.biases, arch.activation_specs, strict=True):
            z = torch.nn.functional.linear(a, torch.tensor(W),
                                           None if b is None else torch.tensor(b))
            if not z.requires_grad:  # layer 1: nothing before it needs a gradient
                z.requires_grad_()
            zs.append(z)
            a = f.torch(torch, z)
            activations.append(a)
        loss = arch.loss_spec.torch(torch, a, torch.tensor(p.Y), arch.reduction_spec.torch_native)
        if arch.reduction_spec.torch_divides_by_batch:
            loss = loss / p.batch_size
        deltas = torch.autograd.grad(loss, zs)
        return {"Z": [z.detach().numpy() for z in zs],
                "A": [a.detach().numpy() for a in activations],
                "delta": [d.numpy() for d in deltas]}
