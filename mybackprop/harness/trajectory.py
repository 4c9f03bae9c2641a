"""Training trajectory: K steps of SGD with a kit's own layers, against PyTorch's and optax's.

A bug that keeps state (gradients added into arrays nobody zeroes, a cache kept from an earlier
step) hides from one call: the first step is right. A training loop shows it. Here one small
network is built from the kit's layers and trained for K steps on K batches, the layer objects
living from step to step as a model's do; from the same start, on the same batches, PyTorch's
torch.optim.SGD and optax.sgd (with the same learning rate and momentum) train the reference.

At every step the kit's gradients at its own parameters are judged against the oracle's at
the same parameters with the network tolerance (judging/tolerance.py): the first step where
they leave it is named, with what it looks like ("step 2: the gradients are the sum of this
step's and every earlier step's: accumulated across steps, never zeroed"). The loss and the
distance of the kit's parameters from PyTorch's are recorded per step for the plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mybackprop.harness import formulation
from mybackprop.harness.layers import LayerKit, Stack
from mybackprop.judging.compare import compare
from mybackprop.judging.tolerance import Tolerance, scales_for
from mybackprop.spec.problem import Architecture, Gradients, Layer, Problem
from mybackprop.spec.table import DTYPES, LOSSES

STEPS, LEARNING_RATE, MOMENTUM, BATCH = 5, 0.1, 0.9, 8


@dataclass
class Trajectory:
    """Per step: the kit's loss and PyTorch's, the relative distance of the kit's parameters
    from PyTorch's and of optax's from PyTorch's; the first step whose gradients are wrong."""

    optimizer: str  # "SGD lr=0.1" or "SGD lr=0.1 momentum=0.9"
    network: str
    dtype: str
    losses: list[float] = field(default_factory=list)
    reference_losses: list[float] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    optax_distances: list[float] = field(default_factory=list)
    first_wrong: int | None = None  # 1-based step
    said: str = ""

    @property
    def verdict(self) -> str:
        return "fail" if self.first_wrong is not None else "pass"

    def lines(self) -> list[str]:
        head = (f"{self.verdict.upper():5} trajectory: {len(self.losses)} steps of "
                f"{self.optimizer}, {self.network}, {self.dtype}")
        lines = [head]
        for k, (mine, ref, d, o) in enumerate(zip(self.losses, self.reference_losses,
                                                   self.distances, self.optax_distances,
                                                   strict=True), start=1):
            lines.append(f"  step {k}: loss {mine:.6g} (PyTorch {ref:.6g}), parameters "
                         f"{d:.1e} from PyTorch's (optax {o:.1e})")
        if self.said:
            lines.append(f"  {self.said}")
        return lines


def network_for(kit: LayerKit) -> tuple[Architecture, str] | None:
    """A small network the kit can build: one hidden layer with its first activation, its
    first loss the kit can feed (a loss on probabilities needs its output activation)."""
    hidden = next(iter(kit.activations), "identity")
    for loss in kit.losses:
        output = LOSSES[loss].output or "identity"
        if output == "identity" or output in kit.activations:
            arch = Architecture(4, (Layer(6, hidden), Layer(3, output)), loss, kit.reduction)
            return arch, arch.describe()
    return None


