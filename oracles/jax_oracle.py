"""JAX oracle: jax.value_and_grad in float64 (x64 on), with the exact erf GELU.

A jitted function compiles anew for every shape (~1.4 s for this one, measured: every branch of
the switches is compiled), which would dominate a suite of random architectures. So every case
is padded into a shape bucket (depth, width and batch rounded up to powers of two), the
activation of each layer and the loss are chosen as data (lax.switch), and masks keep the
padding out of every sum: padded units have zero weights and are masked to zero, padded rows and
output units drop out of the loss, and padded layers pass their input through.
The answer differs from an unpadded computation only by rounding (tests/test_oracles.py).

``gradients_many`` (the path of sweeps and of the pytest suite) also stacks up to STACK cases of
one bucket and runs them through one vmapped call: a stack compiles once per (bucket, stack
size), and ~64 small cases cost about what one did. Under vmap a switch on per-case data
computes every branch and selects, so each branch sees its input only where it is the chosen
one (zeros elsewhere): an unchosen branch (elu's exp at z = 1e3) can then put neither inf nor
NaN into the gradient.

Compiled functions are written to the cache folder and loaded from there by later processes
(_Compiled): a process then starts its first call in ~0.08 s instead of ~0.4 s.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)


def _cache_folder() -> str | None:
    """Where compiled functions persist between processes and runs: $MYBACKPROP_JAX_CACHE, or
    ~/.cache/mybackprop/jax ($XDG_CACHE_HOME honoured); "off" turns it off."""
    chosen = os.environ.get("MYBACKPROP_JAX_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "no") else chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mybackprop", "jax")


import jax.numpy as jnp  # noqa: E402  (x64 must be on before arrays are made)
from jax import lax  # noqa: E402
from mybackprop.oracles._padding import MIN_BUCKET, bucket_shape, pad, unpad  # noqa: E402

from mybackprop.spec import table as spec_table  # noqa: E402
from mybackprop.spec.problem import Gradients, Problem  # noqa: E402
from mybackprop.spec.table import ACTIVATION_TABLE, LOSS_TABLE  # noqa: E402

_ACTIVATION_INDEX = {a.name: i for i, a in enumerate(ACTIVATION_TABLE)}
_LOSS_INDEX = {loss.name: i for i, loss in enumerate(LOSS_TABLE)}


def _activation_branch(index: int, spec: Any) -> Callable[[Any, Any, Any, Any], Any]:
    def branch(z: Any, mask: Any, chosen: Any, value: Any) -> Any:
        z = jnp.where(chosen == index, z, 0.0)  # an unchosen branch under vmap sees zeros
        # a parameter (leaky_relu's slope) is data, like the choice: one compile for all values
        a = spec.jax(jax, z, mask) if spec.jax_with is None else spec.jax_with(jax, z, mask, value)
        return jnp.where(mask, a, 0.0)
    return branch


def _loss_branch(index: int, spec: Any) -> Callable[[Any, Any, Any, Any, Any, Any], Any]:
    def terms(y_hat: Any, y_dense: Any, labels: Any, out_mask: Any, rows: Any,
              chosen: Any) -> Any:
        y_hat = jnp.where(chosen == index, y_hat, 0.0)
        if spec.per_sample:  # one term per sample: keep it in column 0
            per_sample = spec.jax(jax, y_hat, labels, out_mask)
            return jnp.where(jnp.arange(y_hat.shape[1]) == 0, per_sample[:, None], 0.0)
        # Padded rows are masked like padded units: their outputs come from zero inputs and
        # the biases, and a probability there may round to 0 or 1, whose log is -inf; a
        # where() after it would still carry 0 * inf = NaN into the gradient.
        real = out_mask[None, :] & rows[:, None]
        return jnp.where(real, spec.jax(jax, y_hat, y_dense, real), 0.0)
    return terms


_ACTIVATION_BRANCHES = [_activation_branch(i, a) for i, a in enumerate(ACTIVATION_TABLE)]
_LOSS_BRANCHES = [_loss_branch(i, loss) for i, loss in enumerate(LOSS_TABLE)]
# Stacks: 64 cases per vmapped call, or 16 for a bucket's last <= 16 (a short stack is filled
# up with repeats: a call of 64 takes ~7.7 ms, of 16 ~2.8 ms, so a remainder of a few cases
# costs a small stack, not a large one; measured over 256-case chunks: 0.275 -> 0.243 ms a
# case). Under vmap every layer computes every activation, so depth costs more than in the
# one-case function: stacks bucket depth from 4 (0.13 ms a default case at depth 4, 0.35 ms at
# 8, measured). A bucket with fewer than MIN_STACKED cases in a call goes one case at a time
# (no compile for a few cases).
STACK, SMALL_STACK, MIN_STACKED, STACK_MIN_DEPTH = 64, 16, 8, 4


def _padded_loss(X: Any, weights: Any, biases: Any, structure: dict[str, Any]) -> Any:
    def layer(a: Any, per_layer: tuple[Any, ...]) -> tuple[Any, None]:
        W, b, activation, value, active, mask = per_layer
        z = a @ W.T + b
        a_next = lax.switch(activation, _ACTIVATION_BRANCHES, z, mask, activation, value)
        return jnp.where(active, a_next, a), None

    s = structure
    y_hat, _ = lax.scan(layer, X, (weights, biases, s["activation"], s["value"], s["active"],
                                   s["masks"]))
    terms = lax.switch(s["loss"], _LOSS_BRANCHES, y_hat, s["Y"], s["labels"], s["out_mask"],
                       s["rows"], s["loss"])
    data = jnp.sum(jnp.where(s["rows"][:, None], terms, 0.0)) / s["divisor"]
    # the L2 penalty: padded weights and biases are zeros, so they add nothing
    return data + s["l2_W"] * jnp.sum(weights ** 2) + s["l2_b"] * jnp.sum(biases ** 2)


_JITTED = {"one": jax.jit(jax.value_and_grad(_padded_loss, argnums=(0, 1, 2))),
           "stack": jax.jit(jax.vmap(jax.value_and_grad(_padded_loss, argnums=(0, 1, 2))))}


class _Compiled:
    """The compiled functions, one per (kind, argument shapes), kept on disk between processes.

    jax.jit traces, lowers and compiles (or finds in JAX's persistent cache) on the first call
    of each shape in every process: ~0.4 s even when cached, paid by every pytest-xdist worker
    and sweep worker, for each function it uses. A serialized executable loads in ~0.08 s. So
    each compiled function is written once to the cache folder (under a name that covers
    everything it depends on: this module's and the table's source, the JAX build, x64, XLA's
    flags, the CPU) and later processes load it. A file that does not load or run is compiled
    again and replaced. With the cache folder off, this is plain jax.jit.
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, Any], Callable[..., Any]] = {}

    def __call__(self, kind: str, args: tuple[Any, ...], keep: bool = True) -> Any:
        """_JITTED[kind](*args); `keep` False: jax.jit alone (for shapes that are not buckets,
        which would fill the folder with one file per shape)."""
        if not keep:
            return _JITTED[kind](*args)
        key = (kind, tuple(np.shape(a) for a in jax.tree_util.tree_leaves(args)))
        function = self._loaded.get(key)
        if function is None:
            function = self._loaded[key] = self._load(kind, args)
        return function(*args)

    def _load(self, kind: str, args: tuple[Any, ...]) -> Callable[..., Any]:
        folder = _cache_folder()
        if folder is None:
            return _JITTED[kind]
        from jax.experimental.serialize_executable import deserialize_and_load, serialize

        path = Path(folder) / f"{kind}-{_fingerprint(args)}.xla"
        try:
            compiled = deserialize_and_load(*pickle.loads(path.read_bytes()))
            jax.block_until_ready(compiled(*args))  # a file that cannot run fails here
            return compiled
        except Exception:  # missing, or unusable (cut short, another build): compile it
            pass
        compiled = _JITTED[kind].lower(*args).compile()
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as file:
                temporary = file.name
                file.write(pickle.dumps(serialize(compiled)))
            os.replace(temporary, path)  # whole or not at all, whoever else writes it
        except OSError:  # read-only or full: compiled in every process, as jax.jit would be
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)
        return compiled


