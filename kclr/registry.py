"""One registry class for every configurable kind of kclr component.

The kinds are augmentation layers, augmentation recipes, encoders, projection
heads, losses, optimizers, learning-rate schedules, evaluation protocols and
training methods.
Built-ins and third-party plugins go through the same door: Python entry points.
kclr declares its own built-ins in the entry-point groups of its `pyproject.toml`
(`kclr.augmentations`, `kclr.recipes`, `kclr.encoders`, `kclr.heads`,
`kclr.losses`, `kclr.optimizers`, `kclr.schedules`, `kclr.protocols`,
`kclr.methods`), and a
plugin package declares its objects in the same groups. A component of a run
configuration is a spec `{"name": <registered name>, "config": {...}}` resolved
here (see `kclr.spec`). Discovery is lazy: nothing
is read from `importlib.metadata` until a registry is first queried.

The built-ins are also registered by a decorator in their own module, so they are
available even with plugin discovery switched off (`KCLR_DISABLE_PLUGINS=1`) and
so that every registered class is Keras-serializable (saved models reload without
`custom_objects`).

Example:

```python
from kclr import registry

loss = registry.losses.get("ntxent", temperature=0.5)
registry.losses.get({"name": "supcon", "config": {"temperature": 0.1}})
for entry in registry.augmentations.entries():
    print(entry.name, entry.origin, entry.description)
```

This is the only module of kclr that reads entry points. A registry registers,
discovers and looks names up; building a component from a spec (checking its
arguments, adding the ones a run supplies) is `kclr.spec`'s job.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import inspect
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

DISABLE_ENV = "KCLR_DISABLE_PLUGINS"
BUILTIN_ORIGIN = "kclr"


class RegistryError(ValueError):
    """A registry lookup or registration failed (unknown name, wrong kind, ...)."""


class RegistryClashError(RegistryError):
    """Two sources registered the same name without an explicit override."""


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the rest of kclr keeps working."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered object and where it came from."""

    name: str
    kind: str
    obj: Any
    origin: str  # distribution name ("kclr" for built-ins)
    version: str
    description: str

    @property
    def is_builtin(self) -> bool:
        return self.origin == BUILTIN_ORIGIN


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def plugins_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _resolve_base(spec: str) -> type:
    module, _, attr = spec.rpartition(".")
    obj: Any = importlib.import_module(module)
    return getattr(obj, attr)


