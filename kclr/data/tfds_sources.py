"""TensorFlow Datasets sources (`"tfds:NAME"`, needs `pip install kclr[tfds]`)."""

from __future__ import annotations

from kclr.data.source_types import TEST_SPLIT_NAMES, Source


def import_tfds():
    """Imports `tensorflow_datasets`, with an install hint when it is missing."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "'tfds:' data sources need TensorFlow Datasets: `pip install kclr[tfds]`."
        ) from error
    return tfds


def tfds_source(name: str, split: str, data_dir: str | None) -> Source:
    """A `Source` of TFDS dataset `name`; a missing test split falls back to val/validation."""
    tfds = import_tfds()
    builder = tfds.builder(name, data_dir=data_dir)
    splits = builder.info.splits
    if splits and split != "train" and split not in splits:
        split = next((s for s in TEST_SPLIT_NAMES if s in splits), split)
    if splits and split not in splits:
        raise ValueError(
            f"TFDS dataset {name!r} has no split {split!r}; available: {sorted(splits)}."
        )
    features = builder.info.features
    label = features["label"] if "label" in features.keys() else None
    num_classes = getattr(label, "num_classes", None)
    return Source(
        kind="tfds",
        name=f"tfds:{name}[{split}]",
        tfds_name=name,
        tfds_split=split,
        data_dir=data_dir,
        has_labels=label is not None,
        num_classes=num_classes,
        class_names=list(getattr(label, "names", []) or []) or None,
        counter=tfds_count,
    )


def tfds_count(source: Source) -> int:
    """Number of examples of a TFDS source (after its subset, if any)."""
    tfds = import_tfds()
    builder = tfds.builder(source.tfds_name, data_dir=source.data_dir)
    if source.filename_filter is not None:
        return len(source.filename_filter)
    return int(builder.info.splits[source.tfds_split].num_examples)
