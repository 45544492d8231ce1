"""Round-trip checks for plugin components: every constructor argument survives.

A component whose `get_config` forgets an argument works until it is saved: `kclr fit`
runs, but `kclr.spec.to_spec` omits the argument and a `.keras` file reloads it at its
default. These helpers build a component with a non-default value for every constructor
argument and check, argument by argument, that it survives the three roads a component
takes (`get_config` -> `from_config`, `kclr.spec.to_spec` -> build, a `.keras` file
saved and loaded), comparing behaviour on one seeded input, not only configs. A failure
names the argument that is lost.

- `check_layer(cls, arguments)`: an augmentation layer (`kclr.augmentations`).
- `check_recipe(name, arguments)`: a recipe (`kclr.recipes`): the spec accepts every
  argument and the pipeline it builds survives the three roads.
- `check_loss(cls, arguments)`: a loss (`kclr.losses`); Keras stores a compiled loss as
  its serialized form, so that is the third road.
- `check_head(cls, arguments)`: a projection head (`kclr.heads`), weights included.

Example:

```python
from kclr.testing import check_layer

check_layer(RandomPosterize, {"bits": 2, "probability": 1.0, "seed": 3})
```
"""

from __future__ import annotations

import functools
import inspect
import pathlib
import tempfile
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from kclr import registry as kregistry
from kclr import spec

#: The stateless seed every seeded comparison uses.
SEED = (3, 7)


class ComponentCheckError(AssertionError):
    """A component lost a constructor argument (or behaves differently) after a round trip."""


# --------------------------------------------------------------------------- shared input
@functools.cache
def _images(size: int) -> np.ndarray:
    """One tiny seeded batch `[4, size, size, 3]` in `[0, 1]`, shared by every check."""
    return np.random.default_rng(0).uniform(0.0, 1.0, (4, size, size, 3)).astype("float32")


@functools.cache
def _features(dim: int, views: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Labels `[4]` and L2-normalised features `[4, views, dim]`, seeded."""
    rng = np.random.default_rng(1)
    features = rng.normal(size=(4, views, dim)).astype("float32")
    features /= np.linalg.norm(features, axis=-1, keepdims=True)
    return np.array([0, 1, 0, 1], np.int32), features


# ------------------------------------------------------------------------------ arguments
def _label(obj: Any) -> str:
    return getattr(obj, "__name__", type(obj).__name__)


def _keras_base(cls: type) -> type | None:
    return next((c for c in inspect.getmro(cls) if c.__module__.startswith("keras")), None)


def own_arguments(obj: Any, registry: Any = None) -> dict[str, Any]:
    """`{argument: default}` of `obj`'s constructor (or factory), without Keras's own.

    Arguments without a default map to `inspect.Parameter.empty`.
    """
    accepted, _ = spec.accepted_arguments(obj, registry)
    if inspect.isclass(obj) and _keras_base(obj) is not None:
        base, _ = spec.accepted_arguments(_keras_base(obj))
        accepted -= base | {"name", "dtype", "trainable"}
    defaults: dict[str, Any] = {}
    chain = inspect.getmro(obj) if inspect.isclass(obj) else [obj]
    while chain:
        target, chain = chain[0], list(chain[1:])
        function = getattr(target, "__init__", None) if inspect.isclass(target) else target
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            continue
        for name, parameter in parameters.items():
            if name in accepted and name not in defaults:
                defaults[name] = parameter.default
        if not inspect.isclass(obj) and chain == []:
            extended = spec.extended(target, registry)
            chain = [extended] if extended is not None and not inspect.isclass(extended) else []
    return {name: defaults.get(name, inspect.Parameter.empty) for name in sorted(accepted)}


def _parameters_of(function: Any) -> set[str]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _check_coverage(
    obj: Any, arguments: dict[str, Any], skip: Iterable[str], registry: Any, where: str
) -> None:
    """Every argument has a value in `arguments`, and that value is not the default."""
    own = own_arguments(obj, registry)
    skip = set(skip)
    unknown = sorted(set(arguments) - set(own))
    if unknown:
        raise ComponentCheckError(
            f"{where}: {_label(obj)} takes no argument {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(own)}."
        )
    required = set(own)
    if not inspect.isclass(obj):  # a factory's own; those it `extends` are checked there
        required = _parameters_of(obj)
    missing = sorted(required - set(arguments) - skip)
    if missing:
        raise ComponentCheckError(
            f"{where}: give a non-default value for every constructor argument of "
            f"{_label(obj)}; missing: {', '.join(missing)}. (An argument that cannot be "
            "set here goes in `skip=` with a comment saying why.)"
        )
    for name, value in arguments.items():
        default = own[name]
        if default is not inspect.Parameter.empty and _same(value, default):
            raise ComponentCheckError(
                f"{where}: `{name}={value!r}` is {_label(obj)}'s default; a lost argument "
                "would go unnoticed. Pass a value other than the default."
            )


def _plain(value: Any) -> Any:
    """Tuples as lists, NumPy scalars and arrays as Python values (how configs store them)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "build_config"}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(_plain(a) == _plain(b))
    except (TypeError, ValueError):
        return False


