"""A subset of images to label: TypiClust and k-centre greedy on frozen features.

- `typiclust` (Hacohen, Dekel and Weinshall, "Active Learning on a Budget", ICML 2022):
  k-means into `labelled + budget` clusters (at most `max_clusters`), then, from the
  largest clusters holding no labelled image first, the most typical image of each
  cluster; typicality is the inverse mean Euclidean distance to its `k` nearest
  neighbours in the cluster. It beats random selection at low budgets in
  self-supervised feature spaces, where k-centre picks outliers.
- `kcenter` (Sener and Savarese, "Active Learning for Convolutional Neural Networks: A
  Core-Set Approach", ICLR 2018): greedy k-centre, each pick the image farthest from
  every image picked or labelled so far.

Both work on L2-normalised features (Euclidean distance is then `sqrt(2 - 2 cos)`). Two
near-duplicates (cosine similarity >= `threshold`) are never both picked, nor an image
and a near-duplicate of a labelled one. Where kclr differs from the authors' code:
TypiClust's k-means is kclr's own (best of 3 greedy k-means++ starts, Lloyd iterations, NumPy)
instead of scikit-learn's, typicality is computed once per cluster over all its members (the
authors recompute it without the images already picked), and clusters smaller than
`min_cluster_size` are used last instead of never (so that exactly `budget` images come
back); k-centre starts from a seeded random image when nothing is labelled.
`DEFAULT_METHOD` is the one that did better on measured data (docs/curate.md).
"""

from __future__ import annotations

import numpy as np

from kclr.curate.search import DEFAULT_BLOCK_SIZE, normalise, top_k

METHODS = ("typiclust", "kcenter", "random")
DEFAULT_METHOD = "typiclust"


class BudgetError(ValueError):
    """The budget cannot be met: more images asked for than there are to choose from."""


def _blocker(x: np.ndarray, threshold: float):
    """`block(index, blocked)` marks the near-duplicates of image `index` in `blocked`."""

    def block(index: int, blocked: np.ndarray) -> np.ndarray:
        similarity = x @ x[index]
        blocked |= similarity >= threshold
        blocked[index] = True
        return similarity

    return block


def _initial_blocked(x, labelled, threshold, block_size) -> np.ndarray:
    """Labelled images and the near-duplicates of a labelled image are not picked."""
    blocked = np.zeros(len(x), bool)
    if len(labelled):
        nearest, _ = top_k(x, x[labelled], 1, block_size=block_size)
        blocked |= nearest[:, 0] >= threshold
        blocked[labelled] = True
    return blocked


def _short(budget: int, picked: int, total: int, threshold: float) -> BudgetError:
    return BudgetError(
        f"Only {picked} of {total} images can be picked without taking two near-duplicates "
        f"(cosine similarity >= {threshold}) or a near-duplicate of a labelled image, but "
        f"budget={budget}. Lower the budget, or raise the threshold."
    )


