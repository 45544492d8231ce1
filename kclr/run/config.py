"""Run configuration: component specs plus three plain sections, from presets, files and `--set`.

A kclr run is one `Config`. Each configurable component is a *spec*
`{"name": <registered name>, "config": {constructor arguments}}` (see `kclr.spec`):
`method` (the training method, `kclr.methods`: `simclr` by default, or a plugin's such
as `moco_v3`), `encoder`, `projection_head`, `loss`, `optimizer`, `schedule` (the learning rate),
`augmentation` (the recipe), and the evaluation protocols `knn`, `linear_eval` and
`finetune`. The same spec is what `ContrastiveTrainer.compile` accepts and what a
zoo folder's `config.json` stores. Three plain sections hold the rest: `data`,
`train` and `eval` (the kNN monitor).

Presets (`kclr.presets`) are partial dictionaries merged over the defaults below; a
YAML/JSON file, a dictionary and `key=value` overrides are merged on top, in that
order. Within a component, a source that names a *different* component replaces the
spec; one with the same name (or no name) merges into its `config`. Every key is
checked: an unknown section, plain key, component name or constructor argument
raises `ConfigError`, which names the key and suggests the closest valid one.
`merge_sources` merges a run's sources without importing TensorFlow (so `kclr fit`
reads `runtime.onednn` before anything imports it); `resolve` merges and validates.

The defaults are the SimCLR v1 paper's ImageNet recipe (Chen et al., 2020,
"A Simple Framework for Contrastive Learning of Visual Representations",
section B.1 and `google-research/simclr` flags): ResNet-50, a 2-layer projection
head to 128-d, NT-Xent with T=0.1, LARS with lr 0.3 x B/256, 10 warmup epochs,
cosine decay, weight decay 1e-6, batch 4096, 100 epochs.

Example:

```python
from kclr.run import config

cfg = config.resolve("simclr_r50", overrides=["optimizer.config.momentum=0.95"])
cfg.optimizer                 # {'name': 'lars', 'config': {'momentum': 0.95, 'weight_decay': 1e-06}}
cfg.data.global_batch_size    # 4096
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
class DataConfig:
    """The pretraining input (`kclr.data.pretraining_dataset`).

    `source` is anything `kclr.data.resolve_source` accepts ("demo", a folder,
    TFRecord shards, "tfds:NAME"); `kclr fit --data` sets it. `eval_source` is the
    labelled data of the kNN monitor (default: `source`); a source that cannot be
    read is an error. `num_examples` overrides the counted size of `source`.
    `photometric` is where the recipe's photometric stage (colour, grayscale, blur)
    runs: "host" (tf.data), "device" (in the train step) or "auto" (device when a GPU
    or TPU is present). `max_bad_fraction` stops the run when more than that fraction of
    a folder's image files are unreadable (`kclr.data.bad_files`; 0 allows none).
    `image_column` and `label_column` name the image and label columns of an
    `hf:` source (default: the `datasets.Image` and `datasets.ClassLabel` columns).
    """

    source: str | None = None
    eval_source: str | None = None
    image_size: int = 224
    global_batch_size: int = 4096
    views: int = 2
    num_examples: int | None = None
    photometric: str = "auto"
    max_bad_fraction: float = 0.01
    image_column: str | None = None
    label_column: str | None = None


@dataclasses.dataclass
class TrainConfig:
    """Length, numerics, distribution and checkpointing of the run.

    `steps` (if set) overrides `epochs`. `checkpoint_every_steps` is how often a
    step-level checkpoint is written (plus one at every epoch end).
    `gradient_cache_chunk_size` (images; `None` = off) computes each step chunk by
    chunk with gradient caching (`kclr.trainer.gradient_cache`): the loss covers the
    whole batch, memory grows with the chunk; it must divide the per-replica batch.
    `worker_timeout_seconds` (several workers): seconds without a heartbeat after which
    TensorFlow's coordination service counts a worker as lost; the others stop with
    `kclr.distribute.WorkerLostError` (exit code 69) instead of waiting in a collective.
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
    gradient_cache_chunk_size: int | None = None
    worker_timeout_seconds: float = 30.0


