"""The worker pool of CPU metrics: spawned processes, one thread each, that survive a crash.

- Thread limits are in place before a worker imports anything: the BLAS/OpenMP variables are set
  in the environment the workers are spawned with (numpy's OpenBLAS reads them at import), and
  the initialiser also limits torch and any BLAS already loaded (threadpoolctl). Without this,
  each worker's OpenBLAS keeps one thread per core and the workers contend for the cores.
- A worker exits when its parent dies (Linux: ``PR_SET_PDEATHSIG``; elsewhere a watcher thread),
  so a killed run leaves no process behind.
- A worker that crashes (e.g. a C extension's segfault on one input) breaks the pool; the pool is
  rebuilt and every call that was in flight is retried alone, so only the call that crashes again
  fails (:class:`WorkerCrashed`), and the other utterances are scored.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class WorkerCrashed(RuntimeError):
    """A call killed its worker process twice (once with others in flight, once alone)."""


def _exit_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            if libc.prctl(1, signal.SIGKILL) == 0:  # PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except OSError:
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True, name="tokbench-parent-watch").start()


def _init_worker(parent: int) -> None:
    _exit_with_parent(parent)
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    import torch

    torch.set_num_threads(1)


@contextmanager
def _one_thread_environment() -> Iterator[None]:
    """Spawned children read their environment at start: set the thread limits around it."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Deferred:
    """A call made later in this process, when its result is first asked for (like a future),
    so that an in-process run still writes each chunk's records before scoring the next one."""

    def __init__(self, fn: Callable[..., Any], args: tuple):
        self._fn, self._args, self._done, self._value = fn, args, False, None

    def result(self) -> Any:
        if not self._done:
            self._value, self._done = self._fn(*self._args), True
        return self._value


class Call:
    """A call submitted to a :class:`MetricPool`; :meth:`MetricPool.result` collects it."""

    def __init__(self, fn: Callable[..., Any], args: tuple, future: Future, generation: int):
        self.fn, self.args, self.future, self.generation = fn, args, future, generation


class MetricPool:
    """``workers`` spawned processes running picklable calls; see the module docstring."""

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {workers}")
        self.workers = workers
        self.generation = 0
        self.crashes = 0
        self._executor: ProcessPoolExecutor | None = None
        self._start()

    def _start(self) -> None:
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
            initargs=(os.getpid(),))

    def _submit_raw(self, fn: Callable[..., Any], args: tuple) -> Future:
        assert self._executor is not None, "the pool is closed"
        with _one_thread_environment():  # workers may be spawned on any submit
            return self._executor.submit(fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Call:
        return Call(fn, args, self._submit_raw(fn, args), self.generation)

    def _rebuild(self, generation: int) -> None:
        if generation != self.generation:  # another call already rebuilt the pool
            return
        self.crashes += 1
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.generation += 1
        self._start()

    def result(self, call: Call) -> Any:
        """The call's value; after a crash, the call is retried alone on a fresh pool."""
        try:
            return call.future.result()
        except BrokenProcessPool:
            self._rebuild(call.generation)
        generation = self.generation
        try:
            return self._submit_raw(call.fn, call.args).result()
        except BrokenProcessPool:
            self._rebuild(generation)
            raise WorkerCrashed("the metric worker process died on this input (a crash in a "
                                "native library, or out of memory); the other inputs were "
                                "scored") from None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def workers_per_rank(workers: int | None) -> int:
    """Default pool size: the cores of this node shared among its local ranks (torchrun sets
    LOCAL_WORLD_SIZE), at least one."""
    if workers is not None:
        return workers
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, (os.cpu_count() or 1) // max(1, local))
