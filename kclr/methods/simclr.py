"""`SimCLR`: the built-in method, SimCLR and SupCon (the `loss` spec chooses which).

Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020; Khosla et al., "Supervised Contrastive Learning", NeurIPS
2020. All views go through the encoder and the projection head as one batch
(`kclr.trainer.step.forward`) and the compiled contrastive loss (NT-Xent, SupCon or one
of the SimCLR paper's ablation losses) takes the projections `[B, V, D]`.

The method owns the memory queue of SupCon's "MoCo trick": when the compiled loss asks
for one (`SupCon(queue_size=...)`), the method creates the `kclr.losses.MemoryQueue`
(its sublayer, so the queue's variables are the trainer's weights and checkpoints),
hands it to the loss as its extra candidates, sizes it from the first projections and
pushes each step's projections after the optimizer applied the gradients.

Gradient caching (`gradient_cache_chunk_size`) is supported: the step then runs chunk
by chunk (`kclr.trainer.gradient_cache`), equal to one step on one replica per chunk.
"""

from __future__ import annotations

from kclr.losses.queue import MemoryQueue
from kclr.methods.base import Method
from kclr.registry import methods
from kclr.trainer.batches import assert_equal_replica_batches
from kclr.trainer.gradient_cache import gradient_cache_step
from kclr.trainer.step import StepOutputs, forward, losses, plain_step


@methods.register(
    "simclr", description="SimCLR / SupCon: all views through one forward, the `loss` spec's loss"
)
class SimCLR(Method):
    """SimCLR and SupCon: the encoder and projection head trained by the compiled loss.

    The `loss` spec picks the objective (`ntxent`: SimCLR, `supcon`: SupCon, or an
    ablation loss). The memory queue of `SupCon(queue_size=...)` belongs to this method.

    Example:

    ```python
    trainer = kclr.ContrastiveTrainer(encoder, head, method="simclr")
    trainer.compile(optimizer="lars", loss={"name": "supcon", "config": {"queue_size": 4096}})
    ```
    """

    reads = {
        "encoder": "the encoder trained and exported",
        "projection_head": "the projection head on every view",
        "loss": "the contrastive loss of the projections (NT-Xent, SupCon, ...)",
        "optimizer": "the optimizer of every trainable variable",
        "schedule": "the optimizer's learning rate",
        "augmentation": "the views of each image",
    }
    supports_gradient_cache = True
    uses_loss = True

    def __init__(self, name: str = "simclr", **kwargs):
        super().__init__(name=name, **kwargs)
        self.loss = None
        self.memory_queue = None

    def bind(self, loss) -> None:
        """Takes the compiled loss; creates the memory queue it asks for (`queue_size`)."""
        self.loss = loss
        size = getattr(loss, "queue_size", None)
        if size is None:
            return
        if self.memory_queue is None or self.memory_queue.size != size:
            self.memory_queue = MemoryQueue(size)
        loss.memory_queue = self.memory_queue  # the loss's extra candidates

    def build_state(self, projection) -> None:
        if self.memory_queue is not None:
            self.memory_queue.build_for(projection)

    def step(self, context, views, labels):
        if self.gradient_cache_chunk_size is None:
            return plain_step(context, views, labels)
        return gradient_cache_step(context, views, labels)

    def after_apply(self, context, outputs, labels) -> None:
        if self.memory_queue is not None:  # the step's projections join the queue
            self.memory_queue.enqueue(outputs.projections, labels)

    def evaluate_step(self, context, views, labels) -> StepOutputs:
        images, num_views, batch = context.batches.to_images(views, training=False)
        assert_equal_replica_batches(batch)
        outputs = forward(context.parts, images, num_views, training=False)
        _, contrastive, sup = losses(context, outputs, labels, num_views)
        return StepOutputs(outputs.projections, outputs.logits, contrastive, sup, num_views)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}