@dataclasses.dataclass
class RuntimeConfig:
    """Process settings `kclr fit` makes before TensorFlow is imported (`kclr.runtime`).

    `onednn`: TensorFlow's CPU path, `auto` (from the processor: oneDNN with AVX-512,
    TensorFlow's own kernels without), `on` or `off`; the run log says which it took.
    """

    onednn: str = "auto"


@dataclasses.dataclass
class EvalConfig:
    """The kNN monitor of `kclr fit` (its k and temperature are the `knn` spec).

    `baselines` adds raw-pixel and random-encoder kNN to the final table, for every
    kind of source (they cost two more passes over the kNN data).
    `monitor_max_examples` bounds the memory bank: a seeded subset of the train split
    for arrays, a class-balanced seeded subset for an image folder; TFRecord and TFDS
    splits are used whole.
    A folder of class subfolders without a train/test split gets a held-out test split:
    `holdout_fraction` of every class, chosen with `holdout_seed` (at most
    `monitor_max_examples` images); training uses the rest (`kclr.data.holdout`).
    `health_examples` is the size of the fixed seeded sample of training images on which
    the label-free health metrics (effective rank, alignment, uniformity;
    `kclr.evaluation.health`) are computed every epoch, monitor or not (0: off).
    """

    monitor: bool = True
    monitor_every_epochs: int = 1
    monitor_max_examples: int | None = 10000
    baselines: bool = False
    holdout_fraction: float = 0.1
    holdout_seed: int = 0
    health_examples: int = 512


@dataclasses.dataclass(frozen=True)
class Component:
    """A component section: its registry and default spec.

    The arguments a run supplies to the component are declared by the component
    itself (`run_arguments`, see `kclr.spec`); the run offers `RUN_VALUES`.
    """

    registry: str
    default: dict[str, Any]


# The component sections, in the order a run builds them. Defaults: SimCLR v1 on ImageNet.
COMPONENTS: dict[str, Component] = {
    "method": Component("methods", {"name": "simclr", "config": {}}),
    "encoder": Component(
        "encoders", {"name": "resnet", "config": {"depth": 50, "width_multiplier": 1.0}}
    ),
    "projection_head": Component(
        "heads", {"name": "projection_head", "config": {"version": "v1", "output_dim": 128}}
    ),
    "loss": Component("losses", {"name": "ntxent", "config": {"temperature": 0.1}}),
    "optimizer": Component(
        "optimizers",
        {"name": "lars", "config": {"momentum": 0.9, "weight_decay": 1e-6}},
    ),
    "schedule": Component(
        "schedules",
        {
            "name": "warmup_cosine",
            "config": {"base_learning_rate": 0.3, "scaling": "linear", "warmup_epochs": 10},
        },
    ),
    "augmentation": Component("recipes", {"name": "simclr", "config": {}}),
    "knn": Component("protocols", {"name": "knn", "config": {"k": 200, "temperature": 0.07}}),
    "linear_eval": Component("protocols", {"name": "linear", "config": {}}),
    "finetune": Component("protocols", {"name": "finetune", "config": {}}),
}

# The values a run offers its components, and where each comes from. A component takes
# those it declares in `run_arguments`; they may not appear in its spec's `config`.
RUN_VALUES: dict[str, str] = {
    "learning_rate": "the built `schedule`",
    "global_batch_size": "`data.global_batch_size`",
    "num_examples": "the training data or `data.num_examples`",
    "epochs": "`train.epochs`",
    "total_steps": "`train.steps` or `train.epochs`",
    "image_size": "`data.image_size`",
}


def _spec_field(section: str) -> Any:
    return dataclasses.field(default_factory=lambda: copy.deepcopy(COMPONENTS[section].default))


@dataclasses.dataclass
class Config:
    """A full kclr run configuration (see the module docstring)."""

    preset: str | None = None
    description: str = ""
    method: dict = _spec_field("method")
    encoder: dict = _spec_field("encoder")
    projection_head: dict = _spec_field("projection_head")
    loss: dict = _spec_field("loss")
    optimizer: dict = _spec_field("optimizer")
    schedule: dict = _spec_field("schedule")
    augmentation: dict = _spec_field("augmentation")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    knn: dict = _spec_field("knn")
    linear_eval: dict = _spec_field("linear_eval")
    finetune: dict = _spec_field("finetune")


