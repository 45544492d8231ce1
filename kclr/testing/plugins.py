"""A throwaway plugin distribution, laid out the way pip installs one.

`write_distribution(root, name, entry_points, modules)` writes `<name>-<version>.dist-info`
(METADATA and entry_points.txt) and the plugin's modules into `root`; with `root` on
`sys.path` (or `PYTHONPATH`), `importlib.metadata` finds the entry points, so kclr's
registries discover the plugin exactly as they discover a pip-installed one.
`installed_distribution(...)` does that for the length of a `with` block.

Example:

```python
from kclr.testing.plugins import write_distribution

write_distribution(
    tmp_path, "my-plugin", {"kclr.losses": {"my_loss": "my_plugin:MyLoss"}},
    {"my_plugin.py": "..."},
)
```
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
import textwrap
from collections.abc import Iterator


def write_distribution(
    root: pathlib.Path,
    name: str,
    entry_points: dict[str, dict[str, str]],
    modules: dict[str, str],
    version: str = "0.3.1",
) -> pathlib.Path:
    """Writes an installed distribution (dist-info + modules) into `root`; returns the dist-info.

    Args:
        root: a folder that is (or will be) on `sys.path`.
        name: the distribution name (`"my-plugin"`).
        entry_points: `{group: {entry name: "module:attribute"}}`.
        modules: `{file name: Python source}` (dedented before writing).
        version: the distribution version.
    """
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for filename, source in modules.items():
        (root / filename).write_text(textwrap.dedent(source))
    return dist_info


@contextlib.contextmanager
def installed_distribution(
    root: pathlib.Path,
    name: str,
    entry_points: dict[str, dict[str, str]],
    modules: dict[str, str],
    version: str = "0.3.1",
) -> Iterator[pathlib.Path]:
    """`write_distribution`, with `root` on `sys.path` and kclr's registries rediscovering.

    On exit the folder leaves `sys.path`, the plugin's modules are forgotten and the
    registries discover again (without it). Yields `root`.

    Example:

    ```python
    with installed_distribution(tmp_path, "my-plugin", entry_points, modules):
        registry.losses.get("my_loss")
    ```
    """
    from kclr import registry

    write_distribution(root, name, entry_points, modules, version)
    sys.path.insert(0, str(root))
    for reg in registry.REGISTRIES.values():
        reg.reset()
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for filename in modules:
            sys.modules.pop(pathlib.Path(filename).stem, None)
        for reg in registry.REGISTRIES.values():
            reg.reset()
