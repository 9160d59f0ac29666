"""The package's layout (COURSE.md, "The package"): the same four places per topic, imports that run one
way (lessons -> views -> experiments -> methods -> base), and every claim checked by its lesson."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import mmcourse.experiments
from mmcourse.claims import claims_of

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "mmcourse"
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
BASE = {"data", "encoders", "train", "metrics", "diagnostics", "claims", "device"}
TOPICS = {p.name[:2]: p.stem[3:] for p in LESSONS}  # lesson number -> topic: lessons/01_fusion.py -> "fusion"
NO_METHODS = {"welcome"}  # lesson 00 tours the data and tools; it has no methods of its own
# What each layer may import from the package (besides itself); "methods" are the topic modules.
ALLOWED = {
    "base": {"base"},
    "methods": {"base", "methods"},
    # An experiment exercise runs its lesson's experiment and is judged by its claims (exercises/__init__.py).
    "exercises": {"base", "methods", "experiments", "exercises"},
    "experiments": {"base", "methods", "experiments"},
    "views": {"base", "methods", "experiments", "views"},
}


def _layer(module: str) -> str:
    """The layer of a module named relative to the package, e.g. "views.fusion" or "data.shapes"."""
    first = module.split(".")[0]
    if first in ("views", "experiments", "exercises"):
        return first
    return "base" if first in BASE else "methods"


def _imports(path: Path) -> set[str]:
    """Package modules ``path`` imports (anywhere in the file, lazy imports included), relative to mmcourse."""
    here = path.relative_to(PACKAGE).with_suffix("").parts
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}".strip(".") for a in node.names]
            elif node.module and node.module.startswith("mmcourse."):
                names = [node.module.removeprefix("mmcourse.")]
            else:
                continue
            found.update(n for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("mmcourse.") for a in node.names if a.name.startswith("mmcourse."))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    layer = _layer(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    wrong = {m for m in _imports(path) if _layer(m) not in ALLOWED[layer]}
    assert not wrong, f"{layer} module imports {sorted(wrong)}; allowed layers: {sorted(ALLOWED[layer])}"


def test_the_rule_is_checked_on_a_wrong_import(tmp_path):
    assert _layer("views.fusion") == "views" and _layer("data.shapes") == "base" and _layer("cca") == "methods"
    assert "views.common" in _imports(PACKAGE / "views" / "fusion.py")
    assert {"claims", "data", "device"} <= _imports(PACKAGE / "experiments" / "fusion.py")


@pytest.mark.parametrize("number, topic", TOPICS.items())
def test_every_topic_has_its_four_places(number, topic):
    places = [f"experiments/{topic}.py", f"exercises/{topic}.py", f"views/{topic}.py"]
    if topic not in NO_METHODS:
        places.append(f"{topic}.py")
    missing = [p for p in places if not (PACKAGE / p).exists()]
    assert not missing, f"lesson {number} ({topic}) lacks {missing}"
    assert [p.stem for p in LESSONS if p.name.startswith(number)], f"no lesson {number}"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_claim_is_checked_by_its_lesson_and_only_there(lesson):
    """The lesson imports its topic's experiments, checks each Claim constant (an experiment exercise's outcome
    claims through its check), and states no claim of its own: a threshold lives in one place, next to its
    experiment."""
    source = lesson.read_text()
    topic = TOPICS[lesson.name[:2]]
    assert f"from mmcourse.experiments import {topic} as experiments" in source
    module = importlib.import_module(f"mmcourse.experiments.{topic}")
    claims = claims_of(module)
    # An experiment exercise's outcomes are claims judged by its check (exercises.check("name", ...)).
    from mmcourse.exercises import Experiment, all_exercises

    judged = {claim for name, ex in all_exercises().items() if isinstance(ex, Experiment)
              and f'exercises.check("{name}"' in source for claim in ex.outcomes.values()}
    unchecked = [name for name, claim in claims.items()
                 if f"experiments.{name}.check(" not in source and claim not in judged]
    assert not unchecked, f"claims defined but not checked in {lesson.name}: {unchecked}"
    assert not re.search(r"(?<![.\w])claim\(", source), "state results with a Claim from experiments, not claim()"
    assert hasattr(module, "measure_claims")


def test_experiments_modules_are_named_after_topics():
    names = {p.stem for p in Path(mmcourse.experiments.__file__).parent.glob("*.py")} - {"__init__"}
    # comparison: the running comparison, a thread through lessons 02, 04, 05 and 07 (as views/common.py is shared)
    assert names == set(TOPICS.values()) | {"comparison"}