def _comparable(value: Any) -> bool:
    """Values a config holds as is (not layers, not other objects)."""
    if isinstance(value, (list, tuple)):
        return all(_comparable(v) for v in value)
    if isinstance(value, dict):
        return all(_comparable(v) for v in value.values())
    return isinstance(value, (int, float, str, bool, type(None), np.generic))


def _check_config(obj: Any, config: dict, arguments: dict, where: str) -> None:
    """Every argument is in `config` with the value it was built with; names the first lost."""
    for name, value in arguments.items():
        if name not in config:
            raise ComponentCheckError(
                f"{where}: `{name}` is missing from the config, so it is lost (it reloads "
                f"at its default). {_label(obj)} was built with {name}={value!r}; add "
                f'`"{name}": self.{name}` to `get_config`.'
            )
        if _comparable(value) and not _same(config[name], value):
            raise ComponentCheckError(
                f"{where}: `{name}` is {config[name]!r} in the config; {_label(obj)} was "
                f"built with {name}={value!r}."
            )


def _close(expected: Any, received: Any) -> bool:
    expected = [np.asarray(x) for x in (expected if isinstance(expected, list) else [expected])]
    received = [np.asarray(x) for x in (received if isinstance(received, list) else [received])]
    return all(
        a.shape == b.shape and np.allclose(a, b, atol=1e-5)
        for a, b in zip(expected, received, strict=True)
    )


def _configs_only(expected: Any, received: Any, where: str, arguments: dict) -> None:
    """No output comparison (`compare_outputs=False`)."""


def _check_same(expected: Any, received: Any, where: str, arguments: dict) -> None:
    expected = [np.asarray(x) for x in (expected if isinstance(expected, list) else [expected])]
    received = [np.asarray(x) for x in (received if isinstance(received, list) else [received])]
    for a, b in zip(expected, received, strict=True):
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-5):
            diff = (
                "shape " + str(b.shape)
                if a.shape != b.shape
                else f"max |diff| {np.abs(a - b).max():.3g}"
            )
            raise ComponentCheckError(
                f"{where}: behaves differently on the same seeded input ({diff}). The config "
                f"holds every argument of {sorted(arguments)}, so one of them is not applied "
                "when the component is rebuilt (`__init__` or `from_config` ignores it), or "
                "the component keeps state outside its config."
            )


def _rebuild(label: str, road: str, rebuild: Callable[[], Any]) -> Any:
    """`rebuild()`; an error says which road failed (an unregistered class, a bad config)."""
    try:
        return rebuild()
    except Exception as error:  # noqa: BLE001 - any failure of the road is the finding
        raise ComponentCheckError(
            f"{label}: {road} failed: {type(error).__name__}: {error}. Every class a "
            "component holds must be registered (an entry point, or "
            "`keras.saving.register_keras_serializable`) and rebuild from its config."
        ) from error


def _save_and_load(model: Any) -> Any:
    import keras

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # An augmentation layer has no weights: "saving a model that has not yet been built".
        warnings.filterwarnings("ignore", message=".*has not yet been built", category=UserWarning)
        path = pathlib.Path(folder) / "component.keras"
        model.save(path)
        return keras.saving.load_model(path)


# -------------------------------------------------------------------------------- layers
def _start(check: str, obj: Any, arguments: dict, skip: Iterable[str], registry: Any):
    """`(class or factory, label)` of a check, after the arguments are found complete."""
    obj = registry.get_class(obj) if isinstance(obj, str) else obj
    label = f"{check}({_label(obj)})"
    _check_coverage(obj, arguments, skip, registry, label)
    return obj, label


def _run_layer(layer: Any, images: np.ndarray) -> np.ndarray:
    """The layer's output on `images`: seeded per call for a kclr layer, first call else."""
    import tensorflow as tf

    from kclr.augment import AugmentationLayer

    if isinstance(layer, AugmentationLayer):
        return np.asarray(layer(images, training=True, seed=tf.constant(SEED, tf.int64)))
    return np.asarray(layer(images, training=True))


