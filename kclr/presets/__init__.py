"""Training presets: named, partial run configurations stored as YAML data.

Each preset is one `NAME.yaml` file in this package holding a `description` and
the sections of `kclr.run.config.Config` it changes from the defaults. Presets are
data, not code paths: `kclr fit --preset NAME` resolves the same file through
`kclr.run.config.resolve`, which validates every key.

| preset | what it is |
|---|---|
| `simclr_r50`, `simclr_r50_2x`, `simclr_r50_4x` | SimCLR v1 on ImageNet (paper defaults) |
| `simclr_v2_r50` | SimCLRv2 (3-layer head, sqrt LR scaling, wd 1e-4) |
| `supcon_r50` | SupCon on ImageNet (google-research `supcon/`) |
| `simclr_cifar10_r18` | the SimCLR README CIFAR-10 recipe |
| `supcon_cifar10_r50` | the SupContrast README CIFAR-10 recipe |
| `demo` | a tiny encoder on the built-in demo data, minutes on a CPU |
| `tiny` | a smoke-test preset (a few steps, 16-pixel images) |

Plugin packages add presets through the `kclr.presets` entry-point group: each entry is
a function returning the preset's dictionary (`kclr.registry.presets`), e.g.
`moco_v3_r50` from `kclr-mocov3`. A plugin preset may not reuse a built-in name.

Example:

```python
import kclr.presets

kclr.presets.names()                 # ['demo', 'simclr_cifar10_r18', ...]
kclr.presets.get("simclr_r50")["schedule"]["config"]["base_learning_rate"]   # 0.3
```
"""

from __future__ import annotations

import copy
import difflib
import importlib.resources
from typing import Any

_CACHE: dict[str, dict[str, Any]] = {}


def _files() -> dict[str, Any]:
    root = importlib.resources.files(__name__)
    return {
        entry.name[: -len(".yaml")]: entry
        for entry in root.iterdir()
        if entry.name.endswith(".yaml")
    }


def _plugin_presets() -> dict[str, Any]:
    from kclr import registry

    return {entry.name: entry for entry in registry.presets.entries()}


def names() -> list[str]:
    """The names of all presets (kclr's and the plugins'), sorted."""
    return sorted({*_files(), *_plugin_presets()})


def get(name: str) -> dict[str, Any]:
    """The preset `name` as a partial configuration dictionary (a fresh copy).

    Raises:
        ValueError: if there is no such preset; the message lists the presets and
            suggests the closest name.
    """
    import yaml

    files = _files()
    if name not in files and name in (plugins := _plugin_presets()):
        if name not in _CACHE:
            values = plugins[name].obj()
            if not isinstance(values, dict):
                raise ValueError(
                    f"The preset {name!r} of {plugins[name].origin!r} returned "
                    f"{type(values).__name__}, not a dictionary of configuration sections."
                )
            _CACHE[name] = values
        return copy.deepcopy(_CACHE[name])
    if name not in files:
        matches = difflib.get_close_matches(name, list(files), n=1, cutoff=0.5)
        hint = f" Did you mean {matches[0]!r}?" if matches else ""
        raise ValueError(
            f"Unknown preset {name!r}.{hint} Available presets: {', '.join(names())}. "
            "See `kclr presets list`."
        )
    if name not in _CACHE:
        _CACHE[name] = yaml.safe_load(files[name].read_text())
    return copy.deepcopy(_CACHE[name])


def describe(name: str) -> str:
    """The one-line description of preset `name`."""
    return str(get(name).get("description", ""))
