"""A throwaway plugin distribution, laid out the way pip installs one.

`write_distribution(root, name, entry_points, modules)` writes `<name>-<version>.dist-info`
(METADATA and entry_points.txt) and the plugin's modules into `root`; with `root` on
`sys.path` (or `PYTHONPATH`), `importlib.metadata` finds the entry points, so kclr's
registries discover the plugin exactly as they discover a pip-installed one.

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

import pathlib
import textwrap


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
