"""Leaves a child process spinning behind (a fork that never ends), then answers wrongly."""

import os

import mybackprop


def backprop(problem):
    if os.fork() == 0:
        while True:
            pass
    answer = mybackprop.matrix(problem)
    return {**answer, "dW": [2 * w for w in answer["dW"]]}
