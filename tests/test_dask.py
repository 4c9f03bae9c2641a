"""The Dask executor: a sweep on a local Dask cluster writes the cases.jsonl of one process."""

from __future__ import annotations

import logging
import os

import pytest
from test_cli import run

distributed = pytest.importorskip("distributed", reason="pip install 'mybackprop[dask]'")

COMMON = ["check", "--impl", "mybackprop:matrix", "--impl", "mybackprop.zoo:sign_flipped",
          "--cases", "24", "--seed", "4", "--chunk", "8", "--no-shrink", "--quiet"]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one") / "run"
    result = run(*COMMON, "--out", str(folder))
    assert result.returncode == 1, result.stderr  # sign_flipped fails: the records carry fails
    return (folder / "cases.jsonl").read_bytes()


def test_a_local_dask_cluster_writes_the_cases_jsonl_of_one_process(tmp_path, one_process):
    result = run(*COMMON, "--executor", "dask", "--workers", "2", "--out", str(tmp_path / "d"))
    assert result.returncode == 1, result.stderr
    assert (tmp_path / "d" / "cases.jsonl").read_bytes() == one_process
    assert one_process.count(b"\n") == 48 and b'"verdict": "fail"' in one_process


def test_a_running_scheduler_takes_the_chunks_too(tmp_path, one_process):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        result = run(*COMMON, "--executor", "dask", "--scheduler", cluster.scheduler_address,
                     "--out", str(tmp_path / "d"))
    assert result.returncode == 1, result.stderr
    assert (tmp_path / "d" / "cases.jsonl").read_bytes() == one_process


def test_a_scheduler_without_dask_executor_is_a_one_line_error(tmp_path):
    result = run("check", "--scheduler", "tcp://127.0.0.1:8786", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "add --executor dask" in result.stderr


def test_a_usage_error_after_the_cluster_started_is_one_line(tmp_path):
    # The local cluster starts with the command, before the candidates load; a bad --impl must
    # still end in one line, and the cluster must be gone.
    result = run("check", "--executor", "dask", "--workers", "2", "--impl",
                 "no_such_module:backprop", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no_such_module" in result.stderr


def _environ(name: str) -> str | None:
    return os.environ.get(name)


def _worker_log_level() -> int:
    return logging.getLogger("distributed.worker").getEffectiveLevel()


def test_local_cluster_workers_trim_no_memory_and_log_only_critical(monkeypatch):
    # Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which made the oracles 2-3x
    # slower there; our local cluster leaves it out (and keeps Dask's other settings). Its
    # workers log only what is critical (a usage error must stay one line). A nanny writes its
    # settings into the environment of the process that hosts it and leaves them there (the
    # LocalCluster of an earlier test here did): ours puts them back.
    from mybackprop.sweep.sweeps import DaskExecutor

    written = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "PYTHONHASHSEED",
               "DASK_LOGGING__DISTRIBUTED")
    for name in written:
        monkeypatch.delenv(name, raising=False)
    with DaskExecutor(1, None, ()) as executor:
        client = executor.client()
        assert list(client.run(_environ, "MALLOC_TRIM_THRESHOLD_").values()) == [None]
        assert list(client.run(_environ, "OMP_NUM_THREADS").values()) == ["1"]
        assert set(client.run(_worker_log_level).values()) == {logging.CRITICAL}
    assert [_environ(name) for name in written] == [None] * len(written)
