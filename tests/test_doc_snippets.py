"""Every ```python block of README.md, plugins/README.md and docs/*.md runs as written.

A block runs alone, in a fresh namespace, in a temporary working directory. A block that
cannot run here (it downloads, needs a GPU, or trains for minutes) carries a marker on
the line just above it, and the test reports it as skipped with that reason:

    <!-- skip: needs download (the authors' checkpoint) -->
    ```python

A block marked `<!-- file: PATH -->` is a file of an example distribution; the test that
installs that distribution runs it (plugins/README.md's: tests/test_plugin_recipes.py).
New documents under docs/ are picked up without a change here.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from markdown_blocks import blocks  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
INSTALLED_BY = {"plugins/README.md": "tests/test_plugin_recipes.py"}


def documents() -> list[pathlib.Path]:
    return [REPO / "README.md", REPO / "plugins" / "README.md", *sorted(REPO.glob("docs/*.md"))]


def _cases():
    for path in documents():
        document = str(path.relative_to(REPO))
        for block in blocks(path):
            if block.language != "python":
                continue
            name = f"{document}:{block.line}"
            reason = block.skip
            if block.file:
                tester = INSTALLED_BY.get(document, "the test that installs it")
                reason = f"file {block.file} of the example distribution, run by {tester}"
            marks = [pytest.mark.skip(reason=f"{name}: {reason}")] if reason else []
            yield pytest.param(name, block.code, id=name, marks=marks)


@pytest.mark.parametrize("name, code", list(_cases()))
def test_snippet_runs(name, code, tmp_path, monkeypatch):
    from kclr import registry

    monkeypatch.chdir(tmp_path)
    try:
        exec(compile(code, name, "exec"), {"__name__": "__snippet__"})  # noqa: S102 - the docs' code
    finally:  # a snippet that registers an example component leaves nothing behind
        for reg in registry.REGISTRIES.values():
            reg.reset()


def test_markers_are_read(tmp_path):
    """The parser finds blocks, their first line and the marker above them."""
    text = (
        "text\n\n<!-- skip: needs a GPU -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
        "<!-- file: src/a.py -->\n```python\nz = 3\n```\n"
    )
    (tmp_path / "probe.md").write_text(text)
    found = [(b.line, b.code, b.skip, b.file) for b in blocks(tmp_path / "probe.md")]
    assert found == [
        (4, "x = 1\n", "needs a GPU", None),
        (8, "y = 2\n", None, None),
        (12, "z = 3\n", None, "src/a.py"),
    ]
