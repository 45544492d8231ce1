"""Run configuration: a validated, nested schema for presets, files and `--set` overrides.

A kclr run is described by one `Config` with six sections, `model`, `loss`,
`optimizer`, `data`, `train` and `eval`. Presets (`kclr.presets`) are partial
dictionaries merged over the defaults below; a YAML/JSON file and `key=value`
overrides are merged on top, in that order. Every key and value is checked:
an unknown key or a bad value raises `ConfigError`, which names the key, says
what was expected and suggests the closest valid key.

The defaults are the SimCLR v1 paper's ImageNet recipe (Chen et al., 2020,
"A Simple Framework for Contrastive Learning of Visual Representations",
section B.1 and `google-research/simclr` flags): ResNet-50, a 2-layer projection
head to 128-d, NT-Xent with T=0.1, LARS with lr 0.3 x B/256, 10 warmup epochs,
cosine decay, weight decay 1e-6, batch 4096, 100 epochs.

Example:

```python
from kclr import config

cfg = config.resolve("simclr_r50", overrides=["optimizer.learning_rate=0.5"])
cfg.optimizer.learning_rate         # 0.5
config.to_dict(cfg)["data"]["global_batch_size"]   # 4096
```
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import pathlib
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """An unknown configuration key or an invalid value."""


@dataclasses.dataclass
class ModelConfig:
    """The encoder and its projection head.

    `encoder` is a name from `kclr.registry.encoders` ("resnet" takes `depth`;
    "resnet50" etc. fix it). `head` is a `kclr.models.ProjectionHead` version:
    "v1" (2 layers, SimCLR v1), "v2" (3 layers, SimCLRv2), "supcon" (the
    SupCon MLP), "linear" or "none". `ft_proj_selector` picks the head layer
    that fine-tuning starts from (0 = encoder output, 1 = first head layer as
    in SimCLRv2's semi-supervised protocol).
    """

    encoder: str = "resnet"
    depth: int = 50
    width_multiplier: float = 1.0
    cifar_stem: bool = False
    sk_ratio: float = 0.0
    sync_bn: bool = True
    head: str = "v1"
    projection_dim: int = 128
    hidden_dim: int | None = None
    ft_proj_selector: int = 0


@dataclasses.dataclass
class LossConfig:
    """The contrastive loss: a name from `kclr.registry.losses` and its temperatures.

    `base_temperature` is only passed to losses that take it (SupCon); `None`
    keeps the loss's own default. `queue_size` (SupCon only) adds a memory queue of
    that many past projections to the candidates (`kclr.losses.MemoryQueue`).
    """

    name: str = "ntxent"
    temperature: float = 0.1
    base_temperature: float | None = None
    queue_size: int | None = None  # gradient cache / memory queue (issue 13)


@dataclasses.dataclass
class OptimizerConfig:
    """The optimizer and its warmup + cosine learning-rate schedule.

    The peak learning rate is `learning_rate * global_batch_size / 256`
    (`learning_rate_scaling="linear"`) or `learning_rate * sqrt(global_batch_size)`
    ("sqrt"), as `kclr.optimizers.WarmupCosineDecay` computes it.
    """

    name: str = "lars"
    learning_rate: float = 0.3
    learning_rate_scaling: str = "linear"
    warmup_epochs: float = 10.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-6
    eeta: float = 0.001


@dataclasses.dataclass
class DataConfig:
    """The pretraining input pipeline (`kclr.data.pretraining_dataset`).

    `source` is anything `kclr.data.resolve_source` accepts ("demo", a folder,
    TFRecord shards, "tfds:NAME"); `kclr fit --data` sets it. `recipe_overrides`
    are passed to the augmentation recipe (e.g. `{"color_jitter_strength": 0.5}`).
    `eval_source` is the labelled data of the kNN monitor (defaults to `source`).
    """

    source: str | None = None
    eval_source: str | None = None
    recipe: str = "simclr"
    recipe_overrides: dict = dataclasses.field(default_factory=dict)
    image_size: int = 224
    global_batch_size: int = 4096
    views: int = 2
    num_examples: int | None = None


@dataclasses.dataclass
class TrainConfig:
    """Length, numerics, distribution and checkpointing of the run.

    `steps` (if set) overrides `epochs`. `checkpoint_every_steps` is how often a
    step-level checkpoint is written (plus one at every epoch end).
    `gradient_cache_chunk_size` (images; `None` = off) computes each step chunk by
    chunk with gradient caching (`kclr.trainer.gradient_cache`): the loss covers the
    whole batch, memory grows with the chunk; it must divide the per-replica batch.
    """

    epochs: int = 100
    steps: int | None = None
    precision: str = "float32"
    strategy: str = "auto"
    jit_compile: bool = False
    seed: int = 0
    checkpoint_every_steps: int = 500
    keep_checkpoints: int = 2
    export: bool = True
    gradient_cache_chunk_size: int | None = None  # gradient cache (issue 13)


@dataclasses.dataclass
class EvalConfig:
    """Evaluation settings: the kNN monitor and the linear / fine-tune protocols.

    kNN defaults follow the InstDisc / solo-learn monitors (cosine, k=200,
    temperature 0.07). `baselines` adds raw-pixel and random-encoder kNN to the
    final table of `kclr fit` (cheap only on small data such as the demo). Linear evaluation follows the SimCLR protocol (SGD with
    Nesterov momentum, lr 0.1 x B/256, 90 epochs, no warmup).
    """

    knn_k: int = 200
    knn_temperature: float = 0.07
    monitor: bool = True
    monitor_every_epochs: int = 1
    monitor_max_examples: int | None = 10000
    baselines: bool = False
    linear_epochs: int = 90
    linear_batch_size: int = 4096
    linear_learning_rate: float = 0.1
    linear_weight_decay: float = 0.0
    finetune_epochs: int = 60
    finetune_batch_size: int = 1024
    finetune_learning_rate: float = 0.005
    finetune_learning_rate_scaling: str = "sqrt"


@dataclasses.dataclass
class Config:
    """A full kclr run configuration (see the module docstring)."""

    preset: str | None = None
    description: str = ""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)


# Values restricted to a fixed set. Registry-backed names (encoder, loss, optimizer,
# recipe, head) are checked when the run is built, against the live registries.
CHOICES: dict[str, tuple[Any, ...]] = {
    "model.head": ("v1", "v2", "supcon", "linear", "none"),
    "optimizer.learning_rate_scaling": ("linear", "sqrt"),
    "eval.finetune_learning_rate_scaling": ("linear", "sqrt"),
    "train.precision": ("float32", "mixed_bfloat16", "mixed_float16"),
    "train.strategy": ("auto", "default", "mirrored", "multiworker", "tpu"),
}
POSITIVE = {
    "model.depth",
    "model.width_multiplier",
    "model.projection_dim",
    "loss.temperature",
    "data.image_size",
    "data.global_batch_size",
    "data.views",
    "train.epochs",
    "train.steps",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.gradient_cache_chunk_size",  # gradient cache / memory queue (issue 13)
    "loss.queue_size",
    "eval.knn_k",
    "eval.knn_temperature",
    "eval.monitor_every_epochs",
    "eval.linear_epochs",
    "eval.linear_batch_size",
    "eval.finetune_epochs",
    "eval.finetune_batch_size",
}
NON_NEGATIVE = {
    "optimizer.learning_rate",
    "optimizer.warmup_epochs",
    "optimizer.momentum",
    "optimizer.weight_decay",
    "eval.linear_learning_rate",
    "eval.linear_weight_decay",
    "eval.finetune_learning_rate",
    "model.sk_ratio",
}


def _suggest(name: str, valid: typing.Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def _section_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def valid_keys() -> list[str]:
    """All dotted keys of the schema, e.g. `"optimizer.learning_rate"`."""
    keys = []
    for name, hint in _section_types(Config).items():
        if dataclasses.is_dataclass(hint):
            keys.extend(f"{name}.{field}" for field in _section_types(hint))
        else:
            keys.append(name)
    return keys


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if args:
        return " or ".join("null" if a is type(None) else a.__name__ for a in args)
    return hint.__name__


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Checks `value` against the annotation `hint`; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ConfigError:
                pass
        raise ConfigError(
            f"Invalid value for `{key}`: received {value!r} ({type(value).__name__}), "
            f"expected {_type_name(hint)}."
        )
    ok = False
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif hint is str:
        ok = isinstance(value, str)
    elif hint is dict:
        ok = isinstance(value, dict)
    if not ok:
        raise ConfigError(
            f"Invalid value for `{key}`: received {value!r} ({type(value).__name__}), "
            f"expected {_type_name(hint)}."
        )
    return value


def _check_value(key: str, value: Any) -> None:
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(
            f"Invalid value for `{key}`: received {value!r}, expected one of "
            f"{list(CHOICES[key])}.{_suggest(str(value), map(str, CHOICES[key]))}"
        )
    if value is None or isinstance(value, (bool, str, dict)):
        return
    if key in POSITIVE and not value > 0:
        raise ConfigError(f"Invalid value for `{key}`: received {value!r}, expected a value > 0.")
    if key in NON_NEGATIVE and not value >= 0:
        raise ConfigError(f"Invalid value for `{key}`: received {value!r}, expected a value >= 0.")


def from_dict(values: dict[str, Any]) -> Config:
    """Builds a validated `Config` from a (possibly partial) nested dictionary.

    Missing keys take the defaults. Raises `ConfigError` for an unknown section or
    key (with the closest valid name) and for a value of the wrong type or range.
    """
    if not isinstance(values, dict):
        raise ConfigError(
            f"A configuration must be a mapping of sections, received {type(values).__name__}."
        )
    top = _section_types(Config)
    kwargs: dict[str, Any] = {}
    for name, section_values in values.items():
        if name not in top:
            raise ConfigError(
                f"Unknown configuration section {name!r}. Expected one of {sorted(top)}."
                f"{_suggest(name, top)}"
            )
        hint = top[name]
        if not dataclasses.is_dataclass(hint):
            kwargs[name] = _coerce(name, section_values, hint)
            continue
        if not isinstance(section_values, dict):
            raise ConfigError(
                f"Configuration section `{name}` must be a mapping of keys to values, "
                f"received {section_values!r}."
            )
        fields = _section_types(hint)
        section_kwargs = {}
        for key, value in section_values.items():
            dotted = f"{name}.{key}"
            if key not in fields:
                raise ConfigError(
                    f"Unknown configuration key `{dotted}`."
                    f"{_suggest(dotted, valid_keys())} Valid keys of `{name}`: "
                    f"{', '.join(fields)}."
                )
            value = _coerce(dotted, value, fields[key])
            _check_value(dotted, value)
            section_kwargs[key] = copy.deepcopy(value)
        kwargs[name] = hint(**section_kwargs)
    return Config(**kwargs)


def to_dict(config: Config) -> dict[str, Any]:
    """The configuration as a plain nested dictionary (JSON/YAML serialisable)."""
    return dataclasses.asdict(config)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merges `update` into a copy of `base` (dict values merge, others replace)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "recipe_overrides":
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict[str, Any]:
    """Parses one `section.key=value` override into a nested dictionary.

    The value is read as YAML, so `0.5`, `true`, `null`, `[1, 2]` and
    `{color_jitter_strength: 0.5}` have their natural types; quote a string
    that would otherwise parse as a number.
    """
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"Invalid override {text!r}: expected `section.key=value`, "
            "e.g. `--set optimizer.learning_rate=0.5`."
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"Invalid value in override {text!r}: {error}") from None
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in ("preset", "description"):
        return {parts[0]: value}
    if len(parts) < 2:
        raise ConfigError(
            f"Invalid override key {key!r}: expected `section.key` with a section among "
            f"{[k for k in _section_types(Config) if k not in ('preset', 'description')]}."
            f"{_suggest(key, valid_keys())}"
        )
    nested: dict[str, Any] = {}
    cursor = nested
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def load_file(path: str | pathlib.Path) -> dict[str, Any]:
    """Reads a (partial) configuration from a `.yaml`, `.yml` or `.json` file."""
    import yaml

    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"Configuration file not found: {str(path)!r}.")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            values = json.loads(text)
        else:
            values = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"Could not parse configuration file {str(path)!r}: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"Configuration file {str(path)!r} must hold a mapping of sections, "
            f"received {type(values).__name__}."
        )
    return values


def resolve(
    preset: str | None = None,
    files: typing.Sequence[str | pathlib.Path] = (),
    overrides: typing.Sequence[str] = (),
    values: dict[str, Any] | None = None,
) -> Config:
    """Resolves a preset, config files, a dictionary and `key=value` overrides into a `Config`.

    Later sources win: preset < files (in order) < `values` < overrides.

    Args:
        preset: a preset name from `kclr.presets.names()`, or None for the defaults.
        files: YAML/JSON files with partial configurations.
        overrides: strings like `"optimizer.learning_rate=0.5"`.
        values: a partial nested dictionary.

    Returns:
        A validated `Config`.

    Example:

    ```python
    cfg = kclr.config.resolve("demo", overrides=["train.epochs=2"])
    ```
    """
    from kclr import presets

    merged: dict[str, Any] = {}
    if preset is not None:
        merged = merge(merged, presets.get(preset))
        merged["preset"] = preset
    for path in files:
        merged = merge(merged, load_file(path))
    if values:
        merged = merge(merged, values)
    for text in overrides:
        merged = merge(merged, parse_override(text))
    return from_dict(merged)
