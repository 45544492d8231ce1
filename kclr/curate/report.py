"""The files `kclr curate` writes: CSV and text lists, and PNG sheets of the images.

- `duplicates.csv`: `path_a,path_b,similarity`, most similar first;
- `groups.csv`: `group,path`, one row per image of each group (group 0 holds the most
  similar pair);
- `duplicates.png`: the top groups, one row each, images side by side: the image of the
  group's most similar pair first, then the others by their similarity to it;
- `selected.txt`: one path per line, in the order picked;
- `selected.png`: the selected images in a grid, in the order picked.

The PNGs use matplotlib's Agg backend (no display needed). Images are read from the
paths (any format Pillow reads), or from the source's arrays for paths `index:N`; an
image that cannot be read is drawn as a grey square with its name.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
from typing import Any

import numpy as np

THUMBNAIL = 96  # pixels per image side in the sheets
GROUPS_SHOWN = 8
GROUP_MEMBERS_SHOWN = 8
SELECTED_SHOWN = 100


def thumbnail(path: str, images: Any = None) -> np.ndarray | None:
    """An image as uint8 `[H, W, 3]`, at most `THUMBNAIL` pixels a side, or None."""
    if path.startswith("index:") and images is not None:
        array = np.asarray(images[int(path.split(":", 1)[1])])
        if array.dtype != np.uint8:
            array = (np.clip(array, 0.0, 1.0) * 255).astype(np.uint8)
        return array if array.ndim == 3 else np.repeat(array[..., None], 3, axis=-1)
    try:
        from PIL import Image

        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            return np.asarray(image)
    except (OSError, ValueError):
        return None


def _short_name(path: str, width: int = 18) -> str:
    name = os.path.basename(path) or path
    return name if len(name) <= width else "..." + name[-(width - 3) :]


def _sheet(rows: list[list[tuple[str, str]]], row_titles: list[str], title: str, images: Any):
    """A figure of image rows; each cell is `(path, caption)`."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    columns = max((len(r) for r in rows), default=1)
    cell, above, below, header = 1.25, 0.22, 0.4, 0.5  # inches: image, row title, caption, title
    row_height = above + cell + below
    width, height = max(columns, 7) * cell + 0.2, header + len(rows) * row_height + 0.1
    fig = plt.figure(figsize=(width, height), dpi=80)
    fig.suptitle(title, fontsize=10, y=1 - 0.15 / height, va="top")
    for r, row in enumerate(rows):
        bottom = height - header - (r + 1) * row_height + below
        for c, (path, caption) in enumerate(row):
            axis = fig.add_axes(
                [
                    (0.1 + c * cell) / width,
                    bottom / height,
                    (cell - 0.1) / width,
                    (cell - 0.1) / height,
                ]
            )
            image = thumbnail(path, images)
            if image is None:
                axis.set_facecolor("#bbbbbb")
                axis.text(0.5, 0.5, "unreadable", ha="center", va="center", fontsize=7)
            else:
                axis.imshow(image, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_xlabel(caption, fontsize=6)
            if c == 0 and row_titles[r]:
                axis.set_title(row_titles[r], fontsize=7, loc="left")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_duplicates(folder: pathlib.Path, report, images: Any = None) -> list[pathlib.Path]:
    """Writes `duplicates.csv`, `groups.csv` and `duplicates.png` of a `DuplicateReport`."""
    folder = pathlib.Path(folder)
    with open(folder / "duplicates.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path_a", "path_b", "similarity"])
        for a, b, similarity in report.pairs:
            writer.writerow([a, b, f"{similarity:.6f}"])
    with open(folder / "groups.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["group", "path"])
        for number, group in enumerate(report.groups):
            for path in group:
                writer.writerow([number, path])
    shown = report.groups[:GROUPS_SHOWN]
    group_of = {path: number for number, group in enumerate(shown) for path in group}
    first: dict[int, str] = {}  # each shown group's image of its most similar pair
    similar: dict[tuple[str, str], float] = {}  # (first, other) -> similarity, where listed
    for a, b, similarity in report.pairs:
        number = group_of.get(a)
        if number is None:
            continue
        first.setdefault(number, a)
        if first[number] in (a, b):
            similar.setdefault((first[number], b if a == first[number] else a), similarity)
    rows, titles = [], []
    for number, group in enumerate(shown):
        head = first[number]
        # The most similar to the first image next, then the others in input order.
        others = sorted((p for p in group if p != head),
                        key=lambda p: -similar.get((head, p), -2.0))  # fmt: skip
        cells = [(head, _short_name(head))]
        for path in others[: GROUP_MEMBERS_SHOWN - 1]:
            similarity = similar.get((head, path))
            caption = _short_name(path) + (f"\n{similarity:.3f}" if similarity is not None else "")
            cells.append((path, caption))
        rows.append(cells)
        titles.append(f"group {number}: {len(group)} images")
    title = (
        f"{len(report.pairs)} near-duplicate pairs in {len(report.groups)} groups "
        f"(cosine similarity >= {report.threshold}); top {len(rows)} groups"
    )
    if not rows:
        title = f"No near-duplicate pairs (cosine similarity >= {report.threshold})"
    (folder / "duplicates.png").write_bytes(_sheet(rows, titles, title, images))
    return [folder / n for n in ("duplicates.csv", "groups.csv", "duplicates.png")]


def write_selection(
    folder: pathlib.Path, paths: list[str], method: str, images: Any = None
) -> list[pathlib.Path]:
    """Writes `selected.txt` (every path) and `selected.png` (the first `SELECTED_SHOWN`)."""
    folder = pathlib.Path(folder)
    (folder / "selected.txt").write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    shown = paths[:SELECTED_SHOWN]
    columns = min(10, max(1, len(shown)))
    rows = [
        [(p, f"{r * columns + c + 1}. {_short_name(p, 14)}") for c, p in enumerate(chunk)]
        for r, chunk in enumerate(shown[i : i + columns] for i in range(0, len(shown), columns))
    ]
    more = f", the first {len(shown)} shown" if len(shown) < len(paths) else ""
    title = f"{len(paths)} images selected by {method}, in the order picked{more}"
    png = _sheet(rows, [""] * len(rows), title, images)
    (folder / "selected.png").write_bytes(png)
    return [folder / "selected.txt", folder / "selected.png"]
