"""The import graph of kclr/: imports go down the layers, no cycles, no reach into private names.

The layers are those of docs/architecture.md (`LAYERS`). Every import counts, also one written inside
a function: an import moved into a function to dodge a cycle or a layer still makes the two modules
depend on each other. Only imports under `if TYPE_CHECKING:` (which never run) are left out.
"""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[1] / "kclr"

# docs/architecture.md, top to bottom: a part imports only parts of its own layer or below.
# A part is a sub-package or top-level module of kclr (`kclr` itself is the package's face).
LAYERS: list[tuple[str, set[str]]] = [
    ("entry points", {"cli", "testing"}),
    ("run, curate", {"run", "curate"}),
    ("evaluation, zoo, export", {"evaluation", "zoo", "export"}),
    ("training", {"trainer", "methods"}),
    ("data", {"data"}),
    ("components", {"augment", "models", "losses", "optimizers"}),
    (
        "spec, registry, leaves",
        {"kclr", "_lazy", "spec", "registry", "presets", "runtime", "distribute", "durable"},
    ),
]


def _module_name(path: pathlib.Path, root: pathlib.Path = PACKAGE_ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: pathlib.Path = PACKAGE_ROOT) -> dict[str, pathlib.Path]:
    return {_module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(module: str, path: pathlib.Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:` (they never run)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for inner in ast.walk(child):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        lines.add(inner.lineno)
    return lines


def _analyse(root: pathlib.Path = PACKAGE_ROOT):
    modules = _modules(root)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    private_uses: list[str] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped = _type_checking_blocks(tree)
        aliases: dict[str, str] = {}  # local name -> kclr module it is bound to
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skipped:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        edges[module].add(alias.name)
                        if alias.asname:
                            aliases[alias.asname] = alias.name
                        if _is_private(alias.name.rpartition(".")[2]):
                            private_uses.append(f"{module} imports {alias.name}")
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, path, node)
                if not source.startswith("kclr"):
                    continue
                for alias in node.names:
                    target = f"{source}.{alias.name}"
                    if target in modules:
                        edges[module].add(target)
                        aliases[alias.asname or alias.name] = target
                        if _is_private(alias.name) and source != module:
                            private_uses.append(f"{module} imports module {target}")
                    else:
                        if source in modules:
                            edges[module].add(source)
                        if _is_private(alias.name) and source != module:
                            private_uses.append(f"{module} imports {source}.{alias.name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and aliases[node.value.id] != module
                and _is_private(node.attr)
            ):
                private_uses.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
        edges[module].discard(module)
    return edges, sorted(set(private_uses))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _layer_of(part: str) -> int | None:
    """The layer's index, 0 at the top (None: the part is in no layer)."""
    return next((i for i, (_, parts) in enumerate(LAYERS) if part in parts), None)


def _upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Every import from a lower layer to a higher one, and every part in no layer."""
    found = []
    for module, targets in sorted(edges.items()):
        here = _layer_of(_part(module))
        if here is None:
            found.append(f"{module}: `{_part(module)}` is in no layer of LAYERS")
            continue
        for target in sorted(targets):
            there = _layer_of(_part(target))
            if there is not None and there < here:
                found.append(
                    f"{module} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]}, above)"
                )
    return found


def test_the_analysis_sees_a_cycle_and_a_private_import():
    # The checker itself can fail: a two-module cycle is one component, a private import is listed.
    edges = {"kclr.a": {"kclr.b"}, "kclr.b": {"kclr.a"}, "kclr.c": {"kclr.a"}}
    assert _cycles(edges) == [["kclr.a", "kclr.b"]]
    assert _is_private("_helper") and not _is_private("__version__")


def test_the_layer_check_fails_on_a_planted_upward_import(tmp_path):
    # A copy of kclr/ with one import against the order, written inside a function, fails;
    # the same import under `if TYPE_CHECKING:` does not.
    root = tmp_path / "kclr"
    shutil.copytree(PACKAGE_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    step = root / "trainer" / "step.py"
    text = step.read_text()
    step.write_text(text + "\n\ndef _planted():\n    from kclr.run import fit\n\n    return fit\n")
    found = _upward_imports(_analyse(root)[0])
    assert found == ["kclr.trainer.step (training) imports kclr.run.fit (run, curate, above)"]
    step.write_text(
        text
        + "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from kclr.run import fit\n"
    )
    assert _upward_imports(_analyse(root)[0]) == []
    assert _upward_imports({"kclr.newpart.x": set()}) == [
        "kclr.newpart.x: `newpart` is in no layer of LAYERS"
    ]


def test_imports_go_down_the_layers_of_docs_architecture():
    found = _upward_imports(_analyse()[0])
    assert not found, "imports against the layer order of docs/architecture.md:\n" + "\n".join(
        found
    )


def test_kclr_has_no_import_cycle():
    edges, _ = _analyse()
    cycles = _cycles(edges)
    assert not cycles, "import cycles in kclr/:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_names():
    _, private_uses = _analyse()
    assert not private_uses, "private names used across modules:\n" + "\n".join(private_uses)


@pytest.mark.parametrize(
    "module", sorted(name for name in _modules() if name.startswith("kclr.zoo"))
)
def test_every_zoo_module_imports_on_its_own(module):
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
