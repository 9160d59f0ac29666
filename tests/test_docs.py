"""Every image in README, the docs and the lessons' markdown has alt text (a screen reader reads it, and
it shows where the image does not load)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "lessons").glob("[0-9]*.py"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_images_have_alt_text(page):
    text = page.read_text()
    for alt in re.findall(r"!\[([^\]]*)\]\(", text):
        assert alt.strip(), f"an image without alt text in {page.name}"
    for tag in re.findall(r"<img\b[^>]*>", text):
        assert re.search(r'\balt="[^"]+"', tag), f"an <img> without alt text in {page.name}: {tag[:80]}"
