"""The code cells of a lesson, for tests that check where in a lesson something happens."""

from __future__ import annotations

from pathlib import Path

import jupytext

LESSONS = Path(__file__).parents[1] / "lessons"


class LessonCode:
    """The code cells of ``lessons/<name>.py``, in order: ``sources`` and the solution cells' ``solutions``."""

    def __init__(self, name: str) -> None:
        cells = jupytext.read(LESSONS / f"{name}.py").cells
        self.sources = [cell.source for cell in cells if cell.cell_type == "code"]
        self.solutions = [cell.source for cell in cells if "solution" in cell.metadata.get("tags", [])]

    def first(self, text: str) -> int:
        """The index of the first code cell that contains ``text``."""
        return next(i for i, source in enumerate(self.sources) if text in source)

    def last(self, text: str) -> int:
        """The index of the last code cell that contains ``text``."""
        return max(i for i, source in enumerate(self.sources) if text in source)
