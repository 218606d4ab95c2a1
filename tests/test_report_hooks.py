"""Tasks own their report parts: the report finds them through the task registry."""

import json
import subprocess
import sys

from tokbench.registry import Entry, tasks
from tokbench.report.charts import charts_for
from tokbench.report.hooks import report_module_name, task_charts, task_param_charts, task_report
from tokbench.report.tables import Column, ResultTable


def test_a_task_package_report_module_is_found_by_task_name():
    assert set(task_charts("bpe")) == {"bpe_reduction"}
    assert set(task_param_charts("invariance", {"ued", "code_change_rate"})) == {"ued_strength"}
    assert task_param_charts("invariance", {"code_change_rate"}) == {}
    # a single-module task, a task package without a report module, and no registered task
    assert task_report("recon") is None and task_report("vc") is None
    assert task_report("score") is None and task_charts("no-such-task") == {}


def test_report_module_names_follow_the_package_rule():
    assert report_module_name("tokbench.tasks.bpe.task:BPEStudy") == "tokbench.tasks.bpe.report"
    assert report_module_name("tokbench.tasks.vc:VoiceConversion") == "tokbench.tasks.vc.report"
    assert report_module_name("tokbench.tasks.recon:Reconstruction") is None
    assert report_module_name("plugins/my_task.py:MyTask") is None
    assert report_module_name("no_such_package.task:X") is None


def test_charts_of_a_table_come_from_its_task():
    def table(task: str, part: str = "", metrics=("ued",)) -> ResultTable:
        return ResultTable(task, "sample", "p", [Column(m, None) for m in metrics], [], part=part)

    assert "bpe_reduction" in charts_for(table("bpe")) and "radar" in charts_for(table("bpe"))
    assert "bpe_reduction" not in charts_for(table("recon"))
    assert set(charts_for(table("invariance", part="ued"))) == {"ued_strength"}
    # the same metric in another task's table by param gets nothing from invariance
    assert charts_for(table("recon", part="ued")) == {}


def test_a_registered_task_package_with_a_report_module_adds_its_charts(tmp_path, monkeypatch):
    pkg = tmp_path / "mytasks_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("class MyTask:\n    pass\n")
    (pkg / "report.py").write_text("CHARTS = {'mine': ('my chart', None)}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tasks.add("mytask-hooks", Entry(name="mytask-hooks", target="mytasks_pkg.task:MyTask"))
    try:
        assert task_charts("mytask-hooks") == {"mine": ("my chart", None)}
    finally:
        tasks._items.pop("mytask-hooks", None)
        task_report.cache_clear()


def test_finding_report_parts_loads_no_task_class_and_no_torch():
    code = ("import sys, json; from tokbench.report.hooks import task_charts, task_param_charts; "
            "task_charts('bpe'); task_param_charts('invariance', {'ued'}); "
            "print(json.dumps(['torch' in sys.modules, 'tokbench.tasks.bpe.task' in sys.modules, "
            "'tokbench.tasks.invariance.task' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False, False]
