"""NumPy references of the contrastive losses, written from the authors' code."""

from __future__ import annotations

import numpy as np


def l2n(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def official_simclr(hidden, temperature):
    """SimCLR tf2/objective.py add_contrastive_loss on [2n, d], single replica (2x scale)."""
    hidden = l2n(hidden.astype(np.float64))
    h1, h2 = np.split(hidden, 2)
    n = h1.shape[0]
    labels = np.eye(n, 2 * n)
    masks = np.eye(n)
    aa = h1 @ h1.T / temperature - masks * 1e9
    bb = h2 @ h2.T / temperature - masks * 1e9
    ab = h1 @ h2.T / temperature
    ba = h2 @ h1.T / temperature
    loss_a = -(labels * log_softmax(np.concatenate([ab, aa], 1))).sum(1)
    loss_b = -(labels * log_softmax(np.concatenate([ba, bb], 1))).sum(1)
    return np.mean(loss_a + loss_b)


def hobbitlong_supcon(
    features,
    labels=None,
    temperature=0.07,
    base_temperature=0.07,
    contrast_mode="all",
    summation="outside",
):
    """HobbitLong SupConLoss (2023 version, zero-positive anchors give 0), loops kept plain."""
    features = l2n(features.astype(np.float64))
    bsz, views, _ = features.shape
    if labels is None:
        mask = np.eye(bsz)
    else:
        labels = np.asarray(labels).reshape(-1, 1)
        mask = (labels == labels.T).astype(np.float64)
    contrast = np.concatenate([features[:, v] for v in range(views)], 0)  # view-major
    if contrast_mode == "one":
        anchor, anchor_count = features[:, 0], 1
    else:
        anchor, anchor_count = contrast, views
    logits = anchor @ contrast.T / temperature
    mask = np.tile(mask, (anchor_count, views))
    logits_mask = np.ones_like(mask)
    for i in range(bsz * anchor_count):
        logits_mask[i, i] = 0
    mask = mask * logits_mask
    losses = []
    for i in range(logits.shape[0]):
        cols = np.nonzero(logits_mask[i])[0]
        log_denominator = np.log(np.exp(logits[i, cols]).sum())
        positives = np.nonzero(mask[i])[0]
        if len(positives) == 0:
            losses.append(0.0)
            continue
        if summation == "outside":
            value = np.mean(logits[i, positives] - log_denominator)
        else:
            value = np.log(np.mean(np.exp(logits[i, positives] - log_denominator)))
        losses.append(-(temperature / base_temperature) * value)
    return float(np.mean(losses))


def supcon_with_queue(
    features,
    labels,
    queue_features,
    queue_labels,
    queue_valid,
    temperature=0.07,
    base_temperature=0.07,
    contrast_mode="all",
    summation="outside",
):
    """HobbitLong SupConLoss with a memory queue appended to the candidates, loops kept plain.

    Queue entries are candidates only (never anchors). A filled entry is in every
    anchor's denominator and is a positive when its label equals the anchor's (never
    when `labels` is None); unfilled entries (`queue_valid` 0) are ignored.
    """
    features = l2n(features.astype(np.float64))
    bsz, views, _ = features.shape
    batch_labels = np.arange(bsz) if labels is None else np.asarray(labels)
    contrast = [features[i % bsz, i // bsz] for i in range(views * bsz)]  # view-major
    contrast_labels = [batch_labels[i % bsz] for i in range(views * bsz)]
    for entry, label, valid in zip(queue_features, queue_labels, queue_valid, strict=True):
        if valid:
            contrast.append(entry / np.linalg.norm(entry))
            contrast_labels.append(None if labels is None else label)
    anchors = range(bsz) if contrast_mode == "one" else range(views * bsz)
    losses = []
    for a in anchors:
        anchor = contrast[a]
        others = [j for j in range(len(contrast)) if j != a]
        logits = {j: float(anchor @ contrast[j]) / temperature for j in others}
        log_denominator = np.log(sum(np.exp(v) for v in logits.values()))
        positives = [j for j in others if contrast_labels[j] == contrast_labels[a]]
        if not positives:
            losses.append(0.0)
            continue
        log_probs = [logits[j] - log_denominator for j in positives]
        if summation == "outside":
            value = np.mean(log_probs)
        else:
            value = np.log(np.mean(np.exp(log_probs)))
        losses.append(-(temperature / base_temperature) * value)
    return float(np.mean(losses))
