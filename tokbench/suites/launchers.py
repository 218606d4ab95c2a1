"""Running a suite's jobs: one job per tokenizer entry, through submitit (Slurm, or its local
executor: real processes, no scheduler). Each job is a ``tokbench suite run ... --only LABEL``
command (under ``torch.distributed.run`` when it has more than one process), so a job is a plain
tokbench run that may shard itself over its GPUs. Every job writes into the same results
folder, and a rerun of the suite skips finished runs and resumes partial ones.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokbench.suites.matrix import FAILED, Outcome, read_outcomes

LAUNCHERS = ("local", "submitit-local", "slurm")


@dataclass
class JobSettings:
    """What each job needs besides its tokenizer, and what the scheduler is asked for."""

    launcher: str = "submitit-local"
    folder: Path = Path("results/.jobs")  # submitit's logs and pickles
    partition: str | None = None
    gpus: int = 0  # per job (a job with more than one GPU runs one process per GPU)
    nproc: int | None = None  # processes per job (default: gpus, at least 1)
    cpus: int | None = None
    mem_gb: float | None = None
    timeout_min: int = 24 * 60
    account: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more submitit parameters
    wait: bool = True


def job_command(run_args: Sequence[str], label: str, outcomes: Path, nproc: int) -> list[str]:
    """The command one job runs: ``tokbench suite run ARGS --only LABEL`` (sharded if nproc > 1)."""
    cli = ["-m", "tokbench.cli", "suite", "run", *run_args, "--only", label, "--launcher", "local",
           "--outcomes", str(outcomes), "--no-progress"]
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={nproc}", *cli]
    return [sys.executable, *cli]


def _executor(settings: JobSettings) -> Any:
    try:
        import submitit
    except ImportError:
        raise RuntimeError("--launcher slurm/submitit-local needs submitit: pip install submitit") from None
    cluster = "slurm" if settings.launcher == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=str(settings.folder), cluster=cluster)
    params: dict[str, Any] = {"timeout_min": settings.timeout_min, "name": "tokbench"}
    if settings.gpus:
        params["gpus_per_node"] = settings.gpus
    nproc = settings.nproc or max(settings.gpus, 1)
    if settings.cpus:
        params["cpus_per_task"] = settings.cpus
    if settings.mem_gb:
        params["mem_gb"] = settings.mem_gb
    if cluster == "slurm":
        # One Slurm task per job: torch.distributed.run starts the per-GPU processes itself.
        params["tasks_per_node"] = 1
        if settings.partition:
            params["slurm_partition"] = settings.partition
        if settings.account:
            params["slurm_account"] = settings.account
    params.update(settings.extra)
    executor.update_parameters(**params)
    return executor, nproc


def submit(labels: Sequence[str], run_args: Sequence[str], settings: JobSettings) -> list[Any]:
    """Submit one job per label; returns the submitit jobs."""
    import submitit

    executor, nproc = _executor(settings)
    outcomes_dir = settings.folder / "outcomes"
    outcomes_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, label in enumerate(labels):
        cmd = job_command(run_args, label, outcomes_dir / f"{i:04d}.json", nproc)
        (outcomes_dir / f"{i:04d}.json").unlink(missing_ok=True)  # ours, from an earlier submit
        jobs.append(executor.submit(submitit.helpers.CommandFunction(cmd, verbose=False)))
    return jobs


def collect(jobs: Sequence[Any], labels: Sequence[str], settings: JobSettings,
            tasks: Sequence[str], dataset: str) -> list[Outcome]:
    """Wait for the jobs; their outcomes, or one failed outcome per task of a job that died."""
    outcomes: list[Outcome] = []
    outcomes_dir = settings.folder / "outcomes"
    for i, (job, label) in enumerate(zip(jobs, labels, strict=True)):
        why = ""
        try:
            job.result()
        except Exception as exc:  # noqa: BLE001 - the job's own error, reported per run
            lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
            why = f"job {job.job_id} failed ({lines[-1][:300] if lines else type(exc).__name__}); " \
                  f"log: {Path(str(job.paths.stderr))}"
        path = outcomes_dir / f"{i:04d}.json"
        if path.is_file():
            outcomes.extend(read_outcomes(path))
        else:
            why = why or f"job {job.job_id} wrote no outcomes; log: {job.paths.stderr}"
            outcomes.extend(Outcome(label, "", t, dataset, FAILED, why) for t in tasks)
    return outcomes