def _layer_roads(
    layer: Any,
    make: Callable[[], Any],
    registry: Any,
    arguments: dict,
    label: str,
    size: int = 16,
    compare_outputs: bool = True,
) -> None:
    """`layer` (built with `arguments`) against its three rebuilt copies, on `size` px images.

    With `compare_outputs=False` only the configs are compared.
    """
    import keras

    images = _images(size)
    expected = _run_layer(make(), images)
    same = _check_same if compare_outputs else _configs_only
    if compare_outputs and not _close(expected, _run_layer(make(), images)):
        raise ComponentCheckError(
            f"{label}: two layers built with the same arguments (seed included) give "
            "different outputs on the same input, so a rebuilt layer cannot be compared with "
            "the original. Make the layer's randomness follow its seed (subclass "
            "`kclr.augment.AugmentationLayer`), or pass `compare_outputs=False` to compare "
            "the configs only."
        )
    config = layer.get_config()
    _check_config(layer, config, arguments, f"{label}: get_config()")
    clone = _rebuild(label, "from_config(get_config())", lambda: type(layer).from_config(config))
    _check_config(clone, clone.get_config(), arguments, f"{label}: from_config(get_config())")
    road = f"{label}: from_config(get_config())"
    same(expected, _run_layer(clone, images), road, arguments)
    component = spec.to_spec(registry, layer)
    _check_config(layer, component["config"], arguments, f"{label}: kclr.spec.to_spec")
    rebuilt = _rebuild(label, "to_spec -> build", lambda: registry.get(component))
    same(expected, _run_layer(rebuilt, images), f"{label}: to_spec -> build", arguments)
    model = keras.Sequential([make()])
    reloaded = _rebuild(label, ".keras save/load", lambda: _save_and_load(model)).layers[0]
    _check_config(reloaded, reloaded.get_config(), arguments, f"{label}: .keras save/load")
    same(expected, _run_layer(reloaded, images), f"{label}: .keras save/load", arguments)


def check_layer(
    layer: Any,
    arguments: dict[str, Any],
    *,
    registry: Any = None,
    skip: Iterable[str] = (),
    compare_outputs: bool = True,
) -> None:
    """Asserts that every constructor argument of an augmentation layer survives.

    With a non-default value for every argument in `arguments` (the seed included),
    each argument must be in `get_config()` with its value, and the layer rebuilt by
    `from_config`, by `kclr.spec.to_spec` -> `registry.get`, and from a `.keras` file
    must give the same output on the same seeded `[4, 16, 16, 3]` batch.

    Args:
        layer: the layer class, or its registered name.
        arguments: `{argument: non-default value}` for every constructor argument.
        registry: where the class is registered (default `kclr.registry.augmentations`).
        skip: arguments that cannot be given a value here (say why in a comment).
        compare_outputs: compare outputs as well as configs. A layer whose randomness does
            not follow its seed (two layers built alike differ) is refused unless False.

    Raises:
        ComponentCheckError (an `AssertionError`): names the argument that is lost.

    Example:

    ```python
    check_layer(RandomPosterize, {"bits": 2, "probability": 1.0, "seed": 3})
    ```
    """
    registry = registry or kregistry.augmentations
    cls, label = _start("check_layer", layer, arguments, skip, registry)
    _layer_roads(cls(**arguments), lambda: cls(**arguments), registry, arguments, label,
                 compare_outputs=compare_outputs)  # fmt: skip


def check_recipe(
    recipe: Any,
    arguments: dict[str, Any],
    *,
    image_size: int = 16,
    registry: Any = None,
    skip: Iterable[str] = (),
) -> None:
    """Asserts that a recipe accepts every argument and that what it builds survives.

    The spec `{"name": recipe, "config": arguments}` must pass `kclr.spec.check` (so
    `kclr fit --set augmentation.config.<argument>=...` works); the augmenter built with
    `image_size` must give the same output after `get_config` -> `from_config`,
    `kclr.spec.to_spec` -> build and a `.keras` file. When it does not, each argument is
    tried alone and the ones that are lost are named.

    Args:
        recipe: the registered recipe name.
        arguments: `{argument: non-default value}` for every argument the recipe
            function names, except the run's `image_size`; arguments of the recipe it
            `extends` may be added (that recipe's own tests check them all).
        image_size: the run argument.
        registry: default `kclr.registry.recipes`.
        skip: arguments that cannot be given a value here.

    Example:

    ```python
    check_recipe("simclr_posterize", {"bits": 2, "posterize_probability": 0.9})
    ```
    """
    registry = registry or kregistry.recipes
    function = registry.get_class(recipe)
    label = f"check_recipe({recipe!r})"
    run = set(spec.run_arguments(registry, recipe))
    own = {k: v for k, v in arguments.items() if k not in run}
    spec.check(registry, {"name": recipe, "config": own}, "recipe", supplied=run)
    _check_coverage(function, own, set(skip) | run, registry, label)
    layers = kregistry.augmentations

    def make(values):
        return registry.get(recipe, image_size=image_size, **values)

    size = max(image_size, 16)
    try:
        _layer_roads(make(own), lambda: make(own), layers, {}, label, size)
    except ComponentCheckError as error:
        lost = []
        for name, value in own.items():
            try:
                _layer_roads(make({name: value}), lambda n=name, v=value: make({n: v}), layers,
                             {}, label, size)  # fmt: skip
            except ComponentCheckError:
                lost.append(name)
        raise ComponentCheckError(
            f"{label}: the augmenter it builds is not the same after a round trip; lost with "
            f"{', '.join(lost) or 'the arguments together'}. {error}"
        ) from None


