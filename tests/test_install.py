"""scripts/install.sh with stub commands: which extras each profile installs, and that the
"installed" stamp is written only when everything is there (the dpkg lock is waited for)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install.sh"
TOOLS = ("bash", "sh", "dirname", "grep", "seq", "sleep", "id", "touch", "cat", "chmod", "rm")

APT = """#!/bin/sh
echo "apt-get $*" >> "$STUB_LOG"
n=$(cat "$STUBS/locked" 2>/dev/null || echo 0)
if [ "$n" -gt 0 ]; then
  echo $((n - 1)) > "$STUBS/locked"
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4321" >&2
  exit 100
fi
[ -f "$STUBS/broken" ] && { echo "E: Unable to locate package" >&2; exit 100; }
case "$*" in
  *install*libopus0*) touch "$STUBS/libopus" ;;
  *install*chromium*) printf '#!/bin/sh\\n' > "$STUBS/chromium"; chmod +x "$STUBS/chromium" ;;
esac
exit 0
"""
LDCONFIG = """#!/bin/sh
[ -f "$STUBS/libopus" ] && echo "	libopus.so.0 (libc6,x86-64) => /usr/lib/libopus.so.0"
exit 0
"""
PYTHON = """#!/bin/sh
echo "python $*" >> "$STUB_LOG"
[ "$1" = "-m" ] && [ "$2" = "pip" ] && exit 0
[ "$1" = "-c" ] && exit 0  # "import torch" and the like: installed (and not imported: slow)
exec {real} "$@"
"""
SUDO = """#!/bin/sh
shift
exec "$@"
"""


@pytest.fixture
def box(tmp_path):
    """A venv folder whose python logs pip calls, and a PATH of stubs (apt-get, ldconfig, sudo)
    plus the few real tools the script uses (no real chromium, apt-get or nvidia-smi)."""
    stubs, tools, venv = tmp_path / "stubs", tmp_path / "tools", tmp_path / "venv"
    for d in (stubs, tools, venv / "bin"):
        d.mkdir(parents=True)
    for name in TOOLS:
        (tools / name).symlink_to(shutil.which(name))
    for path, text in ((stubs / "apt-get", APT), (stubs / "ldconfig", LDCONFIG),
                       (stubs / "sudo", SUDO),
                       (venv / "bin" / "python", PYTHON.format(real=sys.executable))):
        path.write_text(text)
        path.chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    env = {"PATH": f"{stubs}:{tools}", "VENV": str(venv), "STUBS": str(stubs),
           "STUB_LOG": str(log), "TOKBENCH_APT_SLEEP": "0", "TOKBENCH_APT_ATTEMPTS": "3",
           "HOME": str(tmp_path)}

    def install(profile: str = "full") -> tuple[subprocess.CompletedProcess, list[str]]:
        start = len(log.read_text().splitlines())
        done = subprocess.run(["bash", str(SCRIPT)], env={**env, "TOKBENCH_PROFILE": profile},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done, log.read_text().splitlines()[start:]

    return install, stubs, venv


def _pip_installs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("python -m pip") and "install -r" in c]


def test_demo_profile_installs_only_what_the_demo_runs(box):
    install, stubs, venv = box
    _, calls = install("demo")
    assert len(_pip_installs(calls)) == 1
    reqs = (venv / "requirements.cpu.txt").read_text()
    assert "opuslib-next" in reqs and "pytest" not in reqs and "snac" not in reqs
    assert "nemo" not in reqs
    assert not any("chromium" in c for c in calls)  # the browser test is not the demo's
    assert (venv / ".tokbench-installed-demo").is_file()
    assert not (venv / ".tokbench-installed").exists()
    assert install("demo")[1] == []  # stamped: nothing to do
    _, calls = install("full")  # the tests need more
    assert len(_pip_installs(calls)) == 1
    reqs = (venv / "requirements.cpu.txt").read_text()
    assert all(p in reqs for p in ("pytest", "snac", "nemo-toolkit", "opuslib-next"))
    assert (venv / ".tokbench-installed").is_file()
    assert install("demo")[1] == []  # a full install serves the demo


def test_a_held_dpkg_lock_is_waited_for(box):
    install, stubs, venv = box
    (stubs / "locked").write_text("2")  # two attempts find the lock held
    done, calls = install()
    assert done.stderr.count("the dpkg lock is held by another process") == 2
    assert all("DPkg::Lock::Timeout" in c for c in calls if c.startswith("apt-get"))
    assert (stubs / "libopus").exists() and (stubs / "chromium").exists()
    assert (venv / ".tokbench-installed").is_file()


def test_no_stamp_until_the_system_packages_are_there(box):
    install, stubs, venv = box
    (stubs / "broken").touch()
    done, calls = install()
    assert "could not install libopus0" in done.stderr and "could not install chromium" in done.stderr
    assert not (venv / ".tokbench-installed").exists()  # so the next run tries again
    assert (venv / ".tokbench-python-full").is_file()
    (stubs / "broken").unlink()
    _, calls = install()
    assert _pip_installs(calls) == []  # the Python packages were done: only apt is retried
    assert any("install -y -qq libopus0" in c for c in calls)
    assert (venv / ".tokbench-installed").is_file()


def test_a_lock_held_too_long_gives_up_without_a_stamp(box):
    install, stubs, venv = box
    (stubs / "locked").write_text("100")
    done, _ = install("demo")
    assert done.stderr.count("trying again") == 3  # TOKBENCH_APT_ATTEMPTS
    assert "could not install libopus0" in done.stderr
    assert not (venv / ".tokbench-installed-demo").exists()


def test_an_unknown_profile_is_refused(box, tmp_path):
    done = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "VENV": str(tmp_path / "v"),
                                                      "TOKBENCH_PROFILE": "tiny"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "must be full or demo" in done.stderr


def test_pyproject_gives_setuptools_nothing_to_warn_about():
    """Every folder that installs files is a listed package (else setuptools warns "absent from
    the packages configuration" per folder), and no deprecated license table."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, tool = config["project"], config["tool"]["setuptools"]
    assert not isinstance(project.get("license"), dict)
    assert (ROOT / "LICENSE").is_file()
    listed = set(tool["packages"])
    for package, folder in tool["package-dir"].items():
        for sub in [ROOT / folder, *(ROOT / folder).rglob("*")]:
            if not sub.is_dir() or sub.name == "__pycache__":
                continue
            if any(f.is_file() and f.suffix != ".pyc" for f in sub.iterdir()):
                name = ".".join([package, *sub.relative_to(ROOT / folder).parts])
                assert name in listed, f"{sub} installs files but {name} is not in packages"
    for package in tool["package-data"]:
        assert package in listed, package


def test_the_pkg_resources_warning_of_pyworld_and_webrtcvad_is_filtered():
    import warnings

    import tokbench

    message = "pkg_resources is deprecated as an API. See https://setuptools.pypa.io/"
    with warnings.catch_warnings(record=True) as caught:
        # what importing tokbench installs (pytest resets the filters around each test, so an
        # import made in an earlier test's context does not count here)
        warnings.simplefilter("always")
        tokbench.filter_known_warnings()
        for module in ("pyworld", "webrtcvad", "somethingelse"):
            warnings.warn_explicit(message, UserWarning, f"{module}.py", 1, module=module)
        warnings.warn_explicit("another warning", UserWarning, "pyworld.py", 2, module="pyworld")
    assert [(str(w.message), w.filename) for w in caught] == [
        (message, "somethingelse.py"), ("another warning", "pyworld.py")]
