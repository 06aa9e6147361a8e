"""Where the suite must run whole (CI), a skipped test fails the run.

`OPSBENCH_CI_NO_SKIPS=1` (set by .ci/run) turns every skip - a missing Chromium,
systemd-analyze or make, a read-only bind mount refused - into a failed run,
listed by name and reason at the end. Without it a skip stays a skip, so a
laptop without Chromium can still run `make test`.

A pytest plugin, registered by tests/conftest.py.
"""

from __future__ import annotations

import os

import pytest

_ENV = "OPSBENCH_CI_NO_SKIPS"
# read once, at import: tests/conftest.py clears OPSBENCH_* from the environment around each test
_ON = os.environ.get(_ENV, "") not in ("", "0")
_skipped: list[str] = []


def _on() -> bool:
    return _ON


def _note(report) -> None:
    # an xfail is reported as skipped with `wasxfail`: that is a known failure, not a missing part
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report) -> None:
    if _on():
        _note(report)


def pytest_collectreport(report) -> None:
    if _on():
        _note(report)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    # under pytest-xdist the workers' reports reach this hook on the controller too; decide there only
    if _on() and _skipped and not hasattr(session.config, "workerinput") and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _on() and _skipped:
        terminalreporter.section(f"{_ENV}: {len(_skipped)} skipped test(s) fail this run", sep="=", red=True)
        for line in _skipped:
            terminalreporter.write_line(line)
