"""Job declarations: the shipped defaults, overrides, and one-line errors naming job and key."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import pytest
from support.daemon_support import ESSENTIAL_JOBS

from ops.core.settings import SettingsError, load_settings
from ops.daemon.jobspec import JobSpecError, essential_job_problems, load_enabled, load_jobs


def _write(tmp_path, text: str):
    path = tmp_path / "jobs.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _load(tmp_path, text: str, **env):
    path = _write(tmp_path, text)
    return load_jobs(load_settings(OPSBENCH_JOBS_FILE=str(path), **env))


def test_shipped_defaults_load_and_only_name_jobs_that_exist():
    specs = load_jobs(load_settings())
    ids = {s.id for s in specs}
    # the daemon's own jobs, the probes/cleanup/reconcile/review jobs, rollups and the reports
    assert {"drain_outbox", "heartbeat", "http_probes", "postgres_probe", "metric_probes", "cleanup",
            "reconcile", "weekly_review", "rollups", "daily_digest", "weekly_report"} <= ids
    for spec in specs:
        assert callable(spec.resolve())  # every default points at a real function
        assert spec.timezone == "UTC"    # REPORT_TZ default


def test_override_file_with_both_table_styles(tmp_path):
    specs = _load(tmp_path, """
[jobs.morning]
callable = "support.daemon_jobs:ok"
cron = "0 9 * * 1-5"
timeout = "2m"
[jobs.morning.args]
limit = 5

[[job]]
id = "fast"
callable = "support.daemon_jobs:slow"
interval = "90s"
catch_up = false
enabled = false
timezone = "Asia/Tokyo"
""", REPORT_TZ="Europe/Istanbul")
    by_id = {s.id: s for s in specs}
    morning, fast = by_id["morning"], by_id["fast"]
    assert morning.timezone == "Europe/Istanbul" and morning.timeout_s == 120 and morning.args == {"limit": 5}
    assert morning.catch_up is True and morning.enabled is True
    assert fast.interval_s == 90 and fast.catch_up is False and fast.enabled is False and fast.timezone == "Asia/Tokyo"


def test_crontab_weekday_numbers_mean_what_crontab_means(tmp_path):
    """APScheduler 3 counts Monday as 0; crontab counts Sunday as 0. We follow crontab."""
    (spec,) = _load(tmp_path, '[jobs.sunday]\ncallable = "support.daemon_jobs:ok"\ncron = "30 8 * * 0"\n')
    tz = ZoneInfo("UTC")
    # 2026-03-04 is a Wednesday; the next Sunday is 2026-03-08
    nxt = spec.trigger().get_next_fire_time(None, dt.datetime(2026, 3, 4, 12, 0, tzinfo=tz))
    assert nxt == dt.datetime(2026, 3, 8, 8, 30, tzinfo=tz)
    assert nxt.strftime("%A") == "Sunday"
    (weekdays,) = _load(tmp_path, '[jobs.w]\ncallable = "support.daemon_jobs:ok"\ncron = {minute = 0, hour = 9, '
                                  'day_of_week = "1-5"}\n')
    fire_days = set()
    t = dt.datetime(2026, 3, 1, tzinfo=tz)  # a Sunday
    for _ in range(7):
        t = weekdays.trigger().get_next_fire_time(None, t + dt.timedelta(seconds=1))
        fire_days.add(t.strftime("%a"))
    assert fire_days == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert weekdays.cron == "0 9 * * 1-5"


def test_schedule_in_words_and_sentry_monitor_config(tmp_path):
    specs = {s.id: s for s in _load(tmp_path, """
