"""The fenced code blocks of a Markdown file and the marker comment just above each.

A marker is an HTML comment on the last non-blank line before the fence:
`<!-- skip: REASON -->` (the block cannot run in the test suite, and why) or
`<!-- file: PATH -->` (the block is the file PATH of an example distribution).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

MARKER = re.compile(r"^<!--\s*(?P<kind>skip|file):\s*(?P<value>.+?)\s*-->$")
FENCE = re.compile(r"^```(?P<language>\S*)\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    line: int  # the opening fence, 1-based
    language: str
    code: str
    skip: str | None = None
    file: str | None = None


def blocks(path: pathlib.Path) -> list[Block]:
    """Every fenced block of `path` at the start of a line, with its marker."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    opened: tuple[int, str, dict] | None = None
    code: list[str] = []
    for number, line in enumerate(lines, start=1):
        fence = FENCE.match(line)
        if opened is None and fence is not None:
            previous = next((s.strip() for s in reversed(lines[: number - 1]) if s.strip()), "")
            marker = MARKER.match(previous)
            markers = {marker["kind"]: marker["value"]} if marker else {}
            opened, code = (number, fence["language"], markers), []
        elif opened is not None and line.strip() == "```":
            start, language, markers = opened
            found.append(Block(start, language, "\n".join(code) + "\n", **markers))
            opened = None
        elif opened is not None:
            code.append(line)
    return found


def files(path: pathlib.Path) -> dict[str, str]:
    """`{PATH: code}` of the blocks of `path` marked `<!-- file: PATH -->`."""
    return {block.file: block.code for block in blocks(path) if block.file}