def train(kit: LayerKit, steps: int = STEPS, lr: float = LEARNING_RATE,
          momentum: float = 0.0, dtype: str = "float32", seed: int = 0) -> Trajectory | None:
    """The kit's trajectory and the references', or None where it has no network to build."""
    from mybackprop.oracles import load_oracle

    found = network_for(kit)
    if found is None:
        return None
    arch, described = found
    own = kit.update is not None  # the user's update step trains it, plain SGD at its rate
    if own:
        lr, momentum = kit.learning_rate(lr), 0.0
    rng = np.random.default_rng(seed)
    kind = DTYPES[dtype]
    widths = arch.widths
    weights = [(rng.standard_normal((widths[l + 1], widths[l])) / np.sqrt(widths[l])).astype(
        kind) for l in range(arch.depth)]
    biases = [(0.1 * rng.standard_normal(widths[l + 1])).astype(kind)
              for l in range(arch.depth)]
    batches = [_batch(rng, arch, kind) for _ in range(steps)]
    optimizer = (f"{kit.update_name()} (lr={lr:g})" if own else
                 f"SGD lr={lr:g}" + (f" momentum={momentum:g}" if momentum else ""))
    result = Trajectory(optimizer, described, dtype)
    model = Stack(kit, arch, training=True)
    configs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    torch_oracle, jax_oracle = load_oracle("torch"), load_oracle("jax")
    torch_run = _TorchSGD(weights, biases, lr, momentum)
    optax_run = _OptaxSGD(weights, biases, lr, momentum)
    velocity = [np.zeros(w.size + b.size) for w, b in zip(weights, biases, strict=True)]
    mine_so_far: list[Gradients] = []
    refs_so_far: list[Gradients] = []
    for k, (X, Y) in enumerate(batches, start=1):
        problem = Problem(arch, weights, biases, X, Y)
        with np.errstate(all="ignore"):
            answer = model.gradients(problem.X, problem.Y, problem.weights, problem.biases)
        mine = Gradients.from_answer(answer)
        reference = torch_oracle.gradients(problem)
        result.losses.append(mine.loss)
        wide = (X.astype(np.float64), Y if Y.dtype.kind != "f" else Y.astype(np.float64))
        reference_problem = Problem(arch, torch_run.weights(), torch_run.biases(), *wide)
        result.reference_losses.append(torch_run.step(reference_problem, torch_oracle))
        optax_run.step(Problem(arch, optax_run.weights(), optax_run.biases(), *wide),
                       jax_oracle)
        refs_so_far.append(reference)
        if result.first_wrong is None and model.changed_parameters:
            result.first_wrong = k
            result.said = (f"step {k}: {model.changed_parameters} changed the layer's own "
                           "parameters: with the optimiser's step the model trains twice")
        loose = formulation.kit_looser(kit, dtype)
        if result.first_wrong is None and not _right(problem, mine, reference, loose):
            result.first_wrong = k
            result.said = f"step {k}: " + _what(problem, mine, reference, mine_so_far,
                                                refs_so_far, loose)
        mine_so_far.append(mine)
        if own:  # the user's step, held to theta - lr g of its own gradients
            stepped = _update(model, lr, configs)
            if result.first_wrong is None:
                said = _update_wrong(kit, weights, biases, mine, stepped, lr, kind)
                if said:
                    result.first_wrong, result.said = k, f"step {k}: {said}"
            weights = [w.astype(kind) for w in stepped[0]]
            biases = [b.astype(kind) for b in stepped[1]]
        # the harness's step, in the kit's dtype: v = momentum v + g; theta -= lr v
        for l in range(arch.depth) if not own else ():
            g = np.concatenate([mine.dW[l].ravel(), mine.db[l].ravel()]).astype(np.float64)
            velocity[l] = momentum * velocity[l] + g
            theta = np.concatenate([weights[l].ravel(), biases[l].ravel()]) - lr * velocity[l]
            weights[l] = theta[:weights[l].size].reshape(weights[l].shape).astype(kind)
            biases[l] = theta[weights[l].size:].astype(kind)
        result.distances.append(_distance([*weights, *biases],
                                          [*torch_run.weights(), *torch_run.biases()]))
        result.optax_distances.append(_distance([*optax_run.weights(), *optax_run.biases()],
                                                [*torch_run.weights(), *torch_run.biases()]))
    return result


def _batch(rng: np.random.Generator, arch: Architecture, kind: np.dtype
           ) -> tuple[np.ndarray, np.ndarray]:
    spec, n_out = arch.loss_spec, arch.widths[-1]
    X = rng.standard_normal((BATCH, arch.widths[0])).astype(kind)
    if spec.targets == "classes":
        return X, rng.integers(0, n_out, size=BATCH)
    if spec.targets == "probabilities":
        return X, rng.uniform(0, 1, size=(BATCH, n_out)).astype(kind)
    return X, rng.standard_normal((BATCH, n_out)).astype(kind)


def _right(problem: Problem, mine: Gradients, reference: Gradients,
           loose: frozenset[str] = frozenset()) -> bool:
    allowed = Tolerance().allowed(scales_for(problem, loose=loose)[0], problem.dtype_name)
    return all(c.passed for c in compare(mine, reference, allowed, problem.dtype_name)
               if c.name != "loss")


def _what(problem: Problem, mine: Gradients, reference: Gradients,
          earlier: list[Gradients], references: list[Gradients],
          loose: frozenset[str] = frozenset()) -> str:
    """What the wrong gradients of a step look like."""
    names = [n for n in mine.tensors() if n != "dX"]
    if earlier:
        summed = {n: sum(r.tensors()[n] for r in references) for n in names}
        if all(np.allclose(mine.tensors()[n], summed[n], rtol=1e-3, atol=1e-6) for n in names):
            return ("the gradients are the sum of this step's and every earlier step's: "
                    "accumulated across steps, never zeroed")
        previous = earlier[-1].tensors()
        if all(np.allclose(mine.tensors()[n], previous[n], rtol=1e-6, atol=0) for n in names):
            return "the gradients are the previous step's again: a cache kept from step 1"
    wrong = [c.name for c in compare(mine, reference, Tolerance().allowed(
        scales_for(problem, loose=loose)[0], problem.dtype_name), problem.dtype_name)
        if not c.passed and c.name != "loss"]
    return (f"{', '.join(wrong)} out of tolerance" + (" from the first step: run `mybackprop "
            "layers` for the layer at fault" if not earlier else
            ", though every earlier step was right: state kept between steps"))


