"""The worker pool of CPU metrics: processes with one thread each, that survive a crash.

- Workers start from a clean interpreter, never as a fork of the caller (which may hold CUDA,
  threads, models): spawned, or, on Linux when the pool is given ``preload`` modules, forked by
  a fork server (``multiprocessing`` "forkserver") that is itself a fresh interpreter which has
  imported those modules once. The modules' import cost (scipy, librosa with its numba kernels,
  torch, Resemblyzer: ~2 s of CPU) is then paid once per run instead of once per worker, and
  their pages are shared copy-on-write. :func:`start_fork_server` starts that process early, so
  that it imports while the caller does its own start-up.
- Thread limits are in place before a worker (or the fork server) imports anything: the
  BLAS/OpenMP variables are set in the environment the processes start with (numpy's OpenBLAS
  reads them at import), and the initialiser also limits torch and any BLAS already loaded
  (threadpoolctl). Without this, each worker's OpenBLAS keeps one thread per core and the
  workers contend for the cores. glibc's malloc keeps blocks under 64 MiB in the heap
  (``MALLOC_VARIABLES``): otherwise pitch tracking spends a fifth of its time in page faults.
- A worker exits when the process that made the pool dies (Linux: ``PR_SET_PDEATHSIG`` on its
  parent, plus a watcher thread when that parent is the fork server), so a killed run leaves no
  process behind.
- A worker imports only what its calls need: not the parent's ``__main__`` (the CLI), not
  torch until a metric needs it (Resemblyzer for SECS), unless preloaded.
- A worker that crashes (e.g. a C extension's segfault on one input) breaks the pool; the pool is
  rebuilt and every call that was in flight is retried alone, so only the call that crashes again
  fails (:class:`WorkerCrashed`), and the other utterances are scored.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
# glibc malloc: keep freed blocks under 64 MiB in the heap instead of returning each to the
# kernel. Harvest allocates and frees arrays of a few MB per call; with glibc's default (a
# threshold that only rises after a large free) each call mapped fresh pages, and a worker
# without such a free (no SECS selected) spent ~20% of its CPU in page faults (5.7 M minor faults
# for 16 pairs against 0.2 M with these values). Larger blocks are still mapped and unmapped, so
# long inputs keep their bounded memory. A value the user set is kept; other allocators ignore it.
MALLOC_VARIABLES = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}
# The fork server imports tokbench.run.preload, which imports the modules named here
# (comma-separated), each guarded: a module that fails to import is left to the workers.
PRELOAD_VARIABLE = "TOKBENCH_PRELOAD"


class WorkerCrashed(RuntimeError):
    """A call killed its worker process twice (once with others in flight, once alone)."""


def _alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie, dead but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:  # "pid (name) STATE ..."
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: kill(0) is all we have


def _exit_with_owner(owner: int) -> None:
    """Exit when ``owner`` (the process that made the pool) dies. A spawned worker's parent is the
    owner; a forked one's is the fork server, which outlives the owner while any worker holds
    its "alive" pipe: the worker closes its copy, so the server exits with the owner and the
    worker with the server (``PR_SET_PDEATHSIG``). Where either step is not possible, a thread
    watches the owner instead."""
    parent = os.getppid()
    chained = parent == owner
    if not chained:
        try:
            from multiprocessing import forkserver

            server = forkserver._forkserver  # type: ignore[attr-defined]
            fd = getattr(server, "_forkserver_alive_fd", None)  # private: absent, we watch
            if fd is not None:
                os.close(fd)
                setattr(server, "_forkserver_alive_fd", None)  # noqa: B010
                chained = True
        except (ImportError, AttributeError, OSError):
            pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            if libc.prctl(1, signal.SIGKILL) == 0:  # PR_SET_PDEATHSIG: when the parent dies
                if os.getppid() != parent or not _alive(owner):  # died before prctl took effect
                    os._exit(1)
                if chained:
                    return
        except OSError:
            pass
    if not _alive(owner):
        os._exit(1)

    def watch() -> None:
        while True:
            if not _alive(owner):
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True, name="tokbench-owner-watch").start()


def _init_worker(owner: int) -> None:
    _exit_with_owner(owner)
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    # torch is not imported here: a worker loads only what its metrics need (Resemblyzer for
    # SECS pulls torch in; PESQ/STOI/pitch/mel need none), and torch started later reads
    # OMP_NUM_THREADS=1 from the environment the worker was spawned with.
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def fork_server_available() -> bool:
    """Whether preloaded pools fork their workers from a fork server here (Linux only: on macOS
    forking a process that has loaded system frameworks is unsafe, Windows has no fork)."""
    return sys.platform.startswith("linux") and "forkserver" in mp.get_all_start_methods()


def start_fork_server(preload: Sequence[str]) -> bool:
    """Start the fork server of preloaded pools now, with ``preload`` (module names) imported in
    it, and return at once (it imports in the background; the first worker forked waits for it).
    Call it early (before the caller's own heavy imports) to overlap the two. A server already
    running keeps the modules it has. False where pools spawn their workers instead."""
    if not preload or not fork_server_available():
        return False
    from multiprocessing import forkserver

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tokbench.run.preload"])
    with _one_thread_environment({PRELOAD_VARIABLE: ",".join(preload)}), \
            _without_main_module(False):
        forkserver.ensure_running()
    global _STOP_REGISTERED
    if not _STOP_REGISTERED:
        atexit.register(_stop_fork_server)
        _STOP_REGISTERED = True
    return True


_STOP_REGISTERED = False


def _stop_fork_server() -> None:
    """At exit: stop the fork server and wait for it, so that it is gone with this process and
    its CPU time (and its workers') counts in this process's children, as a spawned worker's
    does. Its workers have let go of its "alive" pipe, so it stops as soon as this one closes."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # type: ignore[attr-defined]
    if stop is not None:
        try:
            stop()
        except (OSError, ChildProcessError):
            pass


@contextmanager
def _without_main_module(needed: bool) -> Iterator[None]:
    """Spawned workers re-import the parent's ``__main__`` (for ``tokbench``, the whole CLI:
    torch, pandas, Whisper, numba..., about 2 s of CPU and 200 MB per worker) unless there is
    none to import. Calls reach the workers by module name, so ``__main__`` is hidden while
    workers start, unless the call itself lives in ``__main__`` (``needed``)."""
    main = sys.modules.get("__main__")
    if needed or main is None:
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@contextmanager
def _one_thread_environment(more: dict[str, str] | None = None) -> Iterator[None]:
    """Spawned children read their environment at start: set the thread limits, the malloc
    settings the user has not set, and ``more`` around it."""
    malloc = {k: v for k, v in MALLOC_VARIABLES.items() if k not in os.environ}
    values = {**dict.fromkeys(THREAD_VARIABLES, "1"), **malloc, **(more or {})}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
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
    """``workers`` processes running picklable calls; see the module docstring. ``preload``:
    modules every worker will import, imported once in the fork server (where there is one) and
    shared by the workers."""

    def __init__(self, workers: int, preload: Sequence[str] = ()):
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {workers}")
        self.workers = workers
        self.generation = 0
        self.crashes = 0
        self.start_method = "forkserver" if start_fork_server(preload) else "spawn"
        self._executor: ProcessPoolExecutor | None = None
        self._start()

    def _start(self) -> None:
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=mp.get_context(self.start_method), initializer=_init_worker,
            initargs=(os.getpid(),))

    def _submit_raw(self, fn: Callable[..., Any], args: tuple) -> Future:
        assert self._executor is not None, "the pool is closed"
        in_main = getattr(fn, "__module__", None) == "__main__"
        # workers may be spawned on any submit
        with _one_thread_environment(), _without_main_module(in_main):
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
