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


def torch_free_metric_then_torch() -> tuple[bool, int]:
    import numpy as np

    from tokbench.metrics.signal import stoi_score

    rng = np.random.default_rng(0)
    x = rng.standard_normal(16_000).astype(np.float32)
    stoi_score(x, x + 0.1 * rng.standard_normal(16_000).astype(np.float32))
    loaded_before = "torch" in sys.modules
    import torch

    return loaded_before, torch.get_num_threads()


def test_workers_load_torch_only_when_a_metric_needs_it():
    # A worker starts without torch (PESQ/STOI/pitch/mel need none: ~200 MB and ~1 s of CPU
    # saved per worker); when a metric brings torch in, it still runs one thread.
    pool = MetricPool(1)
    try:
        loaded_before, threads = pool.result(pool.submit(torch_free_metric_then_torch))
    finally:
        pool.close()
    assert loaded_before is False
    assert threads == 1


def test_workers_do_not_import_the_parents_main_module(tmp_path):
    # `tokbench score` runs as __main__ = the CLI (torch, pandas, Whisper...): spawned workers
    # must not re-run it. A function defined in __main__ still works (main is then imported).
    marker = tmp_path / "main-ran"
    script = tmp_path / "main_script.py"
    script.write_text(textwrap.dedent(f"""
        import os
        with open({str(marker)!r}, "a") as fh:
            fh.write(str(os.getpid()) + "\\n")
        from tokbench.run.pool import MetricPool

        def in_main(x):
            return x + 1

        if __name__ == "__main__":
            pool = MetricPool(1)
            assert pool.result(pool.submit(os.getpid)) != os.getpid()
            pool.close()
            print("ran in main:", len(open({str(marker)!r}).read().split()))
            pool = MetricPool(1)
            print("main function:", pool.result(pool.submit(in_main, 1)))
            pool.close()
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "ran in main: 1" in out  # only the parent ran the script's top level
    assert "main function: 2" in out
