"""`opsbench report --date` for a week that is not over yet."""

from __future__ import annotations

import datetime as dt

import pytest

from ops.core.settings import load_settings
from ops.core.clock import utc_now

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock


def _today(tz: str) -> dt.date:
    return utc_now().astimezone(load_settings(REPORT_TZ=tz).tz).date()


@pytest.mark.parametrize("days_back", [0, 1])
def test_weekly_date_in_the_running_week_is_refused(monkeypatch, capsys, days_back):
    from ops.cli import main

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:9/never")
    today = _today("UTC")
    monday = today - dt.timedelta(days=today.weekday())
    day = max(monday, today - dt.timedelta(days=days_back))
    if day >= today:  # today itself: refused as a day not over yet
        day = today
    assert main(["report", "weekly", "--date", day.isoformat()]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not over yet" in err[0] and "secret" not in err[0]


def test_weekly_date_of_a_finished_week_passes_the_check():
    from ops.cli.report_cmd import _parse_day

    settings = load_settings(REPORT_TZ="UTC")
    today = _today("UTC")
    last_sunday = today - dt.timedelta(days=today.weekday() + 1)
    assert _parse_day(last_sunday.isoformat(), settings, "weekly") == last_sunday
    assert _parse_day((last_sunday - dt.timedelta(days=6)).isoformat(), settings, "weekly") is not None

