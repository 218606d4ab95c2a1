"""Every documented command runs (issue 25): each command line of a shell block and each Python
block of README.md and docs/*.md is one test case, read from the files as they are now, so a
command added to the docs is picked up with no edit here.

- ``tokbench ...`` lines run in-process (the CLI's own entry point, through typer's runner) in a
  temporary folder, offline (``HF_HUB_OFFLINE=1``, set by conftest). Runs get ``--limit 2`` and
  ``--workers 0`` (in-process metrics: the same numbers, less start-up). Placeholders (``DIR``,
  ``FILE``, ``DATA``, ``[--opt X]``, ``a|b``) become real temporary paths or are left out.
- A command that needs what is not here (model weights, a dataset, the network) must end with its
  one-line error: exit code non-zero, the ``error:`` line the CLI prints, no traceback. Such
  commands are listed in :data:`OFFLINE_ERRORS` with the error they must give; a command that
  fails without an entry fails the test, and so does an entry whose command no longer fails.
- Lines that are not tokbench commands (``make``, ``pip``, shell set-up) are in :data:`NOT_RUN`
  with the reason; any other line fails the test until it runs or is listed.
- ``tokbench ...`` code spans in the prose run too (once each, after the blocks' commands): prose
  often names a sub-command or an option (`tokbench score --asr-backend`), so they need not
  succeed, only print something and never crash; elided ones (``...``) are skipped.
- Python blocks run with ``exec`` in the same folder (``results/demo`` holds a small run of the
  sample set); excerpts that are not meant to run alone are in :data:`EXCERPTS` and must still
  parse, where they are Python at all.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console", ""}


@dataclass(frozen=True)
class Snippet:
    where: str  # "docs/tasks.md:12"
    kind: str  # "shell" or "python"
    text: str  # one command line (shell) or the whole block (python)
    prose: bool = False  # a `tokbench ...` code span in the text, not a line of a code block

    @property
    def id(self) -> str:
        return f"{self.where} {self.text.splitlines()[0][:60]}"


def _strip_comment(line: str) -> str:
    """A shell line without its trailing ``# comment`` (a ``#`` inside quotes stays)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def snippets() -> list[Snippet]:
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        for m in re.finditer(r"^```([\w+-]*)[^\n]*\n(.*?)^```", text, re.S | re.M):
            lang, body = m.group(1).lower(), m.group(2)
            first = text[: m.start(2)].count("\n") + 1
            if lang == "python":
                out.append(Snippet(f"{rel}:{first}", "python", body))
            elif lang in SHELL:
                lines = body.splitlines()
                i = 0
                while i < len(lines):
                    start, line = i, lines[i]
                    while line.endswith("\\") and i + 1 < len(lines):  # continued lines
                        i += 1
                        line = line[:-1] + " " + lines[i].strip()
                    i += 1
                    line = _strip_comment(line)
                    if line and not line.startswith("#"):
                        out.append(Snippet(f"{rel}:{first + start}", "shell", line))
    # commands named in the prose (`tokbench list datasets`, `tokbench score --asr-backend`): run
    # too, once each. Prose often names a sub-command or an option rather than a whole command,
    # so these need not succeed, only never crash. Elided ones (`tokbench run ... --metrics
    # LIST`) are not commands.
    seen = {s.text for s in out}
    for path in DOCS:
        text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
        rel = path.relative_to(ROOT)
        full = path.read_text(encoding="utf-8")
        for m in re.finditer(r"`(tokbench [a-z][^`]*)`", text):
            command = m.group(1).strip()
            if "..." in command or command in seen:
                continue
            seen.add(command)
            line = full[: full.find(m.group(0))].count("\n") + 1
            out.append(Snippet(f"{rel}:{line}", "shell", command, prose=True))
    return out


# Lines that are not run here, and why: (regex searched in the line) -> reason.
NOT_RUN = {
    r"^make demo\b": "the Makefile target is run by CI (make demo); its runs are the ones "
                     "`tokbench run` makes, which this module runs",
    r"^make (test|quick)\b": "runs this very test suite",
    r"^make lint\b": "ruff and mypy are run by CI (make lint)",
    r"^\. \.venv/bin/activate": "shell set-up: puts tokbench on PATH (the tests call it in-process)",
    r"^pip install\b": "installs packages from the network",
    r"^apt-get install\b": "installs system packages from the network",
    r"^export \w+=": "shell set-up: sets an environment variable for later commands",
    r"^PYTHONHASHSEED=0 \.venv/bin/python -m pytest\b": "runs part of this test suite",
    r"^torchrun\b": "needs several processes under PyTorch's launcher (tests/test_robustness.py "
                    "runs sharded runs)",
    r"^tokbench suite run .*--launcher\b": "starts one job per tokenizer through submitit (SLURM "
                                          "or local processes): tests/test_suites.py runs the "
                                          "submitit-local launcher on a tiny suite",
}

