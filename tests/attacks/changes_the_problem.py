"""Answers correctly, then writes to what it was handed, frozen or not: the architecture (its
loss, its layers, through object.__setattr__) and the case's config in problem.meta. In-process,
a shared problem would hand the next candidate another network and record another case."""

import mybackprop
from mybackprop.spec.problem import Layer


def backprop(problem):
    answer = mybackprop.matrix(problem)
    arch = problem.architecture
    object.__setattr__(arch, "layers", tuple(Layer(1, "relu") for _ in arch.layers))
    object.__setattr__(arch, "l2", 0.5)
    config = problem.meta.get("config")
    if config:
        config["batch_size"] = 1
        config["architecture"]["loss"] = "l1"
    return answer
