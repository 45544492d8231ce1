"""Component specs: `{"name": <registered name>, "config": {...}}`, checked and built.

Every configurable kclr component (encoder, projection head, loss, optimizer,
learning-rate schedule, augmentation recipe, evaluation protocol) is described by
one small dictionary, the same in a preset, in a run's `config.yaml`, in
`ContrastiveTrainer.compile` and in a zoo folder's `config.json`, in the spirit of
Keras's `serialize_keras_object` (`{"class_name": ..., "config": ...}`) with the
registry name in place of a class path.

`config` holds the component's constructor arguments. A few arguments come from
the run rather than from the spec (the optimizer's `learning_rate` is the built
schedule, the schedule's `global_batch_size` is `data.global_batch_size`, a
recipe's `image_size` is `data.image_size`): they are the *runtime* arguments of
`build` and may not appear in `config`. Keys are checked against the
constructor's own signature, so a typo is an error naming the closest argument.

Example:

```python
from kclr import registry, spec

optimizer = spec.build(
    registry.optimizers,
    {"name": "lars", "config": {"momentum": 0.9, "weight_decay": 1e-6}},
    where="optimizer",
    learning_rate=0.3,
)
```
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

# Keyword arguments every Keras layer / model accepts through `**kwargs`.
_KERAS_LAYER_KWARGS = {"name", "trainable", "dtype"}


class SpecError(ValueError):
    """A component spec is malformed, names an unknown component or an unknown argument."""


def normalize(value: Any, where: str) -> dict[str, Any]:
    """Returns `{"name": str, "config": dict}` from a spec or a bare registry name."""
    if isinstance(value, str):
        return {"name": value, "config": {}}
    if not isinstance(value, dict):
        raise SpecError(
            f"`{where}` must be a component spec {{name: ..., config: {{...}}}}; received "
            f"{value!r} ({type(value).__name__})."
        )
    unknown = sorted(set(value) - {"name", "config"})
    if unknown:
        raise SpecError(
            f"`{where}` has unknown key(s) {unknown}: a component spec has exactly `name` and "
            f"`config`. Put constructor arguments under `{where}.config`, e.g. "
            f"`--set {where}.config.{unknown[0]}=...`."
        )
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"`{where}.name` must be a registered name; received {name!r}.")
    config = value.get("config") or {}
    if not isinstance(config, dict):
        raise SpecError(
            f"`{where}.config` must be a mapping of constructor arguments; received {config!r}."
        )
    return {"name": name, "config": dict(config)}


def accepted_arguments(obj: Any) -> tuple[set[str], bool]:
    """The keyword arguments `obj` (a class or factory) accepts, and whether that list is open.

    A class whose `__init__` forwards `**kwargs` to its base contributes the base's
    arguments too (Keras optimizers, layers). The list is "open" only when a `**kwargs`
    leads nowhere that can be inspected (then unknown keys cannot be refused).
    """
    names: set[str] = set()
    if inspect.isclass(obj):
        targets = [c for c in inspect.getmro(obj) if "__init__" in vars(c) and c is not object]
    else:
        targets = [obj]
    for target in targets:
        function = target.__init__ if inspect.isclass(obj) else target
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return names, True
        params = signature.parameters.values()
        names |= {
            p.name
            for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        }
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names | _layer_kwargs(obj), False
        if not inspect.isclass(obj):
            break
    if inspect.isclass(obj) and any(c.__module__.startswith("keras") for c in targets):
        return names | _layer_kwargs(obj), False  # Keras checks what its bases swallow
    return names, True


def _layer_kwargs(obj: Any) -> set[str]:
    """`name`, `trainable`, `dtype` for Keras layers and models (their `**kwargs`)."""
    if inspect.isclass(obj) and any(
        c.__name__ == "Layer" and c.__module__.startswith("keras") for c in inspect.getmro(obj)
    ):
        return _KERAS_LAYER_KWARGS
    return set()


def check(registry: Any, value: Any, where: str, runtime: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validates a spec against `registry`; returns it normalized.

    Args:
        registry: a `kclr.registry.Registry`.
        value: the spec (or a bare name).
        where: the dotted config key, for messages (`"optimizer"`).
        runtime: argument names that the run supplies (refused in `config`).

    Raises:
        SpecError: unknown component (closest names listed), unknown or run-supplied
            argument (closest argument suggested).
    """
    spec = normalize(value, where)
    name = spec["name"]
    if name not in registry:
        names = registry.names()
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SpecError(
            f"Unknown {registry.kind} `{where}.name={name!r}`.{hint} Registered "
            f"{registry.kind} names: {', '.join(names)} (plugins add more: `kclr plugins list`)."
        )
    accepted, open_ended = accepted_arguments(registry.get_class(name))
    for key in spec["config"]:
        if key in runtime:
            raise SpecError(
                f"`{where}.config.{key}` is set by the run, not by the spec (from "
                f"{RUNTIME_SOURCES.get(key, 'the run')}). Remove `{key}` from `{where}.config`."
            )
        if key not in accepted and not open_ended:
            choices = sorted(accepted - set(runtime))
            close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
            hint = f" Did you mean '{where}.config.{close[0]}'?" if close else ""
            raise SpecError(
                f"Unknown argument `{where}.config.{key}` for {registry.kind} {name!r}.{hint} "
                f"{name!r} accepts: {', '.join(choices)}."
            )
    return spec


# Where each run-supplied argument comes from (for error messages).
RUNTIME_SOURCES = {
    "learning_rate": "the built `schedule`",
    "global_batch_size": "`data.global_batch_size`",
    "num_examples": "the training data or `data.num_examples`",
    "epochs": "`train.epochs`",
    "total_steps": "`train.steps` or `train.epochs`",
    "image_size": "`data.image_size`",
}


def build(registry: Any, value: Any, where: str, **runtime: Any) -> Any:
    """Checks a spec and builds it: `cls(**config, **runtime)` through the registry.

    Built-ins and plugins are built the same way and receive their whole `config`.
    """
    spec = check(registry, value, where, runtime=tuple(runtime))
    return registry.get(spec["name"], **spec["config"], **runtime)


def to_spec(registry: Any, obj: Any, keys: set[str] | None = None) -> dict[str, Any]:
    """The spec of a built component: its registry name and `get_config()` restricted to
    constructor arguments (and to `keys` when given).

    Raises:
        SpecError: `obj`'s class is not registered in `registry`.
    """
    for entry in registry.entries():
        if inspect.isclass(entry.obj) and type(obj) is entry.obj:
            accepted, _ = accepted_arguments(entry.obj)
            config = obj.get_config()
            allowed = accepted if keys is None else accepted & keys
            return {"name": entry.name, "config": {k: v for k, v in config.items() if k in allowed}}
    raise SpecError(
        f"{type(obj).__name__} is not registered in `kclr.registry.{registry.kind}s`: only "
        "registered classes have a spec. Register the class (see `kclr plugins list`)."
    )


def with_schedule(identifier: Any) -> Any:
    """An optimizer spec whose `config.learning_rate` spec is built through
    `kclr.registry.schedules` (other identifiers are returned unchanged)."""
    if not isinstance(identifier, dict) or "class_name" in identifier:
        return identifier
    learning_rate = (identifier.get("config") or {}).get("learning_rate")
    if not (isinstance(learning_rate, dict) and "name" in learning_rate):
        return identifier
    from kclr import registry

    schedule = registry.schedules.get(learning_rate)
    return {**identifier, "config": {**identifier["config"], "learning_rate": schedule}}
