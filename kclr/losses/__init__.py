"""Contrastive losses: NT-Xent (SimCLR), SupCon (L_out / L_in) and the SimCLR paper's ablations.

All share one masked-logits core (`kclr.losses.core`) and gather candidates
from every replica under `tf.distribute`, so negatives come from the global batch.
"""

from kclr.losses.core import contrastive_loss, cross_replica_concat, masked_logits
from kclr.losses.margin_triplet import MarginTriplet, margin_triplet
from kclr.losses.nt_logistic import NTLogistic, nt_logistic
from kclr.losses.ntxent import NTXent, nt_xent
from kclr.losses.queue import MemoryQueue
from kclr.losses.supcon import SupCon, supcon

__all__ = [
    "MarginTriplet",
    "MemoryQueue",
    "NTLogistic",
    "NTXent",
    "SupCon",
    "contrastive_loss",
    "cross_replica_concat",
    "margin_triplet",
    "masked_logits",
    "nt_logistic",
    "nt_xent",
    "supcon",
]
