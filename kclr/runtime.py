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

`kclr fit` reads the setting from its merged sources (`kclr.run.config.merge_sources`),
which import no TensorFlow either.
"""

from __future__ import annotations

import os
import pathlib
import sys

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
    line the run log shows (`cpu_path`). After the import it changes nothing and says so."""
    if "tensorflow" not in sys.modules:
        enabled, reason = _APPLIED.get(setting) or choose_onednn(setting)
        os.environ[ENV] = "1" if enabled else "0"
        _APPLIED[setting] = (enabled, reason)
    return cpu_path(setting)


def cpu_path(setting: str = "auto") -> str:
    """The run log's line for `runtime.onednn=setting`: the path TensorFlow took, and
    whether that is the one asked for (a setting applied after the import cannot act)."""
    enabled, reason = _APPLIED.get(setting) or choose_onednn(setting)
    actual = os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off")
    if actual == enabled:
        return f"CPU path: oneDNN {'on' if actual else 'off'} ({reason})"
    return (
        f"CPU path: oneDNN {'on' if actual else 'off'}: {reason} asks for "
        f"{'on' if enabled else 'off'}, but TensorFlow was imported before it could act; "
        f"set {ENV}={int(enabled)} before importing TensorFlow, or use `kclr fit`"
    )
