"""Returns at once, with a dW that is a generator: reading it never ends."""

import time

import mybackprop


def _forever(weights):
    while True:
        time.sleep(0.5)
    yield from weights


def backprop(problem):
    answer = mybackprop.matrix(problem)
    return {**answer, "dW": _forever(answer["dW"])}
