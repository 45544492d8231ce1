"""`Method`: the contract between `ContrastiveTrainer` and a way of training.

A training method is what differs from one self-supervised recipe to the next once the
encoder, the data and the optimizer are fixed: the parts it adds to the encoder (a
momentum copy, a predictor), how one step computes its gradients, what happens after
the optimizer applies them (an EMA update, a queue push), the state it keeps, the
metrics it reports and which encoder a run exports. `ContrastiveTrainer` owns the
encoder, the projection head, the optional supervised head, the optimizer and the
batch preparation; it runs any method through the hooks below and never branches on
which method it runs.

| hook | when | what |
|---|---|---|
| `attach(encoder, projection_head)` | the trainer's `__init__` | create the parts the method adds (sublayers of the method, so Keras tracks and checkpoints them) |
| `set_gradient_cache(chunk_size)` | the trainer's `__init__` | accept gradient caching, or refuse it by name |
| `bind(loss)` | `compile` | take the compiled contrastive loss (or refuse one it does not use) |
| `build_state(projection)` | `compile`, or the first forward | create state sized from the projections (e.g. a memory queue) |
| `step(context, views, labels)` | `train_step` | the gradients of one batch, nothing applied |
| `after_apply(context, outputs, labels)` | `train_step`, after `optimizer.apply` | EMA updates, queue pushes |
| `metrics_list` / `update_metrics(outputs)` | `train_step` | the method's own metrics besides the trainer's |
| `export_encoder(encoder)` | export, `kclr eval`, the neighbours grid | the encoder a run hands on |

A method is a `keras.layers.Layer` that is never called: being one makes every
variable it creates (a momentum encoder, a predictor, a queue) part of the trainer's
`weights`, so `save_weights`, `.keras` files, `kclr fit` checkpoints and `--resume`
cover them with no list kept by hand. Variables that gradients must not train (a
momentum copy) are made non-trainable variable by variable (`freeze_variables`), which
keeps their layers in training mode (BatchNorm on batch statistics).

Run configuration: a method is the `method` spec `{name, config}` of a run. It declares
which of the run's other component specs it reads (`reads`, section -> how it uses it)
and why it ignores the others (`ignores`, section -> reason); `kclr fit` names each
ignored spec once in the run log.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras

# The run's component sections a method may read or ignore (`kclr.run.config.COMPONENTS`
# that shape training; the evaluation protocols are not the method's business).
TRAINING_SECTIONS = ("encoder", "projection_head", "loss", "optimizer", "schedule", "augmentation")


class MethodError(ValueError):
    """A method was configured with something it does not support."""


class Method(keras.layers.Layer):
    """Base class of training methods (see the module docstring for the contract).

    Subclasses set the class attributes and override the hooks they need; `step` is the
    only hook without a default.

    Class attributes:
        reads: `{section: how the method uses it}` for the run specs it reads.
        ignores: `{section: why it does not use it}` for the run specs it ignores.
        supports_gradient_cache: whether `train.gradient_cache_chunk_size` is accepted.
        gradient_cache_refusal: why not, when it is refused (named in the error).
        uses_loss: whether `compile(loss=...)` means anything to the method.
    """

    reads: ClassVar[dict[str, str]] = {}
    ignores: ClassVar[dict[str, str]] = {}
    supports_gradient_cache: ClassVar[bool] = False
    gradient_cache_refusal: ClassVar[str] = "it does not implement a gradient-cached step"
    uses_loss: ClassVar[bool] = False

    def __init__(self, name: str | None = None, **kwargs):
        kwargs.setdefault("trainable", True)
        super().__init__(name=name or self.method_name(), **kwargs)
        self.gradient_cache_chunk_size: int | None = None
        # Never called, so never built by Keras: what it adds is built by `attach` and
        # `build_state` (the tracker stays open for state created at `compile`).
        self.built = True

    @classmethod
    def method_name(cls) -> str:
        """The method's registered name (its class name in snake case when unregistered)."""
        from kclr import registry

        try:
            return registry.methods.name_of(cls)
        except registry.RegistryError:
            return registry.snake_case(cls.__name__)

    # ------------------------------------------------------------------ set-up
    def attach(self, encoder, projection_head) -> None:
        """Creates the parts the method adds to `encoder` and `projection_head` (none here)."""

    def set_gradient_cache(self, chunk_size: int | None) -> None:
        """Turns gradient caching on with `chunk_size` images per chunk, or refuses it."""
        if chunk_size is not None and not self.supports_gradient_cache:
            raise MethodError(
                f"The training method {self.method_name()!r} does not support gradient caching "
                f"(`train.gradient_cache_chunk_size={chunk_size}`): "
                f"{self.gradient_cache_refusal}. Unset `train.gradient_cache_chunk_size` "
                "(or `gradient_cache_chunk_size=None`) and lower the batch to fit memory."
            )
        self.gradient_cache_chunk_size = chunk_size

    def bind(self, loss) -> None:
        """Takes the compiled contrastive loss; refuses one when the method has its own."""
        if loss is not None and not self.uses_loss:
            raise MethodError(
                f"The training method {self.method_name()!r} computes its own loss; received "
                f"loss={loss!r}. Leave `loss` unset (its settings are the method's config)."
            )

    def build_state(self, projection) -> None:
        """Creates state sized from a (possibly symbolic) projection `[N, D]` (none here)."""

    # ------------------------------------------------------------------- a step
    def step(self, context, views, labels) -> tuple[list, Any]:
        """The gradients of one batch, nothing applied (a `kclr.trainer.step.StepFn`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement `step`.")

    def after_apply(self, context, outputs, labels) -> None:
        """Work after the optimizer applied the step's gradients (none here)."""

    def evaluate_step(self, context, views, labels) -> Any:
        """The `StepOutputs` of a batch in inference mode (`ContrastiveTrainer.evaluate`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement `evaluate_step`.")

    # ------------------------------------------------------------------ metrics
    @property
    def metrics_list(self) -> list:
        """The method's own `keras.metrics.Metric`s, reported after the trainer's."""
        return []

    def update_metrics(self, outputs) -> None:
        """Updates `metrics_list` from a step's `StepOutputs`."""

    def contrast_temperature(self, loss) -> tuple[float, bool]:
        """`(temperature, normalize)` of the `contrast_acc`/`contrast_entropy` logits."""
        return getattr(loss, "temperature", 1.0), getattr(loss, "normalize", True)

    # ------------------------------------------------------------------- export
    def export_encoder(self, encoder):
        """The encoder a run exports, evaluates and draws neighbours with."""
        return encoder

    # ------------------------------------------------------------ run config
    @classmethod
    def unused_specs(cls) -> dict[str, str]:
        """`{section: reason}` for each training spec of a run the method does not read."""
        return {s: cls.ignores[s] for s in TRAINING_SECTIONS if s in cls.ignores}

    def unused_spec_notes(self, config: dict) -> list[str]:
        """One run-log line per spec of `config` (a run config as a dict) the method ignores."""
        notes = []
        for section, reason in self.unused_specs().items():
            spec = config.get(section) or {}
            notes.append(
                f"Method {self.method_name()!r} does not use `{section}` "
                f"({spec.get('name', '?')!r}): {reason}."
            )
        return notes

    def call(self, inputs, *args, **kwargs):
        raise TypeError(
            f"A training method ({type(self).__name__}) is not called; "
            "`ContrastiveTrainer` runs its hooks."
        )


def freeze_variables(layers) -> list:
    """Makes every variable of `layers` non-trainable (gradients never reach them) while
    the layers stay trainable (BatchNorm keeps batch statistics in training); returns them."""
    frozen, seen = [], set()
    for layer in layers:
        for variable in layer.weights:
            if id(variable) not in seen:
                seen.add(id(variable))
                variable.trainable = False
                frozen.append(variable)
    return frozen