# -------------------------------------------------------------------------------- losses
def check_loss(
    loss: Any, arguments: dict[str, Any], *, registry: Any = None, skip: Iterable[str] = ()
) -> None:
    """Asserts that every constructor argument of a loss survives.

    Each argument must be in `get_config()`; the loss rebuilt by `from_config`, by
    `kclr.spec.to_spec` -> build, and from Keras's serialized form (what a `.keras` file
    stores for a compiled loss) must give the same value on seeded labels `[4]` and
    features `[4, 2, 8]`.

    Example:

    ```python
    check_loss(MyLoss, {"temperature": 0.2})
    ```
    """
    import keras

    registry = registry or kregistry.losses
    cls, label = _start("check_loss", loss, arguments, skip, registry)
    labels, features = _features(8)
    original = cls(**arguments)
    expected = float(original(labels, features))
    config = original.get_config()
    _check_config(original, config, arguments, f"{label}: get_config()")
    component = spec.to_spec(registry, original)
    _check_config(original, component["config"], arguments, f"{label}: kclr.spec.to_spec")
    serialized = keras.saving.serialize_keras_object(original)
    roads = {
        "from_config(get_config())": lambda: cls.from_config(config),
        "to_spec -> build": lambda: registry.get(component),
        "Keras serialize/deserialize": lambda: keras.saving.deserialize_keras_object(serialized),
    }
    for road, rebuild in roads.items():
        copy = _rebuild(label, road, rebuild)
        _check_config(copy, copy.get_config(), arguments, f"{label}: {road}")
        _check_same(expected, float(copy(labels, features)), f"{label}: {road}", arguments)


# --------------------------------------------------------------------------------- heads
def check_head(
    head: Any,
    arguments: dict[str, Any],
    *,
    input_dim: int = 8,
    registry: Any = None,
    skip: Iterable[str] = (),
) -> None:
    """Asserts that every constructor argument of a projection head survives.

    Each argument must be in `get_config()`; the head rebuilt by `from_config` and by
    `kclr.spec.to_spec` -> build (given the original's weights), and a model holding it
    saved to and loaded from a `.keras` file, must give the same outputs on seeded
    features `[4, input_dim]`. A head registered as a factory is checked through the
    layer it returns (`from_config` and the `.keras` file).

    Example:

    ```python
    check_head(MyHead, {"output_dim": 16})
    ```
    """
    import keras

    registry = registry or kregistry.heads
    obj, label = _start("check_head", head, arguments, skip, registry)
    features = _features(input_dim)[1][:, 0]
    original = obj(**arguments)
    expected = original(features, training=False)
    is_class = inspect.isclass(obj)
    config = original.get_config()
    if is_class:
        _check_config(original, config, arguments, f"{label}: get_config()")

    def same_weights(copy):
        copy(features, training=False)  # builds it
        copy.set_weights(original.get_weights())
        return copy(features, training=False)

    copy = _rebuild(label, "from_config(get_config())", lambda: type(original).from_config(config))
    _check_same(expected, same_weights(copy), f"{label}: from_config(get_config())", arguments)
    if is_class:
        component = spec.to_spec(registry, original)
        _check_config(original, component["config"], arguments, f"{label}: kclr.spec.to_spec")
        rebuilt = _rebuild(label, "to_spec -> build", lambda: registry.get(component))
        _check_same(expected, same_weights(rebuilt), f"{label}: to_spec -> build", arguments)
    inputs = keras.Input((input_dim,))
    model = keras.Model(inputs, original(inputs))
    reloaded = _rebuild(label, ".keras save/load", lambda: _save_and_load(model))
    _check_same(expected, reloaded(features, training=False), f"{label}: .keras save/load",
                arguments)  # fmt: skip
    if is_class:
        inner = next(layer for layer in reloaded.layers if type(layer) is obj)
        _check_config(inner, inner.get_config(), arguments, f"{label}: .keras save/load")