[jobs.daily]
callable = "support.daemon_jobs:ok"
cron = "0 9 * * *"
timeout = 600
timezone = "Europe/Istanbul"
[jobs.weekdays]
callable = "support.daemon_jobs:ok"
cron = "15 7 * * mon-fri"
[jobs.quarter]
callable = "support.daemon_jobs:ok"
cron = "*/15 * * * *"
[jobs.tick]
callable = "support.daemon_jobs:ok"
interval = "2h"
""")}
    assert specs["daily"].schedule_words() == "every day at 09:00 (Europe/Istanbul)"
    assert specs["weekdays"].schedule_words() == "at 07:15 on Mon-Fri (UTC)"
    assert specs["quarter"].schedule_words() == "every 15 minutes (UTC)"
    assert specs["tick"].schedule_words() == "every 2 hours"
    assert specs["daily"].monitor_config() == {
        "schedule": {"type": "crontab", "value": "0 9 * * *"}, "timezone": "Europe/Istanbul",
        "checkin_margin": 1, "max_runtime": 10}
    assert specs["tick"].monitor_config()["schedule"] == {"type": "interval", "value": 2, "unit": "hour"}
    assert specs["daily"].monitor_slug == "opsbench-daily"


@pytest.mark.parametrize("body, needle", [
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ninterval = "5m"\ntimout = 3\n', "job 'a': key 'timout': unknown key"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ncron = "61 * * * *"\n', "job 'a': key 'cron'"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ncron = "0 9 * *"\n', "job 'a': key 'cron': expected a crontab"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\n', "job 'a': key 'interval': give exactly one of cron or interval"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ninterval = "soon"\n', "job 'a': key 'interval'"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\ntimeout = -1\n', "job 'a': key 'timeout'"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\ntimezone = "Mars/Olympus"\n',
     "job 'a': key 'timezone'"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\nenabled = "yes"\n', "job 'a': key 'enabled'"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:nope"\ninterval = 60\n', "job 'a': key 'callable': cannot load"),
    ('[jobs.a]\ncallable = "no_such_module:f"\ninterval = 60\n', "job 'a': key 'callable': cannot load"),
    ('[jobs.a]\ncallable = "not a path"\ninterval = 60\n', "job 'a': key 'callable'"),
    ('[jobs.Bad-Id]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\n', "key 'id'"),
    ('[[job]]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\n', "job #1: key 'id'"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\n[[job]]\nid = "a"\ncallable = "support.daemon_jobs:slow"\ninterval = 1\n',
     "job 'a': declared twice"),
    ('[jobs.a]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\nargs = 3\n', "job 'a': key 'args'"),
    ('[jobz.a]\ncallable = "x:y"\n', "unknown top-level key 'jobz'"),
    ('[jobs.a\n', "not valid TOML"),
])
def test_bad_file_fails_naming_job_and_key(tmp_path, body, needle):
    with pytest.raises(JobSpecError) as err:
        _load(tmp_path, body)
    message = str(err.value)
    assert needle in message
    assert "\n" not in message
    assert str(tmp_path / "jobs.toml") in message
    assert isinstance(err.value, SettingsError)  # the CLI turns it into one line and exit 2


def test_missing_override_file_names_the_variable(tmp_path):
    with pytest.raises(JobSpecError, match="OPSBENCH_JOBS_FILE: .* does not exist"):
        load_jobs(load_settings(OPSBENCH_JOBS_FILE=str(tmp_path / "nope.toml")))


def test_disabled_job_with_unloadable_callable_is_accepted(tmp_path):
    """A job switched off need not be importable (e.g. its module is not deployed here)."""
    (spec,) = _load(tmp_path, '[jobs.off]\ncallable = "not_here:f"\ninterval = 60\nenabled = false\n')
    assert spec.enabled is False


# -- the jobs' own arguments, checked at load --------------------------------------------

@pytest.mark.parametrize("body, needle", [
    ('[jobs.cleanup]\ncallable = "jobs.cleanup:cleanup"\ncron = "30 3 * * *"\n[jobs.cleanup.args]\nbatch_size = 0\n',
     "job 'cleanup': args.batch_size: expected at least 1"),
    ('[jobs.cleanup]\ncallable = "jobs.cleanup:cleanup"\ncron = "30 3 * * *"\n[jobs.cleanup.args]\n'
     'error_log_retention = "forever"\n', "job 'cleanup': args.error_log_retention: expected days or a duration"),
    ('[jobs.cleanup]\ncallable = "jobs.cleanup:cleanup"\ncron = "30 3 * * *"\n[jobs.cleanup.args]\n'
     'max_share = { error_log = 2 }\n', "job 'cleanup': args.max_share: expected a share between 0 and 1"),
    ('[jobs.cleanup]\ncallable = "jobs.cleanup:cleanup"\ncron = "30 3 * * *"\n[jobs.cleanup.args]\nmax_row = 5\n',
     "job 'cleanup': args.max_row: unknown key"),
    ('[jobs.web]\ncallable = "jobs.probes:http_probes"\ninterval = "1m"\n[jobs.web.args]\n'
     'targets = [{ url = "ftp://nope" }]\n', "job 'web': args.targets #1: key 'url': expected an http:// or https://"),
    ('[jobs.web]\ncallable = "jobs.probes:http_probes"\ninterval = "1m"\n[jobs.web.args]\ntimeout_s = "soon"\n'
     'targets = []\n', "job 'web': args.timeout_s: expected a number"),
    ('[jobs.web]\ncallable = "jobs.probes:http_probes"\ninterval = "1m"\n[jobs.web.args]\n'
     'targets = [{ url = "http://a/", expect_status = "ok" }]\n', "job 'web': args.targets 'a': key 'expect_status'"),
    ('[jobs.pg]\ncallable = "jobs.probes:postgres"\ninterval = "1m"\n[jobs.pg.args]\nlong_query_s = "a while"\n',
     "job 'pg': args.long_query_s: expected a number"),
    ('[jobs.m]\ncallable = "jobs.metrics:metric_probes"\ninterval = "5m"\n[jobs.m.args]\nwindows = ["15min", "soon"]\n',
     "job 'm': args.windows: expected a duration"),
    ('[jobs.m]\ncallable = "jobs.metrics:metric_probes"\ninterval = "5m"\n[jobs.m.args]\nstuck_after = "0s"\n',
     "job 'm': args.stuck_after: expected a positive duration"),
    ('[jobs.m]\ncallable = "jobs.metrics:metric_probes"\ninterval = "5m"\n[jobs.m.args.rate_limits]\n'
     'video_generation = { max = 10, window = "an hour" }\n', "job 'm': args.rate_limits.video_generation.window"),
    ('[jobs.m]\ncallable = "jobs.metrics:error_rate"\ninterval = "5m"\n[jobs.m.args]\nwarn_pct = "high"\n',
     "job 'm': args.warn_pct: expected a number"),
    ('[jobs.r]\ncallable = "jobs.reconcile:reconcile"\ncron = "0 4 * * *"\n[jobs.r.args]\nchecks = ["nope"]\n',
     "job 'r': args.checks: expected a list drawn from"),
    ('[jobs.w]\ncallable = "jobs.reviews:weekly_review"\ncron = "0 8 * * mon"\n[jobs.w.args]\nbaseline_weeks = 0\n',
     "job 'w': args.baseline_weeks: expected a whole number of at least 1"),
    ('[jobs.ro]\ncallable = "jobs.rollups:refresh"\ncron = "10 * * * *"\n[jobs.ro.args]\ndays = "3"\n',
     "job 'ro': args.days: expected a whole number, got '3'"),
    ('[jobs.ro]\ncallable = "jobs.rollups:refresh"\ncron = "10 * * * *"\n[jobs.ro.args]\nzones = ["Mars/Base"]\n',
     "job 'ro': args.zones: expected an IANA time zone name"),
    ('[jobs.d]\ncallable = "jobs.reports:daily_digest"\ncron = "0 9 * * *"\n[jobs.d.args]\npng = "false"\n',
     "job 'd': args.png: expected true or false, got 'false'"),
    ('[jobs.wr]\ncallable = "jobs.reports:weekly_report"\ncron = "0 9 * * mon"\n[jobs.wr.args]\ndate = "last week"\n',
     "job 'wr': args.date: expected a date such as 2026-11-30, got 'last week'"),
])
def test_bad_job_arguments_fail_at_load_naming_job_and_key(tmp_path, body, needle):
    with pytest.raises(JobSpecError) as err:
        _load(tmp_path, body)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'jobs.toml'}: ")
    assert needle in message and "\n" not in message


def test_good_job_arguments_load_and_disabled_jobs_are_not_checked(tmp_path):
    specs = _load(tmp_path, """
