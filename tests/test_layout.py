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


MAX_MODULE_LINES = 600


def test_no_module_is_over_600_lines():
    # Small modules with names that explain themselves: a module past this is split along its
    # seams (as adapters/ssl/units.py -> features, fitting, units).
    long = {str(p.relative_to(ROOT)): n for folder in ("tokbench", "adapters", "tasks")
            for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them): {long}"
