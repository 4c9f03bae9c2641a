"""Computes correct gradients, except in a pool worker (--workers 2), where it ends its process
(os._exit) on cases of $MYBACKPROP_ATTACK_BATCH samples, or once per run where
$MYBACKPROP_ATTACK_ONCE names a file it has not made yet (a death like the out-of-memory
killer's, which a second try survives)."""

import multiprocessing
import os

from mybackprop import matrix


def backprop(problem):
    if multiprocessing.parent_process() is not None:  # a pool worker, not the run's process
        once = os.environ.get("MYBACKPROP_ATTACK_ONCE")
        if once and not os.path.exists(once):
            open(once, "w").close()
            os._exit(0)
        if str(problem.batch_size) == os.environ.get("MYBACKPROP_ATTACK_BATCH"):
            os._exit(0)
    return matrix(problem)
