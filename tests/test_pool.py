"""The metric worker pool: one BLAS thread per worker, crash isolation, no orphans."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tokbench.run.pool import MetricPool, WorkerCrashed, workers_per_rank


def square_or_crash(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGSEGV)  # what PESQ does on very long input
    return x * x


def blas_threads() -> tuple[str | None, list[int]]:
    import numpy  # noqa: F401  (imported in the worker, after the limits)
    from threadpoolctl import threadpool_info

    return os.environ.get("OPENBLAS_NUM_THREADS"), [i["num_threads"] for i in threadpool_info()]


def test_a_crash_fails_only_the_call_that_crashes():
    pool = MetricPool(2)
    try:
        calls = [pool.submit(square_or_crash, x) for x in range(6)]
        results = []
        for call in calls:
            try:
                results.append(pool.result(call))
            except WorkerCrashed as exc:
                results.append(str(exc))
        assert results[:3] == [0, 1, 4] and results[4:] == [16, 25]
        assert "died on this input" in results[3]
        assert pool.crashes >= 2  # once with others in flight, once alone
        assert pool.result(pool.submit(square_or_crash, 7)) == 49  # the pool works after it
    finally:
        pool.close()


def test_workers_run_one_blas_thread():
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    pool = MetricPool(1)
    try:
        variable, threads = pool.result(pool.submit(blas_threads))
    finally:
        pool.close()
    assert variable == "1" and threads and set(threads) == {1}
    assert os.environ.get("OPENBLAS_NUM_THREADS") == before  # the parent's setting is restored


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    script = textwrap.dedent("""
        import os, sys, time
        from tokbench.run.pool import MetricPool
        pool = MetricPool(1)
        print(pool.result(pool.submit(os.getpid)), flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        parent.kill()
        parent.wait(10)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the pool worker outlived its killed parent")
    finally:
        if parent.poll() is None:
            parent.kill()


def test_pool_size_is_shared_among_local_ranks(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert workers_per_rank(None) == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert workers_per_rank(None) == 1
    assert workers_per_rank(3) == 3
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert workers_per_rank(None) == 16
