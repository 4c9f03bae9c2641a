"""The matrix level against PyTorch, JAX and the NumPy GEMM floor, side by side in one run.

    .venv/bin/python bench/speed.py                 # tiny, medium and large, float32 and float64
    .venv/bin/python bench/speed.py --sizes tiny,medium

Each row times one full forward + backward (loss, dW, db, dX) of the same network and batch,
best of several rounds after a warm-up (each round runs all four in turn, so a slow spell of the
shared machine hits them alike): mybackprop.matrix; PyTorch autograd (CPU, the same dtype);
JAX (jit, the same dtype; compile time excluded); and the GEMM floor: the matrix products alone,
one per layer forward (A W^T) and two per layer backward (Delta^T A, Delta W). Hidden layers use
tanh, the output is linear, the loss mse/mean. Sizes are the performance issue's: tiny 3-4-2 with
N=5, medium 784-512-512-10 with N=256, large 4096 x 4 layers with N=1024.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import mybackprop as mb
from mybackprop import Architecture, Layer, Problem

SIZES = {
    "tiny": ((3, 4, 2), 5),
    "medium": ((784, 512, 512, 10), 256),
    "large": ((4096, 4096, 4096, 4096, 4096), 1024),
}


def problem_for(widths: tuple[int, ...], n: int, dtype: str) -> Problem:
    rng = np.random.default_rng(0)
    layers = tuple(Layer(w, "tanh" if i < len(widths) - 2 else "identity")
                   for i, w in enumerate(widths[1:]))
    arch = Architecture(widths[0], layers, "mse", "mean")
    weights = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(dtype)
               for i, o in zip(widths[:-1], widths[1:], strict=True)]
    biases = [(0.1 * rng.standard_normal(o)).astype(dtype) for o in widths[1:]]
    X = rng.standard_normal((n, widths[0])).astype(dtype)
    Y = rng.standard_normal((n, widths[-1])).astype(dtype)
    return Problem(arch, weights, biases, X, Y)


def best(functions: dict[str, Any], repeats: int) -> dict[str, float]:
    """The best time of each function over `repeats` rounds, after a warm-up (and JAX's compile).
    Each round runs every function (twice, timing the second), so a slow spell of this shared
    machine falls on all of them alike instead of on whichever ran then."""
    for function in functions.values():
        function()
    times: dict[str, float] = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            function()  # untimed: the last one's spinning threads (BLAS, OpenMP) settle first
            started = time.perf_counter()
            function()
            times[name] = min(times[name], time.perf_counter() - started)
    return times


def gemm_floor(p: Problem) -> None:
    a = [p.X]
    for W in p.weights:
        a.append(a[-1] @ W.T)
    delta = a[-1]
    for l in reversed(range(len(p.weights))):
        _ = delta.T @ a[l]
        delta = delta @ p.weights[l]


def torch_step(p: Problem):
    import torch

    dtype = getattr(torch, p.dtype.name)
    X = torch.tensor(p.X, dtype=dtype, requires_grad=True)
    Y = torch.tensor(p.Y, dtype=dtype)
    Ws = [torch.tensor(w, requires_grad=True) for w in p.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in p.biases]

    def step() -> None:
        a = X
        for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = torch.nn.functional.linear(a, W, b)
            a = torch.tanh(z) if i < len(Ws) - 1 else z
        loss = torch.mean((a - Y) ** 2)
        torch.autograd.grad(loss, [X, *Ws, *bs])
    return step


def jax_step(p: Problem):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def loss(params, X, Y):
        a = X
        for i, (W, b) in enumerate(params):
            z = a @ W.T + b
            a = jnp.tanh(z) if i < len(params) - 1 else z
        return jnp.mean((a - Y) ** 2)

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in zip(p.weights, p.biases, strict=True)]
    X, Y = jnp.asarray(p.X), jnp.asarray(p.Y)
    return lambda: jax.block_until_ready(grad(params, X, Y))


LABELS = {"tiny": "tiny (3-4-2, N=5)", "medium": "medium (784-512-512-10, N=256)",
          "large": "large (4096 x 4 layers, N=1024)"}


def rows(sizes: list[str], repeats: int) -> Iterator[dict[str, Any]]:
    """One row per size and dtype: seconds of each implementation, best of `repeats`."""
    for size in sizes:
        widths, n = SIZES[size]
        # large: ~1 min a round; 2 rounds left its float32 ratio to this machine's 10% swings
        times = repeats if size != "large" else max(2, repeats - 1)
        for dtype in ("float32", "float64"):
            p = problem_for(widths, n, dtype)
            yield {"size": size, "dtype": dtype,
                   **best({"level": lambda p=p: mb.matrix(p), "torch": torch_step(p),
                           "jax": jax_step(p), "floor": lambda p=p: gemm_floor(p)}, times)}


def markdown(row: dict[str, Any]) -> str:
    label = LABELS[row["size"]] if row["dtype"] == "float32" else row["size"]
    ms = {k: f"{row[k] * 1e3:.3f} ms" if row[k] < 1 else f"{row[k] * 1e3:.0f} ms"
          for k in ("level", "torch", "jax", "floor")}
    return (f"| {label} | {row['dtype']} | {ms['level']} | {ms['torch']} | {ms['jax']} | "
            f"{ms['floor']} | {row['level'] / row['torch']:.2f} | "
            f"{row['level'] / row['floor']:.2f} |")


HEADER = ("| size | dtype | matrix level | PyTorch | JAX (jit) | GEMM floor | level / PyTorch | "
          "level / GEMM floor |\n|---|---|---:|---:|---:|---:|---:|---:|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,medium,large")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(HEADER)
    for row in rows(args.sizes.split(","), args.repeats):
        print(markdown(row), flush=True)


if __name__ == "__main__":
    main()
