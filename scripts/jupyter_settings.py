"""The course's JupyterLab settings, written into a Python environment (``sys.prefix``, or ``--prefix``).

What a learner sees when JupyterLab opens should be the lessons and nothing else:

- no pop-up asking whether to fetch Jupyter news, and no update check (``overrides.json``, the
  environment's default settings, which a learner's own settings still override);
- each lesson once in the file browser: the jupytext sources ``lessons/NN_name.py`` are hidden
  (``ContentsManager.hide_globs``); they stay on disk, where the tests and editors read them;
- no Nbgrader menu, Validate button or Create Assignment panel: nbgrader comes with the test tools
  (``--dev``) and its JupyterLab extensions are switched off there; an instructor who installs the
  ``instructor`` extra keeps them (``--instructor``).

scripts/install.sh and binder/postBuild run it; after ``conda env create`` run it once yourself::

    python scripts/jupyter_settings.py                 # a learner's or a developer's environment
    python scripts/jupyter_settings.py --instructor    # keep nbgrader's JupyterLab extensions
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NEWS_OFF = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
# jupyter_server's own defaults, and the lessons' jupytext sources
HIDE_GLOBS = ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*.so", "*.dylib", "*~", "[0-9][0-9]_*.py"]
NBGRADER_EXTENSIONS = "@jupyter/nbgrader"


def _merge(path: Path, values: dict) -> Path:
    """Merge ``values`` into the JSON object at ``path`` (created if missing), one level deep."""
    data = json.loads(path.read_text()) if path.exists() else {}
    for key, value in values.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def write(prefix: Path, instructor: bool = False) -> list[Path]:
    """Write the settings into the environment at ``prefix``; return the files written."""
    written = [
        _merge(prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json", NEWS_OFF),
        _merge(prefix / "etc" / "jupyter" / "jupyter_server_config.json",
               {"ContentsManager": {"hide_globs": HIDE_GLOBS}}),
    ]
    page_config = prefix / "etc" / "jupyter" / "labconfig" / "page_config.json"
    disabled = {NBGRADER_EXTENSIONS: not instructor}
    written.append(_merge(page_config, {"disabledExtensions": disabled}))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, default=Path(sys.prefix), help="the environment (default: this one)")
    parser.add_argument("--instructor", action="store_true", help="keep nbgrader's JupyterLab extensions")
    args = parser.parse_args(argv)
    for path in write(args.prefix, args.instructor):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
