"""Build the course website into build/site/: every lesson executed, with outputs, plots and widgets.

    python scripts/build_site.py            # then open build/site/index.html
    python scripts/build_site.py 00 03      # only some lessons (a quick look at a page)

Steps: fetch the pages' scripts once (``scripts/site_assets.sh``: RequireJS, the ipywidgets HTML
manager, MathJax, all served by the site itself); gather the executed lessons; run Sphinx with
MyST-NB (``docs/site/conf.py``). An executed lesson is reused from ``artifacts/executed/`` (the
browser test saves every lesson there after running it in JupyterLab, widget state included) when
its cells are those of ``lessons/NN_topic.ipynb`` today; otherwise the lesson is executed here with
nbclient, which stores the widgets' state too. Works offline once the scripts are fetched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
EXECUTED = ROOT / "artifacts" / "executed"
SOURCE = ROOT / "build" / "site-src"
SITE = ROOT / "build" / "site"
ASSETS = ROOT / "build" / "site-assets"
NOTE = ("*This page shows the lesson as it ran when the site was built. Widgets show their first state "
        "here; open the lesson on Binder (the rocket button above) or in your own JupyterLab to move "
        "them and to run every cell yourself.*")


def cells_hash(nb: nbformat.NotebookNode) -> str:
    """A fingerprint of a notebook's cells (type and source), to tell whether an executed copy is current."""
    text = json.dumps([(c.cell_type, c.source) for c in nb.cells])
    return hashlib.sha256(text.encode()).hexdigest()


def executed_lesson(path: Path) -> tuple[nbformat.NotebookNode, str]:
    """The executed lesson at ``path`` and where it came from ("browser test" or "executed now")."""
    wanted = cells_hash(nbformat.read(path, as_version=4))
    saved = EXECUTED / path.name
    if saved.exists():
        nb = nbformat.read(saved, as_version=4)
        if cells_hash(nb) == wanted and nb.metadata.get("widgets"):
            return nb, "browser test"
    from mmcourse.instructor import executed_version

    # nbclient, made safe for Output widgets, with a cell timeout that names a stalled lesson and cell
    return executed_version(path), "executed now"


def gather(prefixes: list[str]) -> None:
    """Write build/site-src/: the configuration, the index and the executed lessons (those whose names
    start with one of ``prefixes``; all when there are none), each with a note on top."""
    shutil.rmtree(SOURCE, ignore_errors=True)
    (SOURCE / "lessons").mkdir(parents=True)
    for name in ("conf.py", "index.md"):
        shutil.copy(ROOT / "docs" / "site" / name, SOURCE / name)
    shutil.copytree(ROOT / "docs" / "site" / "_static", SOURCE / "_static")
    (SOURCE / "_assets").symlink_to(ASSETS, target_is_directory=True)
    for path in sorted(LESSONS.glob("[0-9][0-9]_*.ipynb")):
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        start = time.perf_counter()
        nb, origin = executed_lesson(path)
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(NOTE))
        nb.metadata.pop("jupytext", None)
        nbformat.write(nb, SOURCE / "lessons" / path.name)
        print(f"{path.stem}: {origin} ({time.perf_counter() - start:.1f} s)", flush=True)


def main(prefixes: list[str]) -> int:
    subprocess.run(["bash", str(ROOT / "scripts" / "site_assets.sh")], check=True)
    gather(prefixes)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", str(SOURCE), str(SITE)]
    result = subprocess.run(command, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    if result.returncode == 0:
        print(f"the site is in {SITE.relative_to(ROOT)}/ (open index.html)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
