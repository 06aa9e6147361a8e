"""`opsbench --help` and `opsbench query --list` start without the heavy libraries.

The command tree is declared in ops/cli/__init__.py (COMMANDS) so the root help
imports no command module, and `query --list` parses the SQL files without
SQLAlchemy. Each case runs in a fresh interpreter and reports what it imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from ops.cli import COMMANDS, _register, app, module_commands

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "sqlalchemy", "psycopg", "plotly", "numpy", "pydantic", "nbclient", "apscheduler")
# runs the CLI, then prints (on stderr, last line) which of the named modules it imported
PROBE = ("import sys; from ops.cli import main; code = main(sys.argv[2:]); "
         "print(' '.join(m for m in sys.argv[1].split(',') if m in sys.modules), file=sys.stderr); "
         "sys.exit(code)")


def _imported(argv: list[str], watch: list[str]) -> tuple[set[str], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(watch), *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": "/tmp", "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.strip().splitlines()[-1].split()) if proc.stderr.strip() else set(), proc.stdout


def test_help_imports_no_command_module_and_no_heavy_library():
    modules = sorted({f"ops.cli.{m}" for m, _ in COMMANDS.values()})
    loaded, out = _imported(["--help"], [*HEAVY, "rich", *modules])
    assert loaded == set(), loaded
    # and still lists every command
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == list(COMMANDS)


def test_query_list_imports_no_heavy_library():
    loaded, out = _imported(["query", "--list"], list(HEAVY))
    assert loaded == set(), loaded
    assert "revenue.daily" in out  # the list itself is there


def test_declared_tree_matches_the_modules():
    """COMMANDS names each command once, in the module that registers it, with the help that command has."""
    _register()
    registered = typer.main.get_command(app).commands
    assert set(registered) == set(COMMANDS)
    for name, (module, line) in COMMANDS.items():
        built = module_commands(module)
        assert name in built, (name, module)
        assert built[name].get_short_help_str(10**6) == line, name
        assert registered[name].get_short_help_str(10**6) == line, name


@pytest.mark.parametrize("argv, says", [
    (["query", "--format", "xml"], "--format"),
    (["db", "seed", "--scale", "huge"], "--scale"),
    (["staus"], "Did you mean 'status'"),
])
def test_a_bad_argument_is_one_line_and_exit_2(argv, says):
    proc = subprocess.run([sys.executable, "-m", "ops", *argv], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsbench: error:") and says in lines[0], proc.stderr
