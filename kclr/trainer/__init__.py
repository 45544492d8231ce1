"""Contrastive pretraining: `ContrastiveTrainer` and the official SimCLR metrics."""

from kclr.trainer.metrics import (
    LastValue,
    contrastive_accuracy,
    contrastive_entropy,
    contrastive_logits,
)
from kclr.trainer.trainer import ContrastiveTrainer

__all__ = [
    "ContrastiveTrainer",
    "LastValue",
    "contrastive_accuracy",
    "contrastive_entropy",
    "contrastive_logits",
]