# tokbench commands that cannot succeed offline: (regex on the command, regex the error line must
# match, why). The error is the CLI's one line, never a traceback.
OFFLINE_ERRORS = [
    (r"--tokenizer \S*\b(mimi|dac-\w+|wavlm-large-l6-km1000)\b",
     r"is not cached|no k-means centroids|unknown dataset",
     "needs model weights (or centroids) that are not here"),
    (r"--dataset (/data/|DATA\b|librispeech|libritts)",
     r"unknown dataset|not found|does not exist|cannot download|not cached|is not cached",
     "needs a dataset that is not bundled"),
    (r"^tokbench fit-kmeans .*--model (wavlm|hubert)",
     r"unknown dataset|is not cached and the Hub is unreachable",
     "needs HuBERT/WavLM weights and a dataset"),
    (r"^tokbench convert-gslm(?!.*--input)", r"cannot download",
     "downloads GSLM's published k-means"),
    (r"^tokbench prefetch", r"missing|not cached|unreachable|offline|cannot download",
     "downloads weights and datasets"),
    (r"^tokbench suite run dates-speech-recon",
     r"cannot download|is not cached and the Hub is unreachable",
     "the DATES suite needs LibriSpeech and codec weights"),
    (r"--data-dir /data/", r"is not a folder", "names a data folder that is not on this machine"),
]

# Python blocks that are excerpts (of a module or a signature), not programs: (file, first line
# of the block) -> why. They must still parse, unless marked "pseudo".
EXCERPTS = {
    ("docs/adapter-contract.md", "class Tokenizer(Protocol):"):
        "pseudo: the contract's signatures with shape annotations (Tensor[B, T]), not Python",
    ("docs/adding-a-task.md", "register(tasks, \"mytask\""):
        "one line of a package's table module (tasks/__init__.py); it would register a task "
        "whose module does not exist",
    ("docs/adding-a-task.md", "@dataclass(frozen=True)"):
        "the outline of a task class; its methods are elided (...)",
    ("docs/adding-a-tokenizer.md", "from tokbench.adapters.framed import FirstCodebooks"):
        "pseudo: an excerpt of adapters/mimi.py whose config arguments are elided (`...` after "
        "keywords is not Python); tests/test_conformance.py runs the real module",
    ("docs/adding-a-tokenizer.md", "class SnacTokenizer(FramedCodec):"):
        "an excerpt of adapters/snac.py (the class body is elided with ...)",
}

# Known failures, each to turn into a pass: (regex on the command) -> reason.
XFAIL: dict[str, str] = {}

# Commands that take long even on 2 utterances: marked slow (`make test-slow` runs them, not
# `make test`): (regex on the command) -> why.
SLOW = {
    r"--charts\b": "draws every chart of the table in PNG, SVG and PDF",
    r"^tokbench leaderboard\b": "builds the whole site with its charts",
    r"--task invariance\b(?!.*--dataset)": "17 perturbations re-encoded and scored",
    r"^tokbench run --tokenizer \S+,": "a matrix of runs",
    r"^tokbench suite run offline-smoke\b": "two tokenizers x two tasks",
}

ALL = snippets()