# Values of the plain sections restricted to a fixed set or range. Component specs are
# checked against their registry and their constructor's signature.
CHOICES: dict[str, tuple[Any, ...]] = {
    "train.precision": ("float32", "mixed_bfloat16", "mixed_float16"),
    "train.strategy": ("auto", "default", "mirrored", "multiworker", "tpu"),
    "data.photometric": ("host", "device", "auto"),
    "runtime.onednn": ("auto", "on", "off"),
}
# Keys whose values are `on` / `off` words, which YAML reads as booleans.
ON_OFF = {"runtime.onednn"}
FRACTIONS = {"data.max_bad_fraction", "eval.holdout_fraction"}
POSITIVE = {
    "data.image_size",
    "data.global_batch_size",
    "data.views",
    "data.num_examples",
    "train.epochs",
    "train.steps",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.gradient_cache_chunk_size",
    "train.worker_timeout_seconds",
    "eval.monitor_every_epochs",
    "eval.monitor_max_examples",
}


def suggest(name: str, valid: typing.Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def section_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def valid_keys() -> list[str]:
    """The dotted keys of the plain sections and the component sections' `name`/`config`."""
    keys = []
    for name, hint in section_types(Config).items():
        if dataclasses.is_dataclass(hint):
            keys.extend(f"{name}.{field}" for field in section_types(hint))
        elif name in COMPONENTS:
            keys.extend([f"{name}.name", f"{name}.config"])
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
        if isinstance(value, bool) and key in ON_OFF:
            value = "on" if value else "off"
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
            f"{list(CHOICES[key])}.{suggest(str(value), map(str, CHOICES[key]))}"
        )
    if value is None or isinstance(value, (bool, str, dict)):
        return
    if key in POSITIVE and not value > 0:
        raise ConfigError(f"Invalid value for `{key}`: received {value!r}, expected a value > 0.")
    if key in FRACTIONS and not 0 <= value <= 1:
        raise ConfigError(
            f"Invalid value for `{key}`: received {value!r}, expected a fraction in [0, 1]."
        )


def _check_component(section: str, value: Any) -> dict[str, Any]:
    from kclr import registry, spec

    component = COMPONENTS[section]
    try:
        return spec.check(
            getattr(registry, component.registry), value, section, RUN_VALUES, RUN_VALUES
        )
    except spec.SpecError as error:
        raise ConfigError(str(error)) from None