def _fingerprint(args: tuple[Any, ...]) -> str:
    """What a compiled function depends on, hashed."""
    sources = [Path(__file__), Path(spec_table.__file__)]
    signature = [(np.shape(a), np.asarray(a).dtype.str) for a in jax.tree_util.tree_leaves(args)]
    cpu = ""
    try:
        cpu = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("flags")), "")
    except OSError:
        pass
    digest = hashlib.sha256()
    for part in (*(f.read_bytes() for f in sources), jax.__version__, jax.lib.__version__,
                 str(jax.config.read("jax_enable_x64")), os.environ.get("XLA_FLAGS", ""),
                 jax.devices()[0].client.platform_version, platform.machine(), cpu,
                 str(jax.tree_util.tree_structure(args)), str(signature)):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


_compiled = _Compiled()


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
        packed = _pack(problem.float64(), self._shape(problem))
        value, grads = _compiled("one", packed, keep=self.pad)
        return unpad(problem, float(value), *(np.asarray(g) for g in grads))

    def gradients_many(self, problems: list[Problem]) -> list[Gradients]:
        """The same answers for many problems: those of one bucket go through vmapped stacks."""
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, problem in enumerate(problems):
            groups.setdefault(self._shape(problem, STACK_MIN_DEPTH), []).append(i)
        answers: list[Gradients | None] = [None] * len(problems)
        for shape, members in groups.items():
            if len(members) < MIN_STACKED:
                for i in members:
                    answers[i] = self.gradients(problems[i])
                continue
            for start in range(0, len(members), STACK):
                chunk = members[start: start + STACK]
                size = SMALL_STACK if len(chunk) <= SMALL_STACK else STACK
                packs = [_pack(problems[i].float64(), shape) for i in chunk]
                packs += [packs[0]] * (size - len(chunk))  # filler: a repeat, discarded
                stacked = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *packs)
                values, grads = _compiled("stack", stacked, keep=self.pad)
                values, (gX, gW, gb) = np.asarray(values), (np.asarray(g) for g in grads)
                for k, i in enumerate(chunk):
                    answers[i] = unpad(problems[i], float(values[k]), gX[k], gW[k], gb[k])
        return answers  # type: ignore[return-value]

    def _shape(self, problem: Problem, min_depth: int = MIN_BUCKET["depth"]
               ) -> tuple[int, int, int]:
        """(depth, width, batch) padded to: the bucket, or the problem's own (pad=False)."""
        if self.pad:
            return bucket_shape(problem, min_depth)
        arch = problem.architecture
        return arch.depth, max(arch.widths), problem.batch_size


