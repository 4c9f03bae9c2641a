"""One layer's forward and vector-Jacobian product, by PyTorch's autograd and by JAX, in float64.

A layer kit (harness/layers.py) is checked layer by layer: the dense layer out = x W^T + b with
the VJP of an upstream gradient dout (dx, dW, db), an activation a = f(z) with dz, and a loss
with d loss / d y_hat. Each is spelled with the table's own torch and JAX spellings, the ones
the network oracles use.

JAX compiles anew for every shape (0.2 s a call, op by op), and a layer check draws hundreds
of shapes: so its arrays are padded to one bucket (every axis to PAD, or the next power of two
past it) and one jitted function per layer kind answers them all. Padding is exact where it is
read: zero rows of dout add exact zeros to dW and db, zero columns of W to dx; a softmax and a
loss mask their padded units, and a loss's padded rows copy a real one (finite everywhere, so
no NaN leaks through the mask's gradient) and are left out of its sum.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from mybackprop.oracles import jax_oracle  # x64 on before any JAX array is made

from mybackprop.spec.table import ACTIVATIONS, LOSSES, REDUCTIONS

jax = jax_oracle.jax
jnp = jax_oracle.jnp
PAD = 16


def _bucket(n: int) -> int:
    return max(PAD, 1 << (n - 1).bit_length())


def _padded(a: np.ndarray, shape: tuple[int, ...], edge: bool = False) -> np.ndarray:
    widths = [(0, s - n) for n, s in zip(a.shape, shape, strict=True)]
    return np.pad(a, widths, mode="edge" if edge else "constant")


@functools.cache
def _dense_vjp() -> Any:
    def vjp(x: Any, W: Any, b: Any, dout: Any) -> Any:
        out, pullback = jax.vjp(lambda x, W, b: x @ W.T + b, x, W, b)
        return (out, *pullback(dout))
    return jax.jit(vjp)


@functools.cache
def _activation_vjp(name: str) -> Any:
    spec = ACTIVATIONS[name]

    def vjp(z: Any, dout: Any, mask: Any) -> Any:
        out, pullback = jax.vjp(lambda z: spec.jax(jax, z, mask), z)
        return (out, *pullback(dout))
    return jax.jit(vjp)


@functools.cache
def _loss_value_and_grad(name: str) -> Any:
    spec = LOSSES[name]

    def value(y_hat: Any, labels: Any, mask: Any, rows: Any, divisor: Any) -> Any:
        terms = spec.jax(jax, y_hat, labels, mask)
        kept = rows if spec.per_sample else rows[:, None] & mask[None, :]
        return jnp.sum(jnp.where(kept, terms, 0.0)) / divisor
    return jax.jit(jax.value_and_grad(value))


def dense(x: np.ndarray, W: np.ndarray, b: np.ndarray, dout: np.ndarray
          ) -> dict[str, dict[str, np.ndarray]]:
    """{'torch': {...}, 'jax': {...}}, each {'out', 'dx', 'dW', 'db'}."""
    tx, tW, tb = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, W, b))
    out = torch.nn.functional.linear(tx, tW, tb)
    dx, dW, db = torch.autograd.grad(out, (tx, tW, tb), torch.tensor(dout, dtype=torch.float64))
    by_torch = {"out": out.detach().numpy(), "dx": dx.numpy(), "dW": dW.numpy(),
                "db": db.numpy()}
    (N, n_in), n_out = x.shape, W.shape[0]
    P, I, O = _bucket(N), _bucket(n_in), _bucket(n_out)
    out, dx, dW, db = _dense_vjp()(_padded(x, (P, I)), _padded(W, (O, I)), _padded(b, (O,)),
                                   _padded(dout, (P, O)))
    by_jax = {"out": np.asarray(out)[:N, :n_out], "dx": np.asarray(dx)[:N, :n_in],
              "dW": np.asarray(dW)[:n_out, :n_in], "db": np.asarray(db)[:n_out]}
    return {"torch": by_torch, "jax": by_jax}


def activation(name: str, z: np.ndarray, dout: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """{'torch': {'out', 'dx'}, 'jax': {'out', 'dx'}} for the table's activation `name`."""
    spec = ACTIVATIONS[name]
    tz = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    out = spec.torch(torch, tz)
    (dx,) = torch.autograd.grad(out, (tz,), torch.tensor(dout, dtype=torch.float64))
    by_torch = {"out": out.detach().numpy(), "dx": dx.numpy()}
    (N, n), shape = z.shape, (_bucket(z.shape[0]), _bucket(z.shape[1]))
    out, dx = _activation_vjp(name)(_padded(z, shape), _padded(dout, shape),
                                    np.arange(shape[1]) < n)
    return {"torch": by_torch, "jax": {"out": np.asarray(out)[:N, :n],
                                       "dx": np.asarray(dx)[:N, :n]}}


def loss(name: str, reduction: str, y_hat: np.ndarray, y: np.ndarray
         ) -> dict[str, dict[str, Any]]:
    """{'torch': {'loss', 'dx'}, 'jax': {'loss', 'dx'}}: the reduced loss and d loss / d y_hat."""
    spec, reduce = LOSSES[name], REDUCTIONS[reduction]
    divisor = reduce.divisor(len(y_hat), spec.terms_per_sample(y_hat.shape[-1]))
    ty = torch.tensor(y_hat, dtype=torch.float64, requires_grad=True)
    target = torch.tensor(y) if spec.per_sample else torch.tensor(y, dtype=torch.float64)
    value = spec.torch(torch, ty, target, reduce.torch_native)
    if reduce.torch_divides_by_batch:
        value = value / len(y_hat)
    (dx,) = torch.autograd.grad(value, (ty,))
    by_torch = {"loss": float(value.detach()), "dx": dx.numpy()}
    (N, n), shape = y_hat.shape, (_bucket(y_hat.shape[0]), _bucket(y_hat.shape[1]))
    labels = _padded(y, shape[:1], edge=True) if spec.per_sample else _padded(y, shape, True)
    value, grad = _loss_value_and_grad(name)(
        _padded(y_hat, shape, edge=True), labels, np.arange(shape[1]) < n,
        np.arange(shape[0]) < N, float(divisor))
    return {"torch": by_torch, "jax": {"loss": float(value), "dx": np.asarray(grad)[:N, :n]}}