class Registry:
    """A named collection of one kind of kclr component.

    Args:
        kind: singular name of the kind, e.g. `"loss"` (used in messages).
        group: the entry-point group third parties use, e.g. `"kclr.losses"`.
        base: dotted path of the class every entry must subclass (or, for
            factories, return an instance of), e.g. `"keras.losses.Loss"`.
            Resolved lazily so that importing kclr does not import Keras.
        builtin_module: module whose import registers kclr's own entries.
        allow_factories: if True, plain functions are accepted as entries and
            their return value is checked against `base` when called.
        run_arguments: the arguments a run supplies to an entry that does not declare
            its own `run_arguments` (see `kclr.spec.run_arguments`).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        base: str,
        builtin_module: str,
        allow_factories: bool = False,
        run_arguments: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.group = group
        self.base = base
        self.builtin_module = builtin_module
        self.allow_factories = allow_factories
        self.run_arguments = tuple(run_arguments)
        self._entries: dict[str, Entry] = {}
        self._discovered = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ adding
    def register(
        self,
        name: str | None = None,
        *,
        description: str | None = None,
        override: bool = False,
    ) -> Callable[[Any], Any]:
        """Decorator registering a built-in class or factory under `name`.

        Classes are also registered with
        `keras.saving.register_keras_serializable(package="kclr")`.
        """

        def decorator(obj: Any) -> Any:
            self.add(
                name or _snake(obj.__name__),
                obj,
                origin=_origin_of(obj),
                description=description,
                override=override,
            )
            return obj

        return decorator

    def add(
        self,
        name: str,
        obj: Any,
        *,
        origin: str = BUILTIN_ORIGIN,
        version: str | None = None,
        description: str | None = None,
        override: bool = False,
    ) -> Entry:
        """Registers `obj` under `name`; see `register` for the decorator form."""
        with self._lock:
            self._check_kind(name, obj, origin)
            existing = self._entries.get(name)
            if existing is not None and existing.obj is not obj:
                wants_override = override or getattr(obj, "kclr_override", False)
                if not wants_override:
                    raise RegistryClashError(
                        f"Two {self.kind} entries are named {name!r}: one from "
                        f"{existing.origin!r} ({_qualname(existing.obj)}) and one from "
                        f"{origin!r} ({_qualname(obj)}). Rename one of them, or override "
                        "explicitly: `register(..., override=True)` for code, or set "
                        "`kclr_override = True` on the plugin's object."
                    )
            if existing is not None and existing.obj is obj:
                return existing
            if inspect.isclass(obj) and not obj.__module__.startswith("keras"):
                _make_serializable(obj, package=_keras_package(origin))
            entry = Entry(
                name=name,
                kind=self.kind,
                obj=obj,
                origin=origin,
                version=version or _dist_version(origin),
                description=description or _first_line(obj),
            )
            self._entries[name] = entry
            return entry

    def _check_kind(self, name: str, obj: Any, origin: str) -> None:
        extends = getattr(obj, "extends", None)
        if extends is not None and not (isinstance(extends, str) or callable(extends)):
            from kclr import spec

            raise RegistryError(
                f"Refused {self.kind} {name!r} from {origin!r}: "
                + spec.extends_error(getattr(obj, "__name__", name), extends)
            )
        base = _resolve_base(self.base)
        if inspect.isclass(obj):
            if issubclass(obj, base):
                return
        elif self.allow_factories and callable(obj):
            return
        expected = f"a subclass of `{self.base}`"
        if self.allow_factories:
            expected += " or a function returning one"
        raise RegistryError(
            f"Refused {self.kind} {name!r} from {origin!r}: expected {expected}, "
            f"received {_qualname(obj)} ({type(obj).__name__}). Fix the plugin's "
            f"entry point in the {self.group!r} group to point at such an object."
        )

    # --------------------------------------------------------------- discovery
    def _ensure_loaded(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            importlib.import_module(self.builtin_module)
            self._discovered = True
            if not plugins_disabled():
                self._discover_entry_points()

    def _discover_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "unknown"
            try:
                obj = ep.load()
            except Exception as error:  # noqa: BLE001 - any plugin error must not break kclr
                warnings.warn(
                    f"kclr could not load the {self.kind} plugin {ep.name!r} "
                    f"({ep.value}) from the distribution {dist!r} {version}: "
                    f"{type(error).__name__}: {error}. The rest of kclr keeps "
                    f"working; reinstall or uninstall {dist!r} to silence this.",
                    PluginWarning,
                    stacklevel=3,
                )
                continue
            try:
                self.add(ep.name, obj, origin=dist, version=version)
            except RegistryClashError:
                raise
            except RegistryError as error:
                warnings.warn(str(error), PluginWarning, stacklevel=3)

    def reset(self) -> None:
        """Forgets discovered plugins (built-ins stay); discovery runs again on next use."""
        with self._lock:
            self._entries = {k: e for k, e in self._entries.items() if e.is_builtin}
            self._discovered = False

    # ------------------------------------------------------------------ lookup
    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        self._ensure_loaded()
        return [self._entries[n] for n in sorted(self._entries)]

    def entry(self, name: str) -> Entry:
        self._ensure_loaded()
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(name, self._entries, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise RegistryError(
            f"Unknown {self.kind} {name!r}.{hint} Known {self.kind} names: "
            f"{', '.join(sorted(self._entries)) or '(none)'}. Plugins add more: "
            f"see `kclr plugins list {self.group.split('.')[-1]}`."
        )

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def get_class(self, name: str) -> Any:
        return self.entry(name).obj

    def base_class(self) -> type:
        """The class every entry is (or returns) an instance of."""
        return _resolve_base(self.base)

    def get(self, identifier: Any, **kwargs: Any) -> Any:
        """Returns an instance from a name, an instance or a config dict.

        The registry only looks the name up; `kclr.spec.resolve` checks and builds.

        Args:
            identifier: a registered name (`"ntxent"`), an existing instance (returned
                as is), or a dict `{"name": ..., "config": {...}}`. Keras's serialized
                form `{"class_name": ..., "config": ...}` is accepted too.
            **kwargs: constructor arguments used with a name.
        """
        from kclr import spec

        return spec.resolve(self, identifier, **kwargs)

    def name_of(self, obj: Any) -> str:
        """The registered name of `obj`'s class (or of `obj` itself, a class or factory)."""
        self._ensure_loaded()
        for entry in self._entries.values():
            if entry.obj is obj or (inspect.isclass(entry.obj) and type(obj) is entry.obj):
                return entry.name
        raise RegistryError(
            f"{_qualname(obj)} is not a registered {self.kind}; register it to use it by name."
        )

    def name_for_class(self, class_name: str) -> str:
        """The registered name of the entry whose class is called `class_name`."""
        self._ensure_loaded()
        for entry in self._entries.values():
            if getattr(entry.obj, "__name__", None) == class_name:
                return entry.name
        return class_name

    def __repr__(self) -> str:
        return f"Registry(kind={self.kind!r}, group={self.group!r})"