def _update_wrong(kit: LayerKit, weights: list[np.ndarray], biases: list[np.ndarray],
                  grads: Gradients, stepped: tuple[list[np.ndarray], list[np.ndarray]],
                  lr: float, kind: np.dtype) -> str:
    """'' where the user's step moved every parameter by -lr x its gradient (within the
    rounding of one update in the kit's dtype), else what it did."""
    u = float(np.finfo(kind).eps) / 2
    before = [*weights, *biases]
    after = [*stepped[0], *stepped[1]]
    gradients = [*grads.dW, *grads.db]
    moved = [np.asarray(a, np.float64) - np.asarray(b, np.float64)
             for a, b in zip(after, before, strict=True)]

    def by(c: float) -> bool:
        return all(np.all(np.abs(m + c * g) <= 8 * u * (np.abs(b) + abs(c) * np.abs(g)) + 1e-30)
                   for m, g, b in zip(moved, gradients, before, strict=True))

    if by(lr):
        return ""
    name = kit.update_name()
    if by(-lr):
        return f"{name} adds the gradient (theta + lr g): it climbs the loss instead of descending"
    n = len(weights)
    if all(np.all(m == 0) for m in moved[n:]) and all(
            np.all(np.abs(m + lr * g) <= 8 * u * (np.abs(b) + lr * np.abs(g)) + 1e-30)
            for m, g, b in zip(moved[:n], gradients[:n], before[:n], strict=True)):
        return f"{name} updates the weights and leaves the biases where they are"
    flat_m = np.concatenate([m.ravel() for m in moved])
    flat_g = np.concatenate([np.asarray(g, np.float64).ravel() for g in gradients])
    c = -float(flat_m @ flat_g) / max(float(flat_g @ flat_g), 1e-300)
    if c and by(c):
        return (f"{name} moves the parameters by {c / lr:.4g} x (-lr x gradient) with lr = "
                f"{lr:g}: another learning rate than the one it holds")
    return f"{name} does not move the parameters by -lr x gradient (lr = {lr:g})"


def _distance(mine: list[np.ndarray], reference: list[np.ndarray]) -> float:
    a = np.concatenate([np.asarray(m, np.float64).ravel() for m in mine])
    b = np.concatenate([np.asarray(r, np.float64).ravel() for r in reference])
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _update(model: Stack, lr: float, configs: list[tuple[dict[str, Any], dict[str, Any]]]
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The user's update step on every dense layer, after its backward: the canonical
    (weights, biases) it leaves. `configs`: an update function's state per parameter, kept
    across steps."""
    kit, c = model.kit, model.kit.conventions
    weights, biases = [], []
    for l, (dense, _) in enumerate(model.layers):
        if kit.style == "objects":
            kit.update.update_params(dense.layer)
            w, bias = dense.parameters()
        else:
            if len(configs) <= l:
                configs.append(({"learning_rate": lr}, {"learning_rate": lr}))
            grads = model.last[l]
            w, config_w = kit.update(dense.w, c.weight(grads["dW"]), configs[l][0])
            bias, config_b = kit.update(dense.bias, c.bias_of(grads["db"]), configs[l][1])
            configs[l] = (config_w or configs[l][0], config_b or configs[l][1])
        weights.append(np.asarray(c.weight_back(np.asarray(w)), np.float64))
        biases.append(np.asarray(bias, np.float64).reshape(-1))
    return weights, biases


class _TorchSGD:
    """PyTorch's torch.optim.SGD on float64 copies of the start, stepped with autograd's
    gradients."""

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], lr: float,
                 momentum: float) -> None:
        import torch

        self.torch = torch
        self.params = [torch.tensor(np.asarray(a, np.float64)) for a in (*weights, *biases)]
        self.depth = len(weights)
        self.optimizer = torch.optim.SGD(self.params, lr=lr, momentum=momentum)

    def weights(self) -> list[np.ndarray]:
        return [p.numpy().copy() for p in self.params[:self.depth]]

    def biases(self) -> list[np.ndarray]:
        return [p.numpy().copy() for p in self.params[self.depth:]]

    def step(self, problem: Problem, oracle: Any) -> float:
        """One step at `problem` (these parameters, this batch); the loss before it."""
        grads = oracle.gradients(problem)
        for p, g in zip(self.params, [*grads.dW, *grads.db], strict=True):
            p.grad = self.torch.tensor(g)
        self.optimizer.step()
        return float(grads.loss)


class _OptaxSGD:
    """optax.sgd from the same start, stepped with JAX's gradients."""

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], lr: float,
                 momentum: float) -> None:
        import optax

        self.optax = optax
        self.params = [np.asarray(a, np.float64) for a in (*weights, *biases)]
        self.depth = len(weights)
        self.transform = optax.sgd(lr, momentum=momentum or None)
        self.state = self.transform.init(self.params)

    def weights(self) -> list[np.ndarray]:
        return [np.asarray(p) for p in self.params[:self.depth]]

    def biases(self) -> list[np.ndarray]:
        return [np.asarray(p) for p in self.params[self.depth:]]

    def step(self, problem: Problem, oracle: Any) -> None:
        grads = oracle.gradients(problem)
        updates, self.state = self.transform.update([*grads.dW, *grads.db], self.state,
                                                    self.params)
        self.params = [np.asarray(p) for p in self.optax.apply_updates(self.params, updates)]
