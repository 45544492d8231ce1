"""Semi-supervised fine-tuning with a fraction of the labels (SimCLRv2 protocol)."""

from __future__ import annotations

import math
import warnings
from typing import Any

from kclr.evaluation.features import extract_features
from kclr.evaluation.knn import topk_accuracy


def build_classifier(encoder, num_classes: int, projection_head=None, ft_proj_selector: int = 0):
    """`encoder` (+ the first `ft_proj_selector` head layers) + a zero-initialised linear head.

    Reference: Chen et al., 2020, "Big Self-Supervised Models are Strong
    Semi-Supervised Learners" (SimCLRv2), section 2: fine-tuning "from the first
    layer of the projection head" (`ft_proj_selector=1`) keeps that layer and puts
    the new classifier on its output. With `ft_proj_selector=0` the classifier sits
    on the encoder features.

    Returns:
        A `keras.Model` mapping images to logits; every layer is trainable.
    """
    import keras

    if ft_proj_selector and projection_head is None:
        raise ValueError(
            f"ft_proj_selector={ft_proj_selector} needs the projection head, but the model "
            "has none (e.g. the SimCLR v1 releases ship the encoder only). Use "
            "ft_proj_selector=0 to fine-tune from the encoder output."
        )
    images = keras.Input(encoder.input_shape[1:], name="images")
    features = encoder(images)
    if ft_proj_selector:
        hiddens = projection_head(features)
        features = hiddens[ft_proj_selector]
    logits = keras.layers.Dense(
        num_classes, kernel_initializer="zeros", name="head_supervised", dtype="float32"
    )(features)
    return keras.Model(images, logits, name="finetuned_classifier")


def finetune(
    encoder,
    source: Any,
    label_fraction: float | None = 0.1,
    projection_head=None,
    ft_proj_selector: int = 0,
    image_size: int = 224,
    epochs: int = 60,
    batch_size: int = 1024,
    learning_rate: float = 0.005,
    learning_rate_scaling: str = "sqrt",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    optimizer: str = "lars",
    recipe: str = "finetune",
    eval_recipe: str = "eval",
    num_classes: int | None = None,
    seed: int = 0,
    verbose: int = 1,
) -> dict[str, Any]:
    """Fine-tunes the whole network on a class-balanced fraction of the labels.

    Reference: Chen et al., 2020 (SimCLRv2), section 2 and the authors' README
    command: LARS, lr 0.005 x sqrt(B), no warmup, no weight decay, BatchNorm in
    training mode, crop + flip augmentation, 60 epochs (1%) / 30 epochs (10%),
    zero-initialised logits layer, from the first projection layer
    (`ft_proj_selector=1`).

    Args:
        encoder: the pretrained encoder (it is trained in place).
        source: a labelled data source (`kclr.data.resolve_source`); its
            `"train"` split is subsampled, its `"test"` split is evaluated.
        label_fraction: fraction of the labels per class (0.01, 0.1, ...);
            None or 1 uses all labels.
        projection_head: the pretrained head (needed when `ft_proj_selector > 0`).
        ft_proj_selector: 0 = from the encoder output, 1 = from the first head layer.
        image_size: input side.
        epochs, batch_size, learning_rate, learning_rate_scaling, momentum,
            weight_decay, optimizer: the optimisation (`optimizer` is "lars" or
            "sgd", Nesterov momentum as the v1 paper).
        recipe, eval_recipe: augmentation recipes for training and evaluation.
        num_classes: number of classes (default: from the source).
        seed: seed of the label subset, shuffling and augmentation.
        verbose: Keras progress verbosity.

    Returns:
        `{"top1", "top5", "label_fraction", "num_labelled", "epochs", ...}`.

    Example:

    ```python
    encoder = kclr.zoo.load("runs/demo/export")
    kclr.evaluation.finetune(encoder, "demo", label_fraction=0.1, image_size=32, epochs=5)
    ```
    """
    import keras

    from kclr import data as kdata

    fraction = None if label_fraction in (None, 1, 1.0) else float(label_fraction)
    train_source = _labelled_subset(source, fraction, seed)
    num_labelled = kdata.num_examples(train_source)
    num_classes = int(num_classes or train_source.num_classes)
    batch_size = int(min(batch_size, num_labelled))
    steps_per_epoch = max(1, num_labelled // batch_size)
    train = kdata.labelled_dataset(
        train_source, split="train", image_size=image_size, batch_size=batch_size,
        recipe=recipe, shuffle=True, repeat=True, drop_remainder=True, seed=seed,
    )  # fmt: skip
    keras.utils.set_random_seed(seed)
    model = build_classifier(encoder, num_classes, projection_head, ft_proj_selector)
    opt = _optimizer(
        optimizer, learning_rate, learning_rate_scaling, batch_size,
        steps_per_epoch * int(epochs), momentum, weight_decay,
    )  # fmt: skip
    _compile_and_fit(model, opt, train, int(epochs), steps_per_epoch, verbose)
    return {
        **_test_accuracy(model, source, image_size, eval_recipe),
        "label_fraction": 1.0 if fraction is None else fraction,
        "num_labelled": int(num_labelled),
        "num_classes": num_classes,
        "epochs": int(epochs),
        "batch_size": batch_size,
        "ft_proj_selector": int(ft_proj_selector),
        "learning_rate": float(learning_rate),
        "learning_rate_scaling": learning_rate_scaling,
        "model": model,
    }


def _labelled_subset(source: Any, fraction: float | None, seed: int):
    """The `"train"` split of `source`, reduced to `fraction` of the labels per class."""
    from kclr import data as kdata

    train_source = kdata.resolve_source(
        source, "train", label_fraction=fraction, label_fraction_seed=seed
    )
    if not train_source.has_labels:
        raise ValueError(f"Fine-tuning needs labels; the source {source!r} has none.")
    return train_source


def _test_accuracy(model, source: Any, image_size: int, eval_recipe: str) -> dict[str, Any]:
    """Top-1 / top-5 accuracy of the classifier `model` on the `"test"` split of `source`."""
    from kclr import data as kdata

    test = kdata.labelled_dataset(
        source, split="test", image_size=image_size, batch_size=256, recipe=eval_recipe
    )
    out = extract_features(model, test)
    return topk_accuracy(out["features"], out["labels"])


def _optimizer(name, learning_rate, scaling, batch_size, total_steps, momentum, weight_decay):
    """LARS or Nesterov SGD with a cosine decay from the scaled peak rate, no warmup."""
    import keras

    from kclr import optimizers

    if scaling == "sqrt":
        peak = learning_rate * math.sqrt(batch_size)
    else:
        peak = learning_rate * batch_size / 256.0
    schedule = keras.optimizers.schedules.CosineDecay(peak, max(1, total_steps))
    if name == "lars":
        return optimizers.LARS(schedule, momentum=momentum, weight_decay=weight_decay)
    if name == "sgd":
        return keras.optimizers.SGD(
            schedule, momentum=momentum, nesterov=True, weight_decay=weight_decay or None
        )
    raise ValueError(f"optimizer must be 'lars' or 'sgd'; received {name!r}.")


def _compile_and_fit(model, optimizer, train, epochs: int, steps_per_epoch: int, verbose) -> None:
    import keras

    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    with warnings.catch_warnings():
        # With ft_proj_selector=1 the head layers above the first get no gradient (the
        # whole head is built, as the authors do, so that its weights stay loadable).
        warnings.filterwarnings("ignore", message="Gradients do not exist")
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")
        model.fit(
            train, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=verbose, shuffle=False
        )
