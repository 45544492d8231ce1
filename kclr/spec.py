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
recipe's `image_size` is `data.image_size`). Each component class (or factory)
declares them once, on itself, as `run_arguments`; a registry gives a default for
the entries that declare nothing (Keras's own optimizers, older plugins). One rule
holds at every door: a run argument that the caller supplies (`build(..., run=...)`)
may not appear in `config`; one that nobody supplies belongs in `config` (as in
`ContrastiveTrainer.compile`, where no run sizes the schedule). Keys are checked
against the constructor's own signature, so a typo is an error naming the closest
argument.

Example:

```python
from kclr import registry, spec

optimizer = spec.build(
    registry.optimizers,
    {"name": "lars", "config": {"momentum": 0.9, "weight_decay": 1e-6}},
    where="optimizer",
    run={"learning_rate": 0.3},
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


def accepted_arguments(obj: Any, registry: Any = None) -> tuple[set[str], bool]:
    """The keyword arguments `obj` (a class or factory) accepts, and whether that list is open.

    A class whose `__init__` forwards `**kwargs` to its base contributes the base's
    arguments too (Keras optimizers, layers); a factory whose `**kwargs` go to another
    class or factory names it in an `extends` attribute, as the object itself or as a
    name registered in `registry` (`kclr.augment.recipes`, `kclr.models.resnet50`). The
    list is "open" only when a `**kwargs` leads nowhere that can be inspected (then
    unknown keys cannot be refused).
    """
    if not inspect.isclass(obj):
        names, forwards = _parameters(obj)
        if names is None:
            return set(), True
        if not forwards:
            return names, False
        extends = extended(obj, registry)
        if extends is None:
            return names, True
        more, open_ended = accepted_arguments(extends, registry)
        return names | more, open_ended
    names: set[str] = set()
    targets = [c for c in inspect.getmro(obj) if "__init__" in vars(c) and c is not object]
    for target in targets:
        own, forwards = _parameters(target.__init__)
        if own is None:
            return names, True
        names |= own
        if not forwards:
            return names | _layer_kwargs(obj), False
    if any(c.__module__.startswith("keras") for c in targets):
        return names | _layer_kwargs(obj), False  # Keras checks what its bases swallow
    return names, True


def extended(obj: Any, registry: Any = None) -> Any:
    """What `obj.extends` names: the class or factory itself, or a name in `registry`.

    Raises:
        SpecError: `extends` names an entry `registry` does not hold, or is neither a
            name nor a class or function.
    """
    extends = getattr(obj, "extends", None)
    if extends is None or (callable(extends) and not isinstance(extends, str)):
        return extends
    owner = getattr(obj, "__name__", repr(obj))
    if not isinstance(extends, str):
        raise SpecError(extends_error(owner, extends))
    if registry is None:
        raise SpecError(
            f"{owner}.extends is the name {extends!r}, and no registry was given to look it "
            "up. Pass the registry (`kclr.spec.accepted_arguments(obj, registry)`)."
        )
    if extends not in registry:
        close = difflib.get_close_matches(extends, registry.names(), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SpecError(
            f"{owner}.extends names the {registry.kind} {extends!r}, which is not "
            f"registered.{hint} Registered {registry.kind} names: "
            f"{', '.join(registry.names())}."
        )
    return registry.get_class(extends)


def extends_error(owner: str, extends: Any) -> str:
    """The message for an `extends` that is neither a registered name nor an object."""
    return (
        f"{owner}.extends is {extends!r} ({type(extends).__name__}); expected the name of "
        "a registered entry of the same kind (`extends = 'simclr_cifar'`) or the function "
        "or class the `**kwargs` go to (`extends = kclr.augment.recipes.simclr_cifar`)."
    )


def _parameters(function: Any) -> tuple[set[str] | None, bool]:
    """The keyword-passable parameter names of `function` and whether it takes `**kwargs`."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None, True
    names = {
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    }
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _layer_kwargs(obj: Any) -> set[str]:
    """`name`, `trainable`, `dtype` for Keras layers and models (their `**kwargs`)."""
    if inspect.isclass(obj) and any(
        c.__name__ == "Layer" and c.__module__.startswith("keras") for c in inspect.getmro(obj)
    ):
        return _KERAS_LAYER_KWARGS
    return set()


def run_arguments(registry: Any, name: str) -> tuple[str, ...]:
    """The arguments a run supplies to the component `name`, as the component declares them.

    Read from the class's (or factory's) `run_arguments` attribute; entries that declare
    nothing get their registry's default (`Registry.run_arguments`).
    """
    obj = registry.get_class(name)
    declared = getattr(obj, "run_arguments", None)
    return tuple(registry.run_arguments if declared is None else declared)


def check(
    registry: Any,
    value: Any,
    where: str,
    supplied: Any = (),
    sources: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Validates a spec against `registry`; returns it normalized.

    Args:
        registry: a `kclr.registry.Registry`.
        value: the spec (or a bare name).
        where: the dotted config key, for messages (`"optimizer"`).
        supplied: names of the values the caller supplies; those among the component's
            `run_arguments` are refused in `config`.
        sources: where each supplied value comes from, for messages
            (`{"global_batch_size": "`data.global_batch_size`"}`).

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
    from_run = set(run_arguments(registry, name)) & set(supplied)
    accepted, open_ended = accepted_arguments(registry.get_class(name), registry)
    for key in spec["config"]:
        if key in from_run:
            source = (sources or {}).get(key, "the run")
            raise SpecError(
                f"`{where}.config.{key}` is set by the run, not by the spec (from "
                f"{source}). Remove `{key}` from `{where}.config`."
            )
        if key not in accepted and not open_ended:
            choices = sorted(accepted - from_run)
            close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
            hint = f" Did you mean '{where}.config.{close[0]}'?" if close else ""
            raise SpecError(
                f"Unknown argument `{where}.config.{key}` for {registry.kind} {name!r}.{hint} "
                f"{name!r} accepts: {', '.join(choices)}."
            )
    return spec


def build(
    registry: Any,
    value: Any,
    where: str,
    run: dict[str, Any] | None = None,
    sources: dict[str, str] | None = None,
) -> Any:
    """Checks a spec and builds it: `cls(**config, **run arguments)`.

    `run` holds the values the caller can supply (a run offers its batch size, its
    length, its image size, ...); the component receives those it declares in
    `run_arguments`. Built-ins and plugins are built the same way and receive their
    whole `config`.
    """
    run = run or {}
    spec = check(registry, value, where, supplied=run, sources=sources)
    wanted = run_arguments(registry, spec["name"])
    given = {key: run[key] for key in wanted if key in run}
    return instantiate(registry, spec["name"], {**spec["config"], **given})


def resolve(registry: Any, identifier: Any, where: str | None = None, **kwargs: Any) -> Any:
    """An instance from a registered name, a spec, Keras's serialized form or an instance.

    Args:
        registry: a `kclr.registry.Registry`.
        identifier: a registered name (`"ntxent"`), an existing instance (returned as is),
            a spec `{"name": ..., "config": {...}}` (checked against the constructor) or
            Keras's serialized form `{"class_name": ..., "config": ...}` (the class's own
            `from_config`).
        where: the key, for messages (default: the registry's kind).
        **kwargs: constructor arguments added to the name's or the spec's.
    """
    where = where or registry.kind
    base = registry.base_class()
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        registry.entry(identifier)  # an unknown name: the registry's message
        checked = check(registry, {"name": identifier, "config": kwargs}, where)
        return instantiate(registry, identifier, checked["config"])
    if isinstance(identifier, dict) and "class_name" in identifier:
        config = {**dict(identifier.get("config") or {}), **kwargs}
        name = identifier["class_name"]
        if name not in registry:
            name = registry.name_for_class(name)
        obj = registry.get_class(name)
        if inspect.isclass(obj) and hasattr(obj, "from_config"):
            return obj.from_config(config)
        return instantiate(registry, name, config)
    if isinstance(identifier, dict):
        if not isinstance(identifier.get("name"), str):
            raise SpecError(
                f"A {registry.kind} config dict needs a 'name' key; received keys "
                f"{sorted(identifier)}. Example: {{'name': ..., 'config': {{...}}}}."
            )
        checked = check(registry, identifier, where)
        return instantiate(registry, checked["name"], {**checked["config"], **kwargs})
    raise SpecError(
        f"Cannot make a {registry.kind} from {identifier!r} ({type(identifier).__name__}): "
        f"pass a registered name, a `{registry.base}` instance or a config dict."
    )


def instantiate(registry: Any, name: str, kwargs: dict[str, Any]) -> Any:
    """`registry`'s entry `name` called with `kwargs`; its result checked against the base."""
    try:
        instance = registry.get_class(name)(**kwargs)
    except TypeError as error:
        raise SpecError(
            f"Could not build {registry.kind} {name!r} with arguments {kwargs}: {error}."
        ) from error
    if not isinstance(instance, registry.base_class()):
        raise SpecError(
            f"The {registry.kind} factory {name!r} returned {type(instance).__name__}, "
            f"expected an instance of `{registry.base}`."
        )
    return instance


def to_spec(registry: Any, obj: Any, keys: set[str] | None = None) -> dict[str, Any]:
    """The spec of a built component: its registry name and `get_config()` restricted to
    constructor arguments (and to `keys` when given); the inverse of `build`.

    Raises:
        SpecError: `obj`'s class is not registered in `registry`.
    """
    for entry in registry.entries():
        if inspect.isclass(entry.obj) and type(obj) is entry.obj:
            accepted, _ = accepted_arguments(entry.obj, registry)
            allowed = accepted if keys is None else accepted & keys
            config = obj.get_config()
            return {"name": entry.name, "config": {k: v for k, v in config.items() if k in allowed}}
    raise SpecError(
        f"{type(obj).__name__} is not registered in `kclr.registry.{registry.kind}s`: only "
        "registered classes have a spec. Register the class (see `kclr plugins list`)."
    )


def build_optimizer(
    registry: Any, schedules: Any, identifier: Any, where: str = "optimizer"
) -> Any:
    """An optimizer from `identifier` whose `config.learning_rate` may be a schedule spec.

    The form `ContrastiveTrainer.compile` accepts: `{"name": "lars", "config":
    {"learning_rate": {"name": "warmup_cosine", "config": {...}}, ...}}`. The schedule
    is built through `schedules` with nothing supplied by a run (its `global_batch_size`,
    `num_examples`, `epochs` are in its `config`); the optimizer receives it as its
    run argument `learning_rate`. Other identifiers go through `resolve`.
    """
    if not isinstance(identifier, dict) or "class_name" in identifier:
        return resolve(registry, identifier, where)
    config = dict(identifier.get("config") or {})
    learning_rate = config.pop("learning_rate", None)
    if isinstance(learning_rate, dict) and "name" in learning_rate:
        learning_rate = build(schedules, learning_rate, f"{where}.config.learning_rate")
    if learning_rate is None:
        return resolve(registry, identifier, where)
    optimizer = {**identifier, "config": config}
    return build(registry, optimizer, where, run={"learning_rate": learning_rate})