def _cases(kind: str) -> list:
    return [pytest.param(s, id=s.id, marks=[pytest.mark.slow] if kind == "shell" and any(
        re.search(p, s.text) for p in SLOW) else []) for s in ALL if s.kind == kind]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with ``results/demo`` (identity and mu-law, recon, 2 sample utterances, the
    signal metrics: enough for every table, chart and comparison the docs show) and the files
    placeholders stand for."""
    from tokbench.run.runner import run

    ws = tmp_path_factory.mktemp("docs")
    for name in ("identity", "mulaw"):
        run(name, "recon", "sample", limit=2, out=ws / "results" / "demo",
            overrides=["asr=false", "metrics=signal"], workers=0, cache_dir=ws / "cache",
            device="cpu", log=lambda m: None)
    (ws / "DIR").mkdir()
    (ws / "FILE").write_text("")
    return ws


def _placeholders(command: str) -> str:
    """Usage syntax made concrete: ``[--opt X]`` left out, ``a|b`` -> ``a``."""
    command = re.sub(r"\s*\[[^\]]*\]", "", command)
    return re.sub(r"(\S+?)\|\S+", r"\1", command)


def _runnable(args: list[str]) -> list[str]:
    """A `tokbench run` on at most 2 utterances, metrics in-process."""
    if args[:2] == ["suite", "run"] and "--limit" not in args:
        return [*args, "--limit", "2"]
    if args[:1] != ["run"]:
        return args
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--limit":
            skip = True
            continue
        out.append(a)
    return [*out, "--limit", "2", "--workers", "0"]


def _expected_error(command: str) -> tuple[str, str] | None:
    """The errors the command may end with (any entry it matches: the first thing missing
    stops it), and why; None when it must succeed."""
    hits = [(error, why) for pattern, error, why in OFFLINE_ERRORS if re.search(pattern, command)]
    if not hits:
        return None
    return "|".join(error for error, _ in hits), "; ".join(why for _, why in hits)


@pytest.mark.parametrize("snippet", _cases("shell"))
def test_documented_command_runs(snippet, workspace, monkeypatch, request):
    command = snippet.text
    for pattern, why in NOT_RUN.items():
        if re.search(pattern, command):
            pytest.skip(f"not run here: {why}")
    assert command.startswith("tokbench "), (
        f"{snippet.where}: `{command}` is neither a tokbench command nor listed in NOT_RUN "
        "with a reason")
    for pattern, why in XFAIL.items():
        if re.search(pattern, command):
            request.applymarker(pytest.mark.xfail(strict=True, reason=why))
    from tokbench.cli import app

    monkeypatch.chdir(workspace)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKBENCH_CACHE", str(workspace / "cache"))
    monkeypatch.setenv("COLUMNS", "160")
    args = _runnable(shlex.split(_placeholders(command))[1:])
    result = CliRunner().invoke(app, args)
    output = result.output + (result.stderr if result.stderr_bytes else "")
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed and "Traceback" not in output, (
        f"{snippet.where}: `{command}` crashed: {result.exception!r}\n{output[-3000:]}")
    if snippet.prose:  # a name in a sentence: any exit code, never a traceback (above)
        assert output.strip(), f"{snippet.where}: `{command}` printed nothing"
        return
    expected = _expected_error(command)
    if expected is None:
        assert result.exit_code == 0, f"{snippet.where}: `{command}` failed:\n{output[-3000:]}"
        return
    error, why = expected
    assert result.exit_code != 0, (
        f"{snippet.where}: `{command}` is listed in OFFLINE_ERRORS ({why}) but succeeded: "
        "remove the entry")
    assert re.search(error, " ".join(output.split())), (
        f"{snippet.where}: `{command}` ({why}) should fail with an error matching {error!r}:\n"
        f"{output[-3000:]}")
    # one run (or a family command) ends with the CLI's one `error:` line; a matrix, a suite or
    # prefetch say what is missing in their table and end with its count
    single = re.search(r"^tokbench (run|fit-kmeans|convert-gslm) ", command) \
        and not re.search(r"--(tokenizer|task) \S*,", command)
    if single:
        assert output.strip().splitlines()[-1].startswith("error:"), (
            f"{snippet.where}: `{command}` should end with one `error:` line:\n{output[-3000:]}")


@pytest.mark.parametrize("snippet", _cases("python"))
def test_documented_python_runs(snippet, workspace, monkeypatch):
    rel = snippet.where.rsplit(":", 1)[0]
    first = snippet.text.strip().splitlines()[0]
    excerpt = next((why for (doc, start), why in EXCERPTS.items()
                    if doc == rel and first.startswith(start)), None)
    if excerpt is not None:
        if not excerpt.startswith("pseudo"):
            ast.parse(snippet.text)  # an excerpt must still be valid Python
        pytest.skip(f"excerpt, not run alone: {excerpt}")
    monkeypatch.chdir(workspace)
    import matplotlib

    matplotlib.use("Agg")
    # A snippet that declares a metric declares it into a copy of the registry (not into the one
    # the other tests read), and runs as a real module (dataclasses look their module up).
    from tokbench.metrics import kit

    isolated = kit.MetricRegistry()
    kit.registry.names()
    isolated._items, isolated._declarations = dict(kit.registry._items), dict(kit.registry._declarations)
    isolated._loaded = True
    monkeypatch.setattr(kit, "registry", isolated)
    module = types.ModuleType("__docs__")
    monkeypatch.setitem(sys.modules, "__docs__", module)
    exec(compile(snippet.text, snippet.where, "exec"), module.__dict__)  # noqa: S102


def test_the_docs_have_commands_to_check():
    # the extraction itself: the README's quickstart is found, with its comments cut
    shell = [s.text for s in ALL if s.kind == "shell"]
    assert "tokbench list tokenizers" in shell
    assert "tokbench run --tokenizer mulaw --task recon --dataset sample --limit 8" in shell
    assert any(s.kind == "python" and "load_results" in s.text for s in ALL)
    assert len({s.id for s in ALL}) == len(ALL), "two cases share an id"