def _plain_section(name: str, hint: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(
            f"Configuration section `{name}` must be a mapping of keys to values, "
            f"received {values!r}."
        )
    fields = section_types(hint)
    kwargs = {}
    for key, value in values.items():
        dotted = f"{name}.{key}"
        if key not in fields:
            raise ConfigError(
                f"Unknown configuration key `{dotted}`."
                f"{suggest(dotted, valid_keys())} Valid keys of `{name}`: "
                f"{', '.join(fields)}."
            )
        value = _coerce(dotted, value, fields[key])
        _check_value(dotted, value)
        kwargs[key] = copy.deepcopy(value)
    return hint(**kwargs)


def from_dict(values: dict[str, Any]) -> Config:
    """Builds a validated `Config` from a (possibly partial) nested dictionary.

    Missing sections take the defaults (a component section given here replaces its
    default). Raises `ConfigError` for an
    unknown section, key, component or argument (with the closest valid name) and for a
    plain value of the wrong type or range.
    """
    if not isinstance(values, dict):
        raise ConfigError(
            f"A configuration must be a mapping of sections, received {type(values).__name__}."
        )
    top = section_types(Config)
    kwargs: dict[str, Any] = {}
    for name, section_values in values.items():
        if name not in top:
            raise ConfigError(
                f"Unknown configuration section {name!r}. Expected one of {sorted(top)}."
                f"{suggest(name, top)}"
            )
        hint = top[name]
        if name in COMPONENTS:
            default = {name: copy.deepcopy(COMPONENTS[name].default)}
            spec_values = merge(default, {name: section_values})[name]
            kwargs[name] = _check_component(name, spec_values)
        elif dataclasses.is_dataclass(hint):
            kwargs[name] = _plain_section(name, hint, section_values)
        else:
            kwargs[name] = _coerce(name, section_values, hint)
    return Config(**kwargs)


def to_dict(config: Config) -> dict[str, Any]:
    """The configuration as a plain nested dictionary (JSON/YAML serialisable)."""
    return dataclasses.asdict(config)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merges `update` into a copy of `base`: dicts merge recursively, other values replace.

    A component section of `update` that names a different component than `base`
    replaces it whole (the old component's arguments would not fit the new one).
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key in COMPONENTS and isinstance(value, str):
            value = {"name": value}
        old = out.get(key)
        if (
            key in COMPONENTS
            and isinstance(value, dict)
            and isinstance(old, dict)
            and value.get("name", old.get("name")) != old.get("name")
        ):
            out[key] = {"name": value["name"], "config": copy.deepcopy(value.get("config") or {})}
        elif isinstance(value, dict) and isinstance(old, dict):
            out[key] = merge(old, value) if key not in COMPONENTS else _merge_spec(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_spec(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(old)
    for key, value in new.items():
        if key == "config" and isinstance(value, dict) and isinstance(out.get("config"), dict):
            out["config"] = _merge_arguments(out["config"], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_arguments(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A component's arguments with `new` merged in: a nested dict (a keras-hub backbone's
    `config`, a nested spec) merges key by key, so `--set encoder.config.config.num_layers=2`
    keeps its siblings; a nested spec that names another component replaces it whole."""
    out = copy.deepcopy(old)
    for key, value in new.items():
        before = out.get(key)
        if (
            isinstance(value, dict)
            and isinstance(before, dict)
            and value.get("name", before.get("name")) == before.get("name")
        ):
            out[key] = _merge_arguments(before, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ------------------------------------------------------------------ sources
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
            "e.g. `--set optimizer.config.momentum=0.95`."
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"Invalid value in override {text!r}: {error}") from None
    parts = key.split(".")
    if len(parts) == 1 and (parts[0] in ("preset", "description") or parts[0] in COMPONENTS):
        return {parts[0]: value}  # e.g. `--set optimizer={name: sgd, config: {momentum: 0.9}}`
    if len(parts) < 2:
        raise ConfigError(
            f"Invalid override key {key!r}: expected `section.key` with a section among "
            f"{[k for k in section_types(Config) if k not in ('preset', 'description')]}."
            f"{suggest(key, valid_keys())}"
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
        overrides: strings like `"optimizer.config.momentum=0.95"`.
        values: a partial nested dictionary.

    Returns:
        A validated `Config`.

    Example:

    ```python
    cfg = config.resolve("demo", overrides=["train.epochs=2", "loss.config.temperature=0.2"])
    ```
    """
    return from_dict(merge_sources(preset, files, overrides, values))


def merge_sources(
    preset: str | None = None,
    files: typing.Sequence[str | pathlib.Path] = (),
    overrides: typing.Sequence[str] = (),
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The merged, not yet validated dictionary of `resolve`'s sources (same order).

    Imports no TensorFlow: `kclr fit` reads `runtime.onednn` from it (`onednn_setting`)
    before validating, which builds the components.
    """
    from kclr import presets

    sources: list[dict[str, Any]] = []
    if preset is not None:
        sources.append({**presets.get(preset), "preset": preset})
    sources.extend(load_file(path) for path in files)
    if values:
        sources.append(values)
    sources.extend(parse_override(text) for text in overrides)
    merged = {k: copy.deepcopy(v.default) for k, v in COMPONENTS.items()}
    for source in sources:
        merged = merge(merged, source)
    return merged


def onednn_setting(merged: dict[str, Any]) -> str:
    """`runtime.onednn` of a merged dictionary (`merge_sources`), checked, without TensorFlow."""
    runtime = merged.get("runtime")
    if runtime is None:
        return RuntimeConfig.onednn
    return _plain_section("runtime", RuntimeConfig, runtime).onednn
