"""The Binder set-up, checked as far as it can be here: a fresh virtual environment gets what
binder/ asks for, binder/postBuild runs, and lesson 00 executes in that environment.

repo2docker would take Python from binder/runtime.txt and PyTorch's CPU wheel from the index in
binder/requirements.txt. This test uses this machine's Python (it must be the version that
runtime.txt names) and pip as configured here: where PyTorch's CPU index cannot be reached, pip
takes the same CPU build from a local mirror, the only permitted difference.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _base_python() -> str:
    """The interpreter the test environment's venv was made from (a venv inside a venv is fine too)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _repo_copy(target: Path) -> Path:
    """The files a Binder build sees: tracked and untracked-but-not-ignored files of the repository."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _run(command: list[str], cwd: Path, env: dict, timeout: int = 900) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_binder_environment_installs_and_runs_lesson_00(tmp_path):
    runtime = (ROOT / "binder/runtime.txt").read_text().strip()
    assert runtime == f"python-{platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}", (
        f"binder/runtime.txt asks for {runtime}; run this test with that Python")
    repo = _repo_copy(tmp_path / "repo")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    _run([_base_python(), "-m", "venv", str(venv)], repo, env)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--retries", "1",
          "--timeout", "15", "-r", "binder/requirements.txt"], repo, env)
    _run(["bash", "binder/postBuild"], repo, env)

    info = json.loads(_run([python, "-c", "import json, torch, mmcourse; print(json.dumps("
                                          "{'cuda': torch.version.cuda, 'file': mmcourse.__file__}))"], repo, env))
    assert info["cuda"] is None, "Binder must get a CPU-only build of torch"
    assert info["file"].startswith(str(repo)), "postBuild installs the course package from the repository"

    # nbclient as nbconvert uses it, made safe for Output widgets, a stalled cell failing after 90 s
    _run([python, "-m", "mmcourse.instructor", "executed", str(tmp_path / "executed"), "00"], repo, env)
    notebook = json.loads((tmp_path / "executed" / "00_welcome.ipynb").read_text())
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    printed = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
    assert "\N{CHECK MARK} train and test voices are disjoint" in printed


@pytest.fixture(autouse=True)
def _needs_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files Binder would see")