def snake_case(name: str) -> str:
    """`"MoCoV3"` -> `"mo_co_v3"`: the default registered name of a class."""
    return _snake(name)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _normalize(dist: str) -> str:
    return dist.lower().replace("-", "_").replace(".", "_")


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"


def _origin_of(obj: Any) -> str:
    module = getattr(obj, "__module__", "") or ""
    root = module.split(".")[0]
    if root == "kclr":
        return BUILTIN_ORIGIN
    dists = importlib.metadata.packages_distributions().get(root)
    return dists[0] if dists else root


def _keras_package(origin: str) -> str:
    return "kclr" if origin == BUILTIN_ORIGIN else _normalize(origin)


def _make_serializable(cls: type, package: str) -> None:
    import keras

    key = f"{package}>{cls.__name__}"
    if keras.saving.get_registered_object(key) is cls:
        return
    keras.saving.register_keras_serializable(package=package)(cls)


# kind, entry-point group, base class, module registering the built-ins, factories allowed,
# default run arguments
augmentations = Registry("augmentation", "kclr.augmentations", "keras.layers.Layer", "kclr.augment")
recipes = Registry(
    "recipe", "kclr.recipes", "keras.layers.Layer", "kclr.augment.recipes", True, ("image_size",)
)
encoders = Registry("encoder", "kclr.encoders", "keras.Model", "kclr.models", True)
heads = Registry("head", "kclr.heads", "keras.layers.Layer", "kclr.models", True)
losses = Registry("loss", "kclr.losses", "keras.losses.Loss", "kclr.losses")
optimizers = Registry(
    "optimizer", "kclr.optimizers", "keras.optimizers.Optimizer", "kclr.optimizers",
    run_arguments=("learning_rate",),
)  # fmt: skip
schedules = Registry(
    "schedule", "kclr.schedules", "keras.optimizers.schedules.LearningRateSchedule",
    "kclr.optimizers",
)  # fmt: skip
protocols = Registry(
    "protocol", "kclr.protocols", "kclr.evaluation.protocols.Protocol", "kclr.evaluation.protocols"
)
methods = Registry(
    "method", "kclr.methods", "kclr.methods.base.Method", "kclr.methods",
    run_arguments=(),
)  # fmt: skip
# Presets from plugin packages: a function returning the preset's dictionary (kclr's own
# presets are the YAML files of `kclr.presets`, read by that module).
presets = Registry("preset", "kclr.presets", "builtins.dict", "kclr.presets", True)

REGISTRIES: dict[str, Registry] = {
    "augmentations": augmentations,
    "recipes": recipes,
    "encoders": encoders,
    "heads": heads,
    "losses": losses,
    "optimizers": optimizers,
    "schedules": schedules,
    "protocols": protocols,
    "methods": methods,
}
