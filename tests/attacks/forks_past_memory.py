"""Forks two children that each fill 1.25 GiB (under a 2 GiB --memory-limit per process, but
2.5 GiB together), and answers correctly only if both of them got their memory: a limit per
process would let it through, a limit on the whole tree kills a child, and it says so."""

import os
import signal

import numpy as np

import mybackprop


def backprop(problem):
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            filled = np.ones(int(1.25 * 2**30) // 8)
            os._exit(0 if filled[-1] == 1 else 1)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            raise RuntimeError(f"a forked child was killed by "
                              f"{signal.Signals(os.WTERMSIG(status)).name}")
        if os.WEXITSTATUS(status) != 0:
            raise RuntimeError("a forked child could not fill its memory")
    return mybackprop.matrix(problem)
