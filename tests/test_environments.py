"""pyproject.toml, environment.yml and binder/ ask for the same packages."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]
CONDA_NAMES = {"pytorch-cpu": "torch", "pytorch": "torch"}  # conda-forge name -> PyPI name


def _pyproject() -> tuple[dict, dict]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    parse = lambda reqs: {canonicalize_name(r.name): r for r in map(Requirement, reqs)}  # noqa: E731
    return parse(project["dependencies"]), parse(project["optional-dependencies"]["dev"])


def _conda() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                if not line.startswith("-"):
                    out[canonicalize_name(Requirement(line).name)] = line
            continue
        name = re.split(r"[<>=! ]", dep, maxsplit=1)[0]
        if name not in ("python", "pip"):
            out[canonicalize_name(CONDA_NAMES.get(name, name))] = dep
    return out


def _binder() -> dict[str, Requirement]:
    lines = (ROOT / "binder/requirements.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith(("#", "-"))]
    return {canonicalize_name(r.name): r for r in reqs}


def test_conda_environment_matches_pyproject():
    """A learner's set, as Binder's: the test tools come with pyproject's "dev" extra."""
    runtime, dev = _pyproject()
    assert set(_conda()) == set(runtime)
    tools = {"nbval", "jupytext", "nbgrader"}
    assert tools | {"pytest"} <= set(dev) and not tools & set(runtime)


def test_conda_uses_cpu_pytorch_and_a_new_python():
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert any(str(d).startswith("pytorch-cpu") for d in deps)
    assert "python>=3.11" in deps


def test_binder_matches_pyproject_runtime_and_versions_satisfy_it():
    runtime, _ = _pyproject()
    binder = _binder()
    assert set(binder) == set(runtime)
    for name, req in binder.items():
        pins = [s.version for s in req.specifier if s.operator == "=="]
        for pin in pins:
            assert runtime[name].specifier.contains(Version(pin), prereleases=True), (name, pin)
        if not pins:  # the same bounds, upper ones included (ipykernel below 7)
            assert req.specifier == runtime[name].specifier, (name, str(req.specifier), str(runtime[name].specifier))


def test_conda_asks_for_the_same_versions_as_pyproject():
    runtime, _ = _pyproject()
    wanted = runtime
    for name, line in _conda().items():
        conda = Requirement(line.replace("pytorch-cpu", "torch").replace("pytorch", "torch"))
        assert conda.specifier == wanted[name].specifier, (name, line, str(wanted[name].specifier))


def test_every_install_list_keeps_ipykernel_below_7():
    """ipykernel 7 can leave a shell request unread (ipython/ipykernel#1554): a cell stuck at [*]. Each list
    says why it pins, so that whoever lifts the pin finds the reason and the benchmark to rerun."""
    runtime, _ = _pyproject()
    for req in (runtime["ipykernel"], _binder()["ipykernel"], Requirement(_conda()["ipykernel"])):
        assert not req.specifier.contains("7.0.0") and not req.specifier.contains("7.4.0")
        assert req.specifier.contains("6.31.0")
    for path in ("pyproject.toml", "binder/requirements.txt", "environment.yml"):
        assert "ipykernel#1554" in (ROOT / path).read_text(), path


def test_binder_takes_cpu_torch_pins_python_and_installs_the_package():
    text = (ROOT / "binder/requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert str(_binder()["torch"].specifier).endswith("+cpu")
    assert (ROOT / "binder/runtime.txt").read_text().strip() == "python-3.11"
    post = (ROOT / "binder/postBuild").read_text()
    assert post.startswith("#!/bin/bash") and "set -e" in post and "pip install" in post and "-e ." in post


def test_install_script_pins_the_same_torch_as_binder():
    script = (ROOT / "scripts/install.sh").read_text()
    version = re.search(r"TORCH_VERSION:-([\d.]+)", script).group(1)
    assert str(_binder()["torch"].specifier) == f"=={version}+cpu"


def test_readme_badge_opens_lesson_00_on_binder():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"mybinder\.org/v2/gh/[^)\s]+\?urlpath=lab/tree/lessons/00_welcome\.ipynb", readme)


def test_learners_install_no_test_tools_and_the_test_command_does():
    """`scripts/install.sh` installs a learner's set; the README's test command asks for the test tools itself
    (CI runs that command on a clean clone, so a missing install step would fail there)."""
    script = (ROOT / "scripts/install.sh").read_text()
    assert '"${pip[@]}" -e .\n' in script and "--dev) DEV=1" in script and "scripts/jupyter_settings.py" in script
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/install.sh --dev && .venv/bin/ruff check . && .venv/bin/python -m pytest" in readme
    assert "bash scripts/install.sh && .venv/bin/jupyter lab lessons/00_welcome.ipynb" in readme
    assert "python scripts/jupyter_settings.py" in (ROOT / "binder/postBuild").read_text()


def test_jupyterlab_settings_hide_the_sources_the_news_and_nbgrader(tmp_path):
    """What scripts/jupyter_settings.py writes, and what a contents manager configured by it lists (the browser
    test checks the real JupyterLab that this environment starts)."""
    import json
    import subprocess
    import sys

    from jupyter_server.services.contents.filemanager import FileContentsManager
    from traitlets.config import Config

    run = lambda *flags: subprocess.run([sys.executable, str(ROOT / "scripts/jupyter_settings.py"), "--prefix",  # noqa: E731
                                         str(tmp_path), *flags], check=True, capture_output=True)
    run()
    server = json.loads((tmp_path / "etc/jupyter/jupyter_server_config.json").read_text())
    manager = FileContentsManager(config=Config(server), root_dir=str(ROOT / "lessons"))
    listed = {m["name"] for m in manager.get("", content=True)["content"]}
    lessons = sorted(p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
    assert {f"{name}.ipynb" for name in lessons} <= listed and not {f"{name}.py" for name in lessons} & listed
    overrides = json.loads((tmp_path / "share/jupyter/lab/settings/overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false", "checkForUpdates": False}
    page = tmp_path / "etc/jupyter/labconfig/page_config.json"
    assert json.loads(page.read_text())["disabledExtensions"] == {"@jupyter/nbgrader": True}
    run("--instructor")
    assert json.loads(page.read_text())["disabledExtensions"] == {"@jupyter/nbgrader": False}
