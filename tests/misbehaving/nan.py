import numpy as np

import mybackprop as mb


def backprop(problem):
    answer = mb.matrix(problem)
    answer["dX"] = np.full_like(answer["dX"], np.nan)
    return answer
