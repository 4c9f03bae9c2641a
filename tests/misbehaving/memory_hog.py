import numpy as np


def backprop(problem):
    hoard = np.ones(2**31)  # 16 GiB
    return {"loss": hoard.sum()}
