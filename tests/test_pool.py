"""The metric worker pool: one BLAS thread per worker, crash isolation, no orphans."""

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tokbench.run.pool import MetricPool, WorkerCrashed, fork_server_available, workers_per_rank


def square_or_crash(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGSEGV)  # what PESQ does on very long input
    return x * x


def blas_threads() -> tuple[str | None, list[int]]:
    import numpy  # noqa: F401  (imported in the worker, after the limits)
    from threadpoolctl import threadpool_info

    return os.environ.get("OPENBLAS_NUM_THREADS"), [i["num_threads"] for i in threadpool_info()]


@pytest.mark.parametrize("preload", [(), ("json",)], ids=["spawned", "forked"])
def test_a_crash_fails_only_the_call_that_crashes(preload):
    pool = MetricPool(2, preload=preload)
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


def malloc_settings() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}


@pytest.mark.parametrize("preload", [(), ("json",)], ids=["spawned", "forked"])
def test_workers_start_with_the_malloc_settings_unless_the_user_chose(monkeypatch, preload):
    from tokbench.run.pool import MALLOC_VARIABLES

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")  # the user's value wins
    pool = MetricPool(1, preload=preload)
    try:
        got = pool.result(pool.submit(malloc_settings))
    finally:
        pool.close()
    assert got["MALLOC_MMAP_THRESHOLD_"] == MALLOC_VARIABLES["MALLOC_MMAP_THRESHOLD_"]
    if not preload:  # (the fork server, shared by every pool of the process, keeps the
        # environment it started with: a user's value counts when it is set before the run)
        assert got["MALLOC_TRIM_THRESHOLD_"] == "12345"
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ  # the parent's environment is restored


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


PRELOADED_STATE = """
import json, os, sys
from tokbench.run.pool import MetricPool


def state():
    from threadpoolctl import threadpool_info

    with open(f"/proc/{os.getppid()}/environ", "rb") as fh:  # the parent's environment at start
        started_with = [v.decode() for v in fh.read().split(b"\\0") if v]
    return {"pid": os.getpid(), "parent": os.getppid(),
            "parent_started_with": [v for v in started_with if v.endswith("_NUM_THREADS=1")],
            "colorsys_loaded": "colorsys" in sys.modules,
            "blas_threads": [i["num_threads"] for i in threadpool_info()],
            "preload_variable": os.environ.get("TOKBENCH_PRELOAD")}


if __name__ == "__main__":
    preload = tuple(sys.argv[1].split(",")) if sys.argv[1] else ()
    pool = MetricPool(2, preload=preload)
    states = [pool.result(c) for c in [pool.submit(state) for _ in range(4)]]
    pool.close()
    print(json.dumps({"method": pool.start_method, "owner": os.getpid(), "states": states,
                      "owner_has_variable": "TOKBENCH_PRELOAD" in os.environ}))
"""


def _pool_states(tmp_path, preload: str) -> dict:
    # In a fresh interpreter: the fork server is one per process, and keeps the modules of the
    # first preloaded pool (another test's pool may have started it here).
    import json

    script = tmp_path / "pool_states.py"
    script.write_text(PRELOADED_STATE)
    out = subprocess.run([sys.executable, str(script), preload], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return json.loads(out)


needs_fork_server = pytest.mark.skipif(not fork_server_available(),
                                       reason="workers fork from a fork server on Linux only")


@needs_fork_server
def test_a_preloaded_pool_forks_its_workers_from_one_server_that_imported_the_modules(tmp_path):
    # The fork server imports the modules (numpy here, with its BLAS) once, with the thread
    # limits already in its environment, and every worker is a fork of it: nothing to import.
    # A module that fails to import is skipped there.
    run = _pool_states(tmp_path, "numpy,colorsys,no_such_module_xyz")
    states = run["states"]
    assert run["method"] == "forkserver"
    assert all(s["parent"] != run["owner"] for s in states)  # forked by the server
    assert len({s["parent"] for s in states}) == 1  # one server for every worker
    assert all(s["colorsys_loaded"] for s in states)  # preloaded, not imported by the call
    assert all(s["blas_threads"] and set(s["blas_threads"]) == {1} for s in states)
    # the server had the limits before its first import (numpy reads them when it loads)
    assert all({"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1"} <= set(s["parent_started_with"])
               for s in states)
    assert all(s["preload_variable"] is None for s in states)  # consumed by the server
    assert run["owner_has_variable"] is False  # and never left set in the owner


def test_a_pool_without_preload_spawns_its_workers(tmp_path):
    run = _pool_states(tmp_path, "")
    assert run["method"] == "spawn"
    assert all(s["parent"] == run["owner"] for s in run["states"])
    assert not any(s["colorsys_loaded"] for s in run["states"])  # the control of the test above


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@needs_fork_server
def test_preloaded_workers_and_their_server_exit_when_the_owner_is_killed():
    script = textwrap.dedent("""
        import os, time
        from tokbench.run.pool import MetricPool
        pool = MetricPool(2, preload=("json",))
        print(pool.result(pool.submit(os.getpid)), pool.result(pool.submit(os.getppid)), flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker, server = (int(x) for x in parent.stdout.readline().split())
        assert server != parent.pid
        parent.kill()
        parent.wait(10)
        for pid, what in ((worker, "worker"), (server, "fork server")):
            if not _gone(pid, 10):
                os.kill(pid, signal.SIGKILL)
                pytest.fail(f"the {what} outlived its killed owner")
    finally:
        if parent.poll() is None:
            parent.kill()


@needs_fork_server
def test_the_fork_server_is_stopped_and_reaped_when_its_owner_exits(tmp_path):
    # Stopped at exit and waited for, so no process outlives a run and the run's CPU time
    # (RUSAGE_CHILDREN of whoever waits for it) includes the server's and its workers'.
    script = textwrap.dedent("""
        import os, resource
        from tokbench.run.pool import MetricPool

        def burn():
            t = resource.getrusage(resource.RUSAGE_SELF)
            while sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - sum(t[:2]) < 0.5:
                pass
            return os.getppid()

        if __name__ == "__main__":
            pool = MetricPool(1, preload=("json",))
            print(pool.result(pool.submit(burn)), flush=True)
            pool.close()
    """)
    path = tmp_path / "owner.py"
    path.write_text(script)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = int(out.split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(server, 0)
    # the worker's 0.5 s of CPU reached us through the server and the owner
    assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) >= 0.5
