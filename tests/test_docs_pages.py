"""The ``>>>`` snippets of the documentation's hand-written pages run as shown.

Each page of ``docs/`` (the getting-started page, the user guide) is a
doctest file: a snippet whose output differs from the page, or that raises,
fails here, so the pages cannot drift from the library. Sphinx is not needed.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(
    p
    for p in [*DOCS.glob("*.rst"), *DOCS.glob("user_guide/*.rst")]
    if ">>>" in p.read_text(encoding="utf-8")
)


def test_pages_have_snippets():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {"getting_started.rst", "user_guide/impute.rst"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_snippets(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets that write files write here
    result = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        raise_on_error=False,
        verbose=False,
    )
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} snippet(s) of {page.name} failed"
