"""Every ```python block of README.md, plugins/README.md and docs/*.md runs as written.

A block runs alone, in a fresh namespace, in a temporary working directory. A block that
cannot run here (it downloads, needs a GPU, or trains for minutes) carries a marker on
the line just above it, and the test reports it as skipped with that reason:

    <!-- skip: needs download (the authors' checkpoint) -->
    ```python
    ...

New documents under docs/ are picked up without a change here.
"""

from __future__ import annotations

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SKIP = re.compile(r"^<!--\s*skip:\s*(?P<reason>.+?)\s*-->$")
FENCE = re.compile(r"^```(?P<language>\S*)\s*$")


def documents() -> list[pathlib.Path]:
    return [REPO / "README.md", REPO / "plugins" / "README.md", *sorted(REPO.glob("docs/*.md"))]


def snippets(path: pathlib.Path) -> list[tuple[int, str, str | None]]:
    """`(line, code, skip reason)` of every python block of `path` (line: the fence's, 1-based)."""
    lines = path.read_text().splitlines()
    found, inside, start, code, reason, language = [], False, 0, [], None, ""
    for number, line in enumerate(lines, start=1):
        fence = FENCE.match(line.strip()) if not line.startswith(" ") else None
        if fence is None and inside:
            code.append(line)
        elif fence is not None and inside:
            if language == "python":
                found.append((start, "\n".join(code) + "\n", reason))
            inside = False
        elif fence is not None:
            inside, start, code, language = True, number, [], fence["language"]
            previous = next((s.strip() for s in reversed(lines[: number - 1]) if s.strip()), "")
            marker = SKIP.match(previous)
            reason = marker["reason"] if marker else None
    return found


def _cases():
    for path in documents():
        for line, code, reason in snippets(path):
            name = f"{path.relative_to(REPO)}:{line}"
            marks = [pytest.mark.skip(reason=f"{name}: {reason}")] if reason else []
            yield pytest.param(path, line, code, id=name, marks=marks)


@pytest.mark.parametrize("path, line, code", list(_cases()))
def test_snippet_runs(path, line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    compiled = compile(code, f"{path.relative_to(REPO)}:{line}", "exec")
    exec(compiled, {"__name__": "__snippet__"})  # noqa: S102 - the documentation's own code


def test_markers_are_read():
    """The parser finds blocks, their first line and the skip reason above them."""
    text = "text\n\n<!-- skip: needs a GPU -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    path = REPO / "tests" / "snippet_probe.md"
    try:
        path.write_text(text)
        assert snippets(path) == [(4, "x = 1\n", "needs a GPU"), (8, "y = 2\n", None)]
    finally:
        path.unlink()
