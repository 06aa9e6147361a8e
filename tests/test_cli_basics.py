"""What every command line tool is expected to have: --version, -h, shell completion."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import ops
from ops.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"opsbench {ops.__version__}"


@pytest.mark.parametrize("argv", [[], ["query"], ["jobs"], ["status"], ["alerts"], ["report"], ["db"],
                                  ["db", "up"], ["telegram"],
                                  ["telegram", "test"], ["notebooks"]])
def test_short_h_is_help_everywhere(capsys, argv):
    assert main([*argv, "-h"]) == 0
    out = capsys.readouterr().out
    assert "Usage: opsbench" in out and "--help" in out and "-h" in out


def test_shell_completion_is_offered():
    env = {**os.environ, "_OPSBENCH_COMPLETE": "", "PYTHONWARNINGS": "ignore"}
    # typer finds the shell among the parent processes: run it from bash, as a user would
    proc = subprocess.run(["bash", "-c", f"'{sys.executable}' -m ops --show-completion; exit $?"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "complete" in proc.stdout and "opsbench" in proc.stdout.lower()


def test_main_called_again_does_not_stack_commands(capsys):
    """Tests and scripts call main() many times: the commands are registered once per process."""
    from ops.cli import app, main

    main(["--help"])
    before = (len(app.registered_commands), len(app.registered_groups))
    for _ in range(3):
        main(["--help"])
    assert (len(app.registered_commands), len(app.registered_groups)) == before
    capsys.readouterr()
