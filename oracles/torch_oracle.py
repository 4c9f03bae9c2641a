"""PyTorch autograd oracle: the network spelled with torch's own functions, in float64.

``gradients_many`` (the sweeps' path) answers many problems with one autograd graph: the cases
of a size class are zero-padded into one stack (K, N, width), each layer is one batched matrix
product over the cases still that deep, each activation runs on just the cases that use it, and
padded units, rows and output units are masked out of every sum. The answer differs from one
case at a time only by rounding (tests/test_oracles.py).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
from mybackprop.oracles._padding import bucket_shape, pad, unpad

from mybackprop.spec.problem import Gradients, Problem
from mybackprop.spec.table import LOSSES


class TorchOracle:
    name = "torch"

    def describe(self) -> dict[str, Any]:
        return {"version": torch.__version__, "dtype": "float64", "device": "cpu",
                "settings": "torch.nn.functional.linear + the table's torch spellings"}

    def gradients(self, problem: Problem) -> Gradients:
        return autograd(problem.float64())

    def gradients_many(self, problems: list[Problem]) -> list[Gradients]:
        """The same answers for many problems, a stack per size class."""
        groups: dict[tuple[int, int, int], list[int]] = defaultdict(list)
        for i, problem in enumerate(problems):
            groups[bucket_shape(problem)].append(i)
        answers: list[Gradients | None] = [None] * len(problems)
        for members in groups.values():
            for i, answer in zip(members, _stacked([problems[i] for i in members]), strict=True):
                answers[i] = answer
        return answers  # type: ignore[return-value]

    def intermediates(self, problem: Problem) -> dict[str, list[np.ndarray]]:
        """Z_l, A_l and delta_l = dL/dZ_l per layer, in float64 (the diagnosis compares them)."""
        p = problem.float64()
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


def autograd(p: Problem) -> Gradients:
    """Loss and gradients by PyTorch's autograd, in the dtype of the problem's arrays (the
    oracle's: float64; bench/formulations.py's: the case's, a framework's own float32)."""
    arch = p.architecture

    def leaf(a: np.ndarray | None) -> torch.Tensor | None:
        return None if a is None else torch.tensor(a, requires_grad=True)

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
    loss = loss + _penalty(torch, arch, weights, biases)
    inputs = [X, *weights, *(b for b in biases if b is not None)]
    grads = iter(torch.autograd.grad(loss, inputs))
    dX = next(grads).numpy()
    dW = [next(grads).numpy() for _ in weights]
    db = [None if b is None else next(grads).numpy() for b in biases]
    return Gradients(float(loss.detach()), dW, db, dX)


def _penalty(torch: Any, arch: Any, weights: list[Any], biases: list[Any]) -> Any:
    """The L2 penalty, spelled in torch (0 when there is none)."""
    if not arch.l2:
        return 0.0
    c = arch.penalty_coefficient()
    total = sum((W ** 2).sum() for W in weights)
    if arch.l2_biases:
        total = total + sum((b ** 2).sum() for b in biases if b is not None)
    return c * total


def _stacked(problems: list[Problem]) -> list[Gradients]:
    """One graph for all the problems: see the module's docstring."""
    # Deepest first: the cases still running at layer l are then a prefix of the stack.
    order = sorted(range(len(problems)), key=lambda i: -problems[i].architecture.depth)
    ps = [problems[i].float64() for i in order]
    archs = [p.architecture for p in ps]
    k, depth = len(ps), archs[0].depth
    width = max(max(a.widths) for a in archs)
    n = max(p.batch_size for p in ps)
    padded = [pad(p, depth, width, n) for p in ps]
    X, W, b, unit_mask, dense, labels, row_mask = (
        np.stack([getattr(q, name) for q in padded])
        for name in ("X", "W", "b", "units", "Y", "labels", "rows"))
    X_t, W_t, b_t = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
    masks = torch.tensor(unit_mask)
    running = [sum(a.depth > l for a in archs) for l in range(depth)]  # a prefix per layer

    a = X_t
    for l in range(depth):
        m = running[l]
        z = torch.baddbmm(b_t[:m, l].unsqueeze(1), a[:m], W_t[:m, l].transpose(1, 2))
        mask = masks[:m, l].unsqueeze(1)
        # the cases of each activation entry (leaky_relu with another slope is another entry)
        by_activation: dict[tuple[str, float | None], list[int]] = defaultdict(list)
        entries = {}
        for c in range(m):
            f = archs[c].activation_specs[l]
            by_activation[f.name, f.value].append(c)
            entries[f.name, f.value] = f
        pieces, placed = [], []
        for key, cases in by_activation.items():
            index, f = torch.tensor(cases), entries[key]
            zi, mi = z[index], mask[index]
            if f.elementwise:
                pieces.append(f.torch(torch, zi) * mi)
            else:  # softmax over the real units only
                pieces.append(f.torch(torch, zi.masked_fill(~mi, -torch.inf)))
            placed += cases
        new = torch.cat(pieces)[torch.tensor(np.argsort(placed))]
        a = torch.cat([new, a[m:]]) if m < k else new

    rows = torch.tensor(row_mask)
    out_mask = torch.stack([masks[c, arch.depth - 1] for c, arch in enumerate(archs)])
    divisors = torch.tensor([arch.reduction_spec.divisor(
        p.batch_size, arch.loss_spec.terms_per_sample(arch.widths[-1]))
        for p, arch in zip(ps, archs, strict=True)], dtype=torch.float64)
    by_loss: dict[str, list[int]] = defaultdict(list)
    for c, arch in enumerate(archs):
        by_loss[arch.loss].append(c)
    per_case = torch.zeros(k, dtype=torch.float64)
    for name, cases in by_loss.items():
        index, spec = torch.tensor(cases), LOSSES[name]
        y_hat, unit = a[index], out_mask[index].unsqueeze(1)
        if spec.per_sample:
            logits = y_hat.masked_fill(~unit, -torch.inf).reshape(-1, width)
            terms = spec.torch(torch, logits, torch.tensor(labels[cases]).reshape(-1), "none")
            terms = terms.reshape(len(cases), n) * rows[index]
            sums = terms.sum(dim=1)
        else:
            # padded units read 1/2, a probability any loss takes (log(0) would put NaN in)
            inside = torch.where(unit, y_hat, torch.full_like(y_hat, 0.5))
            terms = spec.torch(torch, inside, torch.tensor(dense[cases]), "none")
            sums = (terms * (rows[index].unsqueeze(2) & unit)).sum(dim=(1, 2))
        per_case = per_case.index_add(0, index, sums / divisors[index])
    if any(arch.l2 for arch in archs):  # padded weights are zeros: they add nothing
        c = torch.tensor([arch.penalty_coefficient() for arch in archs], dtype=torch.float64)
        with_b = torch.tensor([arch.l2_biases for arch in archs], dtype=torch.float64)
        per_case = per_case + c * ((W_t ** 2).sum(dim=(1, 2, 3))
                                   + with_b * (b_t ** 2).sum(dim=(1, 2)))
    gX, gW, gb = (g.numpy() for g in torch.autograd.grad(per_case.sum(), [X_t, W_t, b_t]))
    values = per_case.detach().numpy()

    answers: list[Gradients | None] = [None] * k
    for c, p in enumerate(ps):
        answers[order[c]] = unpad(p, float(values[c]), gX[c], gW[c], gb[c])
    return answers  # type: ignore[return-value]
