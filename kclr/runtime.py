"""Process settings that must be made before TensorFlow is imported: the CPU path (oneDNN).

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported, so `kclr fit` decides
it first, from `runtime.onednn` (`auto`, `on`, `off`), and says which path it took in the
run log. `auto` uses a fast check of the processor (its instruction sets, from
`/proc/cpuinfo`): oneDNN on with AVX-512, off without it, where TensorFlow's own kernels
were measured faster (docs/workflow.md). A `TF_ENABLE_ONEDNN_OPTS` the user exported wins
over `auto`; `on` and `off` win over it.

This module imports no TensorFlow.

Example:

```python
from kclr import runtime

line = runtime.apply_onednn("auto")   # before `import tensorflow`
print(line)                           # "CPU path: oneDNN off (runtime.onednn=auto: ...)"
```
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any

ONEDNN = ("auto", "on", "off")
ENV = "TF_ENABLE_ONEDNN_OPTS"


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags of the first processor (empty where unknown)."""
    try:
        text = pathlib.Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def choose_onednn(setting: str, flags: set[str] | None = None, env: dict | None = None):
    """`(enabled, reason)` for `runtime.onednn=setting` on this machine."""
    if setting not in ONEDNN:
        raise ValueError(
            f"Invalid value for `runtime.onednn`: received {setting!r}, expected one of "
            f"{', '.join(ONEDNN)}."
        )
    env = os.environ if env is None else env
    if setting != "auto":
        return setting == "on", f"runtime.onednn={setting}"
    if env.get(ENV) not in (None, ""):
        enabled = env[ENV].strip().lower() not in ("0", "false", "off")
        return enabled, f"runtime.onednn=auto, {ENV}={env[ENV]} set by the user"
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return True, "runtime.onednn=auto: processor unknown, TensorFlow's default"
    if "avx512f" in flags:
        return True, "runtime.onednn=auto: AVX-512 processor"
    return False, "runtime.onednn=auto: no AVX-512, TensorFlow's own CPU kernels are faster"


_APPLIED: dict[str, tuple[bool, str]] = {}  # setting -> the choice this process made


def apply_onednn(setting: str = "auto") -> str:
    """Sets `TF_ENABLE_ONEDNN_OPTS` for `setting` before TensorFlow is imported; returns the
    line the run log shows. After the import it changes nothing and says so."""
    enabled, reason = _APPLIED.get(setting) or choose_onednn(setting)
    if "tensorflow" in sys.modules:
        actual = os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off")
        if actual == enabled:
            return f"CPU path: oneDNN {'on' if actual else 'off'} ({reason})"
        return (
            f"CPU path: oneDNN {'on' if actual else 'off'}: {reason} asks for "
            f"{'on' if enabled else 'off'}, but TensorFlow was imported before it could act; "
            f"set {ENV}={int(enabled)} before importing TensorFlow, or use `kclr fit`"
        )
    os.environ[ENV] = "1" if enabled else "0"
    _APPLIED[setting] = (enabled, reason)
    return f"CPU path: oneDNN {'on' if enabled else 'off'} ({reason})"


def setting_from(
    preset: str | None, files: Any = (), values: dict | None = None, overrides: Any = ()
) -> str:
    """`runtime.onednn` of a run's sources, read without resolving the config (which imports
    TensorFlow): preset < files < values < overrides, as `kclr.config.resolve`."""
    from kclr import presets
    from kclr.run.config_sources import load_file, parse_override

    setting = "auto"
    sources = [presets.get(preset)] if preset is not None else []
    sources += [load_file(path) for path in files]
    sources += [values or {}] + [parse_override(text) for text in overrides]
    for source in sources:
        runtime = source.get("runtime") if isinstance(source, dict) else None
        if isinstance(runtime, dict) and "onednn" in runtime:
            setting = runtime["onednn"]
    if isinstance(setting, bool):  # YAML reads `off` / `on` as booleans
        setting = "on" if setting else "off"
    return setting