[jobs.cleanup]
callable = "jobs.cleanup:cleanup"
cron = "30 3 * * *"
[jobs.cleanup.args]
batch_size = 500
max_rows = 20000
max_share = { rate_limit_log = 0.7 }

[jobs.web]
callable = "jobs.probes:http_probes"
interval = "1m"
[jobs.web.args]
timeout_s = 5
[[jobs.web.args.targets]]
url = "https://api.example.com/health"
expect_json = { status = ["ok", "healthy"] }
all_true = ["checks"]

[jobs.off]
callable = "jobs.cleanup:cleanup"
cron = "30 3 * * *"
enabled = false
[jobs.off.args]
batch_size = 0
""")
    assert {s.id for s in specs} == {"cleanup", "web", "off"}


# -- the daemon's own jobs -----------------------------------------------------------------


def test_shipped_defaults_have_heartbeat_and_outbox_drain():
    assert essential_job_problems(load_jobs(load_settings())) == []


def test_missing_or_disabled_heartbeat_and_drain_are_named(tmp_path, caplog):
    assert essential_job_problems(_load(tmp_path, ESSENTIAL_JOBS)) == []

    only_fine = _load(tmp_path, '[jobs.fine]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\n')
    problems = essential_job_problems(only_fine)
    assert len(problems) == 2
    assert problems[0].startswith("heartbeat off: no job runs jobs.builtin:heartbeat")
    assert "nothing outside notices if the daemon dies" in problems[0]
    assert problems[1].startswith("outbox drain off: no job runs jobs.builtin:drain_outbox")
    assert "never reach Telegram" in problems[1]

    disabled = _load(tmp_path, ESSENTIAL_JOBS.replace('interval = "1m"', 'interval = "1m"\nenabled = false'))
    (problem,) = essential_job_problems(disabled)
    assert problem.startswith("heartbeat off: job 'heartbeat' (jobs.builtin:heartbeat) is disabled")

    # the daemon loads through load_enabled: it warns in its log, and still starts
    path = _write(tmp_path, '[jobs.fine]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\n')
    with caplog.at_level(logging.WARNING, logger="opsbench.jobspec"):
        enabled = load_enabled(load_settings(OPSBENCH_JOBS_FILE=str(path)))
    assert set(enabled) == {"fine"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("heartbeat off" in w and str(path) in w for w in warnings)
    assert any("outbox drain off" in w for w in warnings)
