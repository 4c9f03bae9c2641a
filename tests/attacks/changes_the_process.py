"""Answers correctly, leaving the harness's process changed: NumPy raising on every floating
point warning, the working directory moved, stdout and stderr closed."""

import os
import sys

import numpy as np

import mybackprop


def backprop(problem):
    answer = mybackprop.matrix(problem)
    np.seterr(all="raise")
    os.chdir("/")
    sys.stdout.close()
    sys.stderr = open(os.devnull, "w")
    sys.stderr.close()
    return answer