def kcenter_greedy(
    features,
    budget: int,
    labelled=(),
    threshold: float = 1.0,
    seed: int = 0,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> np.ndarray:
    """Greedy k-centre (Sener and Savarese, 2018): `budget` indices, in the order picked.

    Args:
        features: `[N, D]` features.
        budget: how many images to pick.
        labelled: indices already labelled (the centres to start from).
        threshold: images this cosine-similar to a picked or labelled one are skipped.
        seed: chooses the first image when nothing is labelled.
        block_size: of the blocked search for the labelled images' near-duplicates.
    """
    x = normalise(features)
    labelled = np.asarray(labelled, np.int64).reshape(-1)
    blocked = _initial_blocked(x, labelled, threshold, block_size)
    block = _blocker(x, threshold)
    # Squared distance 2 - 2 cos to the nearest centre (labelled or picked).
    nearest = np.full(len(x), np.inf, np.float32)
    if len(labelled):
        best, _ = top_k(x, x[labelled], 1, block_size=block_size)
        nearest = 2.0 - 2.0 * best[:, 0]
    picked: list[int] = []
    rng = np.random.default_rng(seed)
    while len(picked) < budget:
        free = np.flatnonzero(~blocked)
        if not len(free):
            raise _short(budget, len(picked), len(x) - len(labelled), threshold)
        if not picked and not len(labelled):
            index = int(rng.choice(free))
        else:
            index = int(free[np.argmax(nearest[free])])
        picked.append(index)
        similarity = block(index, blocked)
        nearest = np.minimum(nearest, 2.0 - 2.0 * similarity)
    return np.asarray(picked, np.int64)


def kmeans(
    features,
    clusters: int,
    seed: int = 0,
    restarts: int = 3,
    iterations: int = 100,
    block_size: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """k-means: the best of `restarts` runs (greedy k-means++ start, Lloyd iterations until
    no assignment changes), by the sum of squared distances.

    Returns:
        `(assignments [N] int64, centres [clusters, D] float32)`.
    """
    x = np.asarray(features, np.float32)
    n = len(x)
    if not 1 <= clusters <= n:
        raise ValueError(f"clusters must be between 1 and {n}; received {clusters}.")
    best = None
    for rng in (np.random.default_rng([seed, r]) for r in range(max(1, restarts))):
        assignments, centres, inertia = _lloyd(x, _kmeans_plus_plus(x, clusters, rng),
                                               iterations, block_size)  # fmt: skip
        if best is None or inertia < best[2]:
            best = (assignments, centres, inertia)
    return best[0], best[1]


def _kmeans_plus_plus(x: np.ndarray, clusters: int, rng) -> np.ndarray:
    """Greedy k-means++ (as scikit-learn): each centre the best of `2 + log k` draws."""
    n = len(x)
    squared = np.einsum("nd,nd->n", x, x)

    def to(indices):  # squared distances [len(indices), n]
        return np.maximum(squared[indices, None] - 2 * x[indices] @ x.T + squared[None], 0.0)

    chosen = [int(rng.integers(n))]
    distance = to(np.array(chosen))[0]
    trials = 2 + int(np.log(clusters))
    for _ in range(1, clusters):
        total = float(distance.sum())
        if total <= 0:
            candidates = rng.integers(n, size=trials)
        else:
            candidates = rng.choice(n, size=trials, p=distance / total)
        potentials = np.minimum(distance[None], to(candidates))
        best = int(np.argmin(potentials.sum(1)))
        chosen.append(int(candidates[best]))
        distance = potentials[best]
    return x[chosen].astype(np.float32)


def _lloyd(x, centres, iterations, block_size):
    n, clusters = len(x), len(centres)
    assignments = np.full(n, -1, np.int64)
    nearest = np.zeros(n, np.float32)
    for _ in range(iterations):
        new = np.empty(n, np.int64)
        c_squared = np.einsum("kd,kd->k", centres, centres)
        for r0 in range(0, n, block_size):
            partial = c_squared[None, :] - 2 * x[r0 : r0 + block_size] @ centres.T
            new[r0 : r0 + block_size] = np.argmin(partial, 1)
            nearest[r0 : r0 + block_size] = partial.min(1)
        if np.array_equal(new, assignments):
            break
        assignments = new
        counts = np.bincount(assignments, minlength=clusters)
        order = np.argsort(assignments, kind="stable")
        filled = counts > 0
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[filled]
        centres[filled] = np.add.reduceat(x[order], starts, axis=0) / counts[filled, None]
    inertia = float((nearest + np.einsum("nd,nd->n", x, x)).sum())
    return assignments, centres, inertia


def typicality(features, k: int = 20, block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """TypiClust's typicality: `1 / (mean Euclidean distance to the k nearest neighbours)`.

    `k` is capped at half the rows (as the authors do for small clusters); one row alone
    has typicality 1.
    """
    x = normalise(features)
    k = min(int(k), len(x) // 2)
    if k < 1:
        return np.ones(len(x), np.float32)
    similarity, _ = top_k(x, x, k, block_size=block_size, exclude_self=True)
    distance = np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0)).mean(axis=1)
    return (1.0 / (distance + 1e-5)).astype(np.float32)


def typiclust(
    features,
    budget: int,
    labelled=(),
    threshold: float = 1.0,
    seed: int = 0,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
    neighbours: int = 20,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> np.ndarray:
    """TypiClust (Hacohen et al., 2022): `budget` indices, in the order picked.

    Args:
        features: `[N, D]` features.
        budget: how many images to pick.
        labelled: indices already labelled (their clusters count as covered).
        threshold: images this cosine-similar to a picked or labelled one are skipped.
        seed: of k-means.
        max_clusters: at most this many clusters (the authors' 500).
        min_cluster_size: smaller clusters are used only after all larger ones (5).
        neighbours: `k` of typicality (the authors' 20).
        block_size: of the blocked kNN search.
    """
    x = normalise(features)
    labelled = np.asarray(labelled, np.int64).reshape(-1)
    clusters = max(1, min(len(labelled) + budget, max_clusters, len(x)))
    assignments, _ = kmeans(x, clusters, seed=seed)
    sizes = np.bincount(assignments, minlength=clusters)
    covered = np.bincount(assignments[labelled], minlength=clusters)
    # Uncovered clusters first, then large ones first; clusters too small go last.
    order = [c for c in np.lexsort((-sizes, covered, sizes < min_cluster_size)) if sizes[c] > 0]
    blocked = _initial_blocked(x, labelled, threshold, block_size)
    block = _blocker(x, threshold)
    typical: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    picked: list[int] = []
    while len(picked) < budget:
        progressed = False
        for cluster in order:
            if len(picked) == budget:
                break
            if cluster not in typical:
                members = np.flatnonzero(assignments == cluster)
                scores = typicality(x[members], neighbours, block_size)
                ranked = members[np.argsort(-scores, kind="stable")]
                typical[cluster] = ranked
            free = typical[cluster][~blocked[typical[cluster]]]
            if not len(free):
                continue
            picked.append(int(free[0]))
            block(int(free[0]), blocked)
            progressed = True
        if not progressed:
            raise _short(budget, len(picked), len(x) - len(labelled), threshold)
    return np.asarray(picked, np.int64)


def random_subset(
    features, budget: int, labelled=(), threshold: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Uniformly random images (seeded), skipping near-duplicates as the others do."""
    x = normalise(features)
    labelled = np.asarray(labelled, np.int64).reshape(-1)
    blocked = _initial_blocked(x, labelled, threshold, DEFAULT_BLOCK_SIZE)
    block = _blocker(x, threshold)
    picked: list[int] = []
    for index in np.random.default_rng(seed).permutation(len(x)):
        if len(picked) == budget:
            break
        if not blocked[index]:
            picked.append(int(index))
            block(int(index), blocked)
    if len(picked) < budget:
        raise _short(budget, len(picked), len(x) - len(labelled), threshold)
    return np.asarray(picked, np.int64)


def select_indices(
    features,
    budget: int,
    method: str = DEFAULT_METHOD,
    labelled=(),
    threshold: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """`budget` distinct indices chosen by `method` (`"typiclust"`, `"kcenter"` or `"random"`)."""
    n = len(features)
    labelled = np.unique(np.asarray(labelled, np.int64).reshape(-1))
    budget = int(budget)
    if budget < 1:
        raise BudgetError(f"budget must be at least 1; received {budget}.")
    if budget > n - len(labelled):
        raise BudgetError(
            f"budget={budget} is larger than the {n - len(labelled)} unlabelled images to "
            f"choose from ({n} in all, {len(labelled)} labelled). Lower --budget to at most "
            f"{n - len(labelled)}, or add images."
        )
    if method == "typiclust":
        return typiclust(features, budget, labelled, threshold, seed)
    if method == "kcenter":
        return kcenter_greedy(features, budget, labelled, threshold, seed)
    if method == "random":
        return random_subset(features, budget, labelled, threshold, seed)
    raise ValueError(f"Unknown selection method {method!r}; expected one of {', '.join(METHODS)}.")
