"""JAX oracle: jax.value_and_grad in float64 (x64 on), with the exact erf GELU.

A jitted function compiles anew for every shape (~1.4 s for this one, measured: every branch of
the switches is compiled), which would dominate a suite of random architectures. So every case
is padded into a shape bucket (depth, width and batch rounded up to powers of two), the
activation of each layer and the loss are chosen as data (lax.switch), and masks keep the
padding out of every sum: padded units have zero weights and are masked to zero, padded rows and
output units drop out of the loss, and padded layers pass their input through.
The answer differs from an unpadded computation only by rounding (tests/test_oracles.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402  (x64 must be on before arrays are made)
from jax import lax  # noqa: E402

from mybackprop._problem import Gradients, Problem  # noqa: E402
from mybackprop._spec import ACTIVATION_TABLE, LOSS_TABLE  # noqa: E402

_ACTIVATION_INDEX = {a.name: i for i, a in enumerate(ACTIVATION_TABLE)}
_LOSS_INDEX = {loss.name: i for i, loss in enumerate(LOSS_TABLE)}


# Compiling the padded function costs ~1.5 s (every branch of every switch is compiled), and a
# padded small case runs in ~1 ms: so the smallest bucket holds the whole default case space
# (depth <= 5, width <= 16, batch <= 64) and only larger networks compile again.
MIN_BUCKET = {"batch": 64, "width": 16, "depth": 8}


def bucket(n: int, minimum: int) -> int:
    """The next power of two >= max(n, minimum)."""
    return 1 << (max(n, minimum) - 1).bit_length()


def _activation_branch(spec: Any) -> Callable[[Any, Any], Any]:
    return lambda z, mask: jnp.where(mask, spec.jax(jax, z, mask), 0.0)


def _loss_branch(spec: Any) -> Callable[[Any, Any, Any, Any], Any]:
    def terms(y_hat: Any, y_dense: Any, labels: Any, out_mask: Any) -> Any:
        if spec.per_sample:  # one term per sample: keep it in column 0
            per_sample = spec.jax(jax, y_hat, labels, out_mask)
            return jnp.where(jnp.arange(y_hat.shape[1]) == 0, per_sample[:, None], 0.0)
        return jnp.where(out_mask, spec.jax(jax, y_hat, y_dense, out_mask), 0.0)
    return terms


_ACTIVATION_BRANCHES = [_activation_branch(a) for a in ACTIVATION_TABLE]
_LOSS_BRANCHES = [_loss_branch(loss) for loss in LOSS_TABLE]


def _padded_loss(X: Any, weights: Any, biases: Any, structure: dict[str, Any]) -> Any:
    def layer(a: Any, per_layer: tuple[Any, ...]) -> tuple[Any, None]:
        W, b, activation, active, mask = per_layer
        z = a @ W.T + b
        a_next = lax.switch(activation, _ACTIVATION_BRANCHES, z, mask)
        return jnp.where(active, a_next, a), None

    s = structure
    y_hat, _ = lax.scan(layer, X, (weights, biases, s["activation"], s["active"], s["masks"]))
    terms = lax.switch(s["loss"], _LOSS_BRANCHES, y_hat, s["Y"], s["labels"], s["out_mask"])
    return jnp.sum(jnp.where(s["rows"][:, None], terms, 0.0)) / s["divisor"]


_padded_value_and_grad = jax.jit(jax.value_and_grad(_padded_loss, argnums=(0, 1, 2)))


class JaxOracle:
    name = "jax"

    def __init__(self, pad: bool = True) -> None:
        # False: no buckets; depth and batch exact, every layer as wide as the widest, one
        # compile per (depth, widest layer, batch). The test of the buckets compares the two.
        self.pad = pad

    def describe(self) -> dict[str, Any]:
        return {"version": jax.__version__, "dtype": "float64", "x64": True,
                "device": str(jax.devices()[0]).lower(),
                "settings": "gelu approximate=False; softplus as logaddexp; "
                            + ("padded to shape buckets" if self.pad else "no shape buckets")}

    def gradients(self, problem: Problem) -> Gradients:
        p = problem.as_float64()
        arch = p.architecture
        widths, depth, n = arch.widths, arch.depth, p.batch_size
        if self.pad:
            n_pad = bucket(n, MIN_BUCKET["batch"])
            w_pad = bucket(max(widths), MIN_BUCKET["width"])
            l_pad = bucket(depth, MIN_BUCKET["depth"])
        else:
            n_pad, w_pad, l_pad = n, max(widths), depth

        X = np.zeros((n_pad, w_pad))
        X[:n, : widths[0]] = p.X
        weights = np.zeros((l_pad, w_pad, w_pad))
        biases = np.zeros((l_pad, w_pad))
        masks = np.zeros((l_pad, w_pad), dtype=bool)
        activation = np.zeros(l_pad, dtype=np.int32)
        for l, (W, b, layer) in enumerate(zip(p.weights, p.biases, arch.layers, strict=True)):
            weights[l, : W.shape[0], : W.shape[1]] = W
            if b is not None:
                biases[l, : b.shape[0]] = b
            masks[l, : layer.width] = True
            activation[l] = _ACTIVATION_INDEX[layer.activation]
        loss = arch.loss_spec
        Y = np.zeros((n_pad, w_pad))
        labels = np.zeros(n_pad, dtype=np.int64)
        if loss.per_sample:
            labels[:n] = p.Y
        else:
            Y[:n, : widths[-1]] = p.Y
        structure = {
            "activation": activation,
            "active": np.arange(l_pad) < depth,
            "masks": masks,
            "out_mask": masks[depth - 1],
            "rows": np.arange(n_pad) < n,
            "Y": Y,
            "labels": labels,
            "loss": np.int32(_LOSS_INDEX[loss.name]),
            "divisor": np.float64(
                arch.reduction_spec.divisor(n, loss.terms_per_sample(widths[-1]))),
        }
        value, (gX, gW, gb) = _padded_value_and_grad(X, weights, biases, structure)
        gX, gW, gb = np.asarray(gX), np.asarray(gW), np.asarray(gb)
        dW = [gW[l, :o, :i].copy()
              for l, (i, o) in enumerate(zip(widths[:-1], widths[1:], strict=True))]
        db = [None if b is None else gb[l, : widths[l + 1]].copy()
              for l, b in enumerate(p.biases)]
        return Gradients(float(value), dW, db, gX[:n, : widths[0]].copy())
