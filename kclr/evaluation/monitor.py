"""`KNNMonitor`: an online kNN accuracy logged at the end of training epochs."""

from __future__ import annotations

from typing import Any

import keras

from kclr.evaluation.features import extract_features
from kclr.evaluation.knn import knn_evaluate


class KNNMonitor(keras.callbacks.Callback):
    """Logs the weighted cosine kNN accuracy of the encoder on a labelled split.

    Reference: Wu et al., "Unsupervised Feature Learning via Non-Parametric
    Instance Discrimination", CVPR 2018 (the kNN monitor also used by solo-learn).

    At the end of every `every_n_epochs`-th epoch the encoder (`model.encoder`
    for a `kclr.ContrastiveTrainer`, or `encoder` if given) embeds `train_data`
    (the memory bank) and `test_data` with BatchNorm in inference mode, and
    `knn_top1` / `knn_top5` (percent) are added to the epoch logs, so that the
    CSV logger, TensorBoard and the progress line show them. Put this callback
    before loggers in the callback list.

    Args:
        train_data: labelled memory bank: NumPy `(images, labels)` or a finite
            tf.data.Dataset of `(images, labels)` batches.
        test_data: labelled data to classify, same forms.
        k: neighbours (200).
        temperature: vote temperature (0.07).
        every_n_epochs: evaluation period in epochs.
        encoder: the model to evaluate (default: `model.encoder`).
        batch_size: batch size for NumPy inputs.
        prefix: name prefix of the logged metrics.

    Example:

    ```python
    monitor = kclr.evaluation.KNNMonitor(kclr.data.demo.load("train"),
                                         kclr.data.demo.load("test"), k=200)
    trainer.fit(dataset, epochs=10, steps_per_epoch=100, callbacks=[monitor])
    ```
    """

    def __init__(
        self,
        train_data: Any,
        test_data: Any,
        k: int = 200,
        temperature: float = 0.07,
        every_n_epochs: int = 1,
        encoder=None,
        batch_size: int = 256,
        prefix: str = "knn",
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1; received {every_n_epochs}.")
        self.train_data = train_data
        self.test_data = test_data
        self.k = int(k)
        self.temperature = float(temperature)
        self.every_n_epochs = int(every_n_epochs)
        self.encoder = encoder
        self.batch_size = int(batch_size)
        self.prefix = prefix
        self.history: list[dict[str, float]] = []

    def evaluate(self) -> dict[str, float]:
        """Computes kNN top-1 / top-5 (percent) now, with the current weights."""
        encoder = self.encoder if self.encoder is not None else self.model.encoder
        bank = extract_features(encoder, self.train_data, batch_size=self.batch_size)
        queries = extract_features(encoder, self.test_data, batch_size=self.batch_size)
        if "labels" not in bank or "labels" not in queries:
            raise ValueError("KNNMonitor needs labelled train and test data (images, labels).")
        return knn_evaluate(
            bank["features"],
            bank["labels"],
            queries["features"],
            queries["labels"],
            k=self.k,
            temperature=self.temperature,
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        result = self.evaluate()
        self.history.append({"epoch": epoch + 1, **result})
        if logs is not None:
            logs[f"{self.prefix}_top1"] = result["top1"]
            logs[f"{self.prefix}_top5"] = result["top5"]