def _pack(p: Problem, shape: tuple[int, int, int]) -> tuple[Any, ...]:
    """The padded arrays of a float64 problem: X, weights, biases and the structure."""
    l_pad, w_pad, n_pad = shape
    arch = p.architecture
    padded = pad(p, l_pad, w_pad, n_pad)
    activation = np.zeros(l_pad, dtype=np.int32)
    activation[: arch.depth] = [_ACTIVATION_INDEX[name] for name in p.activations]
    value = np.zeros(l_pad, dtype=np.float64)  # each layer's activation parameter, or 0
    value[: arch.depth] = [0.0 if f.value is None else f.value for f in arch.activation_specs]
    loss = arch.loss_spec
    structure = {
        "activation": activation,
        "value": value,
        "active": np.arange(l_pad) < arch.depth,
        "masks": padded.units,
        "out_mask": padded.units[arch.depth - 1],
        "rows": padded.rows,
        "Y": padded.Y,
        "labels": padded.labels,
        "loss": np.int32(_LOSS_INDEX[loss.name]),
        "l2_W": np.float64(arch.penalty_coefficient()),
        "l2_b": np.float64(arch.penalty_coefficient() if arch.l2_biases else 0.0),
        "divisor": np.float64(
            arch.reduction_spec.divisor(p.batch_size, loss.terms_per_sample(arch.widths[-1]))),
    }
    return padded.X, padded.W, padded.b, structure
