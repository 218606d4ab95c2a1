"""The layout rules: the engine names no tokenizer family and no task; adapters and tasks do
not reach into each other; sub-commands come from the command registry."""

import ast
from pathlib import Path

import typer
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _offenders(folder: str, forbidden: tuple[str, ...], allowed: set[str] = frozenset()) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden) and name not in allowed:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_the_engine_imports_no_adapter_family_and_no_task():
    # tokbench/testing.py builds tiny models for tests and may name what it builds
    bad = [b for b in _offenders("tokbench", ("tokbench.adapters", "tokbench.tasks"))
           if not b.startswith("tokbench/testing")]
    assert bad == []


def _engine_files() -> list[Path]:
    # tokbench/testing.py builds tiny models for tests and may name what it builds
    return [p for p in sorted((ROOT / "tokbench").rglob("*.py")) if p.name != "testing.py"
            or p.parent != ROOT / "tokbench"]


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module (docstrings and f-string parts included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_the_engine_names_no_task():
    """No string in the engine equals a registered task's name (a task key such as "bpe" in a
    table of charts or a default), and none imports a module of the task package by name:
    tasks bring their own parts (report hooks, metrics) through the registry."""
    from tokbench.registry import tasks

    names = set(tasks.names())
    assert {"recon", "vc", "bpe", "probe", "invariance", "lm"} <= names
    assert [b for path in _engine_files() for b in _task_keys(path, names)] == []


def _task_keys(path: Path, names: set[str]) -> list[str]:
    return [f"{path.relative_to(path.parents[1])}:{line} names {text!r}"
            for line, text in sorted(_string_literals(path))
            if text in names or text.startswith("tokbench.tasks.")]


def test_the_layout_check_sees_a_task_key(tmp_path):
    """The literal check above would catch a task key (so its passing means something)."""
    from tokbench.registry import tasks

    module = tmp_path / "engine" / "engine_like.py"
    module.parent.mkdir()
    module.write_text('CHARTS = {"bpe": 1}\nDEFAULT = "recon"\nOK = "reconstruction"\n'
                      'M = "tokbench.tasks.vc.task"\n', encoding="utf-8")
    found = _task_keys(module, set(tasks.names()))
    assert [f.split(" names ")[1] for f in found] == ["'bpe'", "'recon'", "'tokbench.tasks.vc.task'"]


def test_adapters_never_import_tasks_or_the_runner():
    assert _offenders("adapters", ("tokbench.tasks", "tokbench.run", "tokbench.results",
                                   "tokbench.report")) == []


def test_tasks_never_import_an_adapter_family():
    assert _offenders("tasks", ("tokbench.adapters",)) == []


def test_family_commands_come_from_the_registry():
    from tokbench.cli import attach_commands

    app = typer.Typer()
    attach_commands(app)
    result = CliRunner().invoke(app, ["fit-kmeans", "--help"])
    assert result.exit_code == 0 and "--layer" in result.output
    assert "fit-kmeans" not in (ROOT / "tokbench" / "cli.py").read_text()


def test_the_engine_names_no_metric_it_computes():
    """The scorer, the runner, the protocol, prefetch and the store read the metric declarations
    (tokbench/metrics/kit.py): outside the metric modules no engine code names a computed metric
    or imports a metric module. The reporter's presentation preferences (which recorded columns
    a compact view shows first) are the one exception: what each column means still comes from
    its declaration."""
    from tokbench.metrics import declarations

    computed = {n for d in declarations() if d.where != "recorded" for n in d.names}
    modules = {d.module for d in declarations()}
    # the decode tasks' ASR options build the ASR scorer the asr metrics run on (a run resource
    # like the device, configured by the task, not a metric the engine computes itself)
    allowed = {("tokbench/run/decode_task.py", "tokbench.metrics.asr")}
    bad = []
    for path in sorted((ROOT / "tokbench").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] in ("metrics", "report") or rel.name == "testing.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in computed:
                bad.append(f"{rel}:{node.lineno} names metric {node.value!r}")
        bad += [f"{rel} imports {name}" for name in _imports(path)
                if name in modules and (str(rel), name) not in allowed]
    assert bad == []


MAX_MODULE_LINES = 600


def test_no_module_is_over_600_lines():
    # Small modules with names that explain themselves: a module past this is split along its
    # seams (as adapters/ssl/units.py -> features, fitting, units).
    long = {str(p.relative_to(ROOT)): n for folder in ("tokbench", "adapters", "tasks")
            for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them): {long}"
