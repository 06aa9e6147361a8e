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


@pytest.mark.parametrize("typo, want", [("staus", "'status'"), ("qery", "'query'")])
def test_a_typo_suggests_once(capsys, typo, want):
    assert main([typo]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"opsbench: error: No such command '{typo}'.")
    assert err[0].count("Did you mean") == 1 and want in err[0], err[0]


def test_counts_take_their_plural(capsys):
    """`(1 row)`, not `(1 rows)`; a backtest replaying one run of a job says `1 x run`."""
    import datetime as dt
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from ops.cli import backtest_cmd, query_cmd

    # the footer comes back to the caller, which prints it on stderr with any note as one line
    assert query_cmd._print_table(["n"], [20], [(1,)], 1) == "(1 row)"
    assert query_cmd._print_table(["n"], [20], [(1,), (2,)], 2) == "(2 rows)"
    capsys.readouterr()
    t = dt.datetime(2026, 3, 18, tzinfo=dt.timezone.utc)
    report = SimpleNamespace(noise_counts=lambda: {}, start=t, end=t, days=1.0, step=dt.timedelta(minutes=5),
                             jobs={"reconcile": 1, "metric_probes": 288}, failed_runs={}, seconds=3.0, messages=[],
                             per_rule=lambda: [], per_day=lambda zone: [], has_manifest=False, incidents=[])
    first = backtest_cmd.render(report, ZoneInfo("UTC")).splitlines()[0]
    assert "288 metric_probes runs, 1 reconcile run," in first, first
