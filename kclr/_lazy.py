"""Lazy public attributes for kclr's packages, so that importing them stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, targets: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Returns a module's `__getattr__` and `__dir__` resolving `targets` on first use.

    Args:
        package: the module's name (used in error messages).
        targets: public name -> `"module:attribute"`, or `"module"` for a submodule.
        namespace: the module's `globals()`; resolved values are cached there.
    """

    def __getattr__(name: str) -> Any:
        target = targets.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
        value = getattr(module, attribute) if attribute else module
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*targets, *namespace.get("__all__", ())})

    return __getattr__, __dir__
