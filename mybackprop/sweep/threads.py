"""One thread per process for BLAS, torch and XLA, where several processes share the cores.

Sweep workers (process pool, Dask) and pytest-xdist workers each run small cases; with the
libraries' default thread pools, W processes on W cores start W x cores threads that spin-wait
for each other (pytest -n 2 of the property suite: 48 s, against 10 s with one thread each).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterable, Iterator

# Read by OpenBLAS/MKL and XLA when they load: set them before numpy or jax is imported.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def hold_to_one_thread() -> None:
    """Ask for one thread in this process; settings already in the environment are kept.
    Call it before the oracles load: torch and XLA read these when they start. A torch that
    is already loaded is told directly (its pool can shrink at any time)."""
    for key, value in ONE_THREAD.items():
        os.environ.setdefault(key, value)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


@contextlib.contextmanager
def one_thread_children() -> Iterator[None]:
    """Processes started inside the block inherit ONE_THREAD; this one's environment is put
    back afterwards."""
    with environ_kept(ONE_THREAD):
        os.environ.update(ONE_THREAD)
        yield


@contextlib.contextmanager
def environ_kept(keys: Iterable[str]) -> Iterator[None]:
    """The environment variables `keys` as they were before the block, whatever it set."""
    saved = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def freeze_loaded() -> None:
    """Take every object alive now out of the cyclic garbage collector's sight (gc.freeze):
    call it once torch and JAX are loaded. Their hundreds of thousands of objects live as long
    as the process, yet every full collection walks them, and so does the interpreter's exit
    (torch alone: 0.46 s to exit, 0.10 s frozen; a pytest-xdist worker's exit holds up the
    session's end). Objects made later are collected as usual."""
    gc.freeze()
