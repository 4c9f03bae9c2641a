"""Padding a problem into a larger shape and taking its gradients back out: shared by the JAX
oracle (shape buckets, vmapped stacks) and the PyTorch oracle (one graph per size class).
NumPy only. Padded weights and biases are zero, so padded units add exact zeros to every
product; what an oracle must still mask (padded units in softmax and the loss, padded rows in
the loss) is the oracle's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mybackprop.spec.problem import Gradients, Problem


def bucket(n: int, minimum: int) -> int:
    """The next power of two >= max(n, minimum): sizes up to `minimum` share one bucket (a
    small case padded to it costs little), then one large case is not padded with small ones."""
    return 1 << (max(n, minimum) - 1).bit_length()


# Compiling JAX's padded function costs ~1.5 s (every branch of every switch is compiled), and a
# padded small case runs in ~1 ms: so the smallest bucket holds the whole default case space
# (depth <= 5, width <= 16, batch <= 64) and only larger networks compile again.
MIN_BUCKET = {"batch": 64, "width": 16, "depth": 8}


def bucket_shape(problem: Problem, min_depth: int = MIN_BUCKET["depth"]) -> tuple[int, int, int]:
    """The (depth, width, batch) bucket a problem is padded into."""
    arch = problem.architecture
    return (bucket(arch.depth, min_depth), bucket(max(arch.widths), MIN_BUCKET["width"]),
            bucket(problem.batch_size, MIN_BUCKET["batch"]))


@dataclass
class Padded:
    """A float64 problem's arrays padded to (depth, width, batch)."""

    X: np.ndarray  # (batch, width)
    W: np.ndarray  # (depth, width, width), W[l, :n_l, :n_(l-1)] the layer's weights
    b: np.ndarray  # (depth, width), zeros where a layer has no bias
    units: np.ndarray  # (depth, width) bool: the real units of each layer
    Y: np.ndarray  # (batch, width) dense targets; zeros for class targets
    labels: np.ndarray  # (batch,) class targets; zeros for dense ones
    rows: np.ndarray  # (batch,) bool: the real samples


def pad(p: Problem, depth: int, width: int, batch: int) -> Padded:
    arch, n = p.architecture, p.batch_size
    out = Padded(np.zeros((batch, width)), np.zeros((depth, width, width)),
                 np.zeros((depth, width)), np.zeros((depth, width), dtype=bool),
                 np.zeros((batch, width)), np.zeros(batch, dtype=np.int64),
                 np.arange(batch) < n)
    out.X[:n, : arch.input_width] = p.X
    for l, (W, b) in enumerate(zip(p.weights, p.biases, strict=True)):
        out.W[l, : W.shape[0], : W.shape[1]] = W
        if b is not None:
            out.b[l, : b.shape[0]] = b
        out.units[l, : W.shape[0]] = True
    if arch.loss_spec.per_sample:
        out.labels[:n] = p.Y
    else:
        out.Y[:n, : arch.widths[-1]] = p.Y
    return out


def unpad(problem: Problem, loss: float, gX: np.ndarray, gW: np.ndarray,
          gb: np.ndarray) -> Gradients:
    """The problem's own gradients out of padded ones (gW (depth, width, width), as `pad`)."""
    widths, n = problem.architecture.widths, problem.batch_size
    dW = [gW[l, :o, :i].copy()
          for l, (i, o) in enumerate(zip(widths[:-1], widths[1:], strict=True))]
    db = [None if b is None else gb[l, : widths[l + 1]].copy()
          for l, b in enumerate(problem.biases)]
    return Gradients(loss, dW, db, gX[:n, : widths[0]].copy())
