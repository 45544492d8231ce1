"""Near-duplicates: identical files by content hash, then cosine similarity of frozen features.

1. Files with the same SHA-256 of their bytes are exact duplicates (similarity 1.0); only
   one of each set of identical files goes into the feature search, and its pairs are
   given to every copy (identical bytes give identical features).
2. `kclr.curate.search.pairs_above` lists every pair of the remaining images whose
   cosine similarity of L2-normalised features is at least the threshold.
3. Groups are the connected components of those pairs (union-find), largest similarity
   first.

`DEFAULT_THRESHOLD` was chosen on Fashion-MNIST with planted copies
(`benchmarks/curate_quality.py`, docs/curate.md): see there for what it finds and what it
lists besides.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np

from kclr.curate.search import DEFAULT_BLOCK_SIZE, pairs_above

DEFAULT_THRESHOLD = 0.98


@dataclasses.dataclass
class DuplicateReport:
    """Near-duplicate pairs and groups of a set of images.

    Attributes:
        pairs: `(path_a, path_b, similarity)` tuples, most similar first (`path_a` comes
            before `path_b` in the input order).
        groups: lists of paths, each a connected component of the pairs (at least two
            paths), ordered by their most similar pair.
        threshold: the cosine similarity threshold used.
        exact: how many of `pairs` are pairs of byte-identical files.
        files: the files written (empty until a report is written).
    """

    pairs: list[tuple[str, str, float]]
    groups: list[list[str]]
    threshold: float
    exact: int = 0
    files: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)


def content_hashes(paths) -> list[str | None]:
    """SHA-256 hex digest of each file's bytes (None for a path that is not a file)."""
    digests: list[str | None] = []
    for path in paths:
        if not os.path.isfile(path):
            digests.append(None)
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digests.append(digest.hexdigest())
    return digests


def _exact_sets(hashes: list[str | None]) -> list[list[int]]:
    """Indices of identical files, in sets of two or more (in input order)."""
    by_hash: dict[str, list[int]] = {}
    for index, digest in enumerate(hashes):
        if digest is not None:
            by_hash.setdefault(digest, []).append(index)
    return [members for members in by_hash.values() if len(members) > 1]


def connected_groups(n: int, i: np.ndarray, j: np.ndarray) -> list[list[int]]:
    """Connected components (two or more members) of the graph with edges `(i, j)` on `n` nodes.

    Components are listed in the order of their first edge; members in input order.
    """
    parent = np.arange(n)

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:  # path compression
            parent[a], a = root, parent[a]
        return root

    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for node in sorted(set(i.tolist()) | set(j.tolist())):
        members.setdefault(find(node), []).append(node)
    first_edge: dict[int, int] = {}
    for position, a in enumerate(i.tolist()):
        first_edge.setdefault(find(a), position)
    return [members[root] for root in sorted(members, key=first_edge.__getitem__)]


def find_duplicates(
    features,
    paths,
    threshold: float = DEFAULT_THRESHOLD,
    hashes: list[str | None] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    device: str | None = None,
) -> DuplicateReport:
    """Near-duplicate pairs and groups of images from their features (and file hashes).

    Args:
        features: `[N, D]` frozen features of the images.
        paths: `[N]` the images' paths (or names), in the order of `features`.
        threshold: the smallest cosine similarity of a near-duplicate pair, in (-1, 1].
        hashes: content hashes of the files (`content_hashes(paths)`), or None to compare
            features only. Equal hashes are exact duplicates, listed with similarity 1.0.
        block_size, device: of the blocked search (`kclr.curate.search.pairs_above`).

    Returns:
        A `DuplicateReport`.
    """
    features = np.asarray(features)
    paths = [str(p) for p in paths]
    if len(paths) != len(features):
        raise ValueError(
            f"Got {len(features)} feature rows but {len(paths)} paths; they must match one to one."
        )
    if not -1.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold is a cosine similarity in (-1, 1]; received {threshold}.")
    exact_sets = _exact_sets(hashes) if hashes is not None else []
    # One representative (the first) per set of identical files goes into the search.
    copies_of = {members[0]: members[1:] for members in exact_sets}
    dropped = {m for members in exact_sets for m in members[1:]}
    kept = np.array([k for k in range(len(paths)) if k not in dropped], np.int64)
    i, j, s = pairs_above(features[kept], threshold, block_size=block_size, device=device)
    i, j = kept[i], kept[j]
    # Expand each representative's pairs to its identical copies, and add the exact pairs.
    extra_i, extra_j, extra_s = [], [], []
    for a, b, value in zip(i.tolist(), j.tolist(), s.tolist(), strict=True):
        for ca in [a, *copies_of.get(a, [])]:
            for cb in [b, *copies_of.get(b, [])]:
                if (ca, cb) != (a, b):
                    extra_i.append(min(ca, cb))
                    extra_j.append(max(ca, cb))
                    extra_s.append(value)
    exact = 0
    for members in exact_sets:
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                extra_i.append(a)
                extra_j.append(b)
                extra_s.append(1.0)
                exact += 1
    if extra_s:
        i = np.concatenate([i, np.asarray(extra_i, np.int64)])
        j = np.concatenate([j, np.asarray(extra_j, np.int64)])
        s = np.concatenate([s, np.asarray(extra_s, np.float32)])
        order = np.lexsort((j, i, -s))
        i, j, s = i[order], j[order], s[order]
    groups = connected_groups(len(paths), i, j)
    return DuplicateReport(
        pairs=[(paths[a], paths[b], float(v)) for a, b, v in zip(i, j, s, strict=True)],
        groups=[[paths[m] for m in group] for group in groups],
        threshold=float(threshold),
        exact=exact,
    )
