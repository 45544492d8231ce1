"""The command-line shell: lazy start-up, version, `plugins list`."""

from __future__ import annotations

import subprocess
import sys
import time

from click.testing import CliRunner

import kclr
from kclr.cli import main


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_help_imports_no_tensorflow_and_lists_every_command():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from kclr.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "ctx = main.make_context('kclr', ['--help'], resilient_parsing=True)\n"
        "names = main.list_commands(ctx)\n"
        "for name in names:\n"
        "    assert main.get_command(ctx, name) is not None, name\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'huggingface_hub') if m in sys.modules]\n"
        "print(','.join(names)); print('HEAVY', heavy)\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    names_line, heavy_line = result.stdout.strip().splitlines()[-2:]
    assert "plugins" in names_line.split(",")
    assert heavy_line == "HEAVY []"


def test_help_starts_fast():
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "kclr.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    # Under 1 s on a quiet 2-core machine; leave room for a loaded CI box.
    assert elapsed < 3.0, f"kclr --help took {elapsed:.2f}s"


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"kclr, version {kclr.__version__}"


def test_plugins_list_shows_builtin_rows_with_origin():
    result = CliRunner().invoke(main, ["plugins", "list", "losses"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["NAME", "KIND", "ORIGIN"]
    rows = {
        line.split()[0]: line.split() for line in lines[1:] if line and not line.startswith("(")
    }
    assert rows["ntxent"][1:4] == ["loss", "kclr", kclr.__version__]


def test_plugins_list_rejects_unknown_kind():
    result = CliRunner().invoke(main, ["plugins", "list", "lossez"])
    assert result.exit_code == 2
    assert "'lossez' is not one of" in result.output
