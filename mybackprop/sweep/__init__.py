"""Sweeps: many cases in one process, a pool of processes or on Dask, resumable after any
interruption (``sweeps``), the check a door starts (``check``), and one thread per process where
several share the cores (``threads``).

May import: spec, levels, judging, oracles, diagnosis, harness, reporting.
"""
