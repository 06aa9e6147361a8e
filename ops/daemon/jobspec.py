"""Job declarations: which jobs the daemon runs, when, and with what arguments.

Jobs are declared in TOML. The defaults ship as `jobs/jobs.toml`; set
`OPSBENCH_JOBS_FILE` to use another file instead. Either table style works::

    [jobs.drain_outbox]                  # or: [[job]] with id = "drain_outbox"
    callable = "jobs.builtin:drain_outbox"
    interval = "1m"                      # 90, "30s", "5m", "2h", "1d"
    timeout = 60                         # seconds; a run past it is marked `timeout`
    catch_up = false                     # run once at start if a slot was missed
    enabled = true
    timezone = "Europe/Istanbul"         # default REPORT_TZ
    [jobs.drain_outbox.args]             # free-form thresholds for the job
    max_messages = 100

or `cron = "0 9 * * mon-fri"` (a crontab expression) or
`cron = { minute = 0, hour = 9, day_of_week = "mon-fri" }` (the same five
fields by name). Weekday numbers follow crontab (0 and 7 are Sunday), not
APScheduler 3's historical Monday-is-0, so the schedule Sentry shows matches.

A bad file fails at start with one line naming the file, the job and the key.
That includes the job's own arguments: a job module may declare
``ARG_VALIDATORS = {"function": validate}`` where ``validate(args)`` raises a
ValueError whose text starts with ``args.<key>: expected ...``; the loader runs
it for every enabled job, so ``batch_size = 0`` fails at start, not at 03:30.

Where the parts live: the jobs file and its override merge in `jobsfile.py`
(OPSBENCH_HEALTH_URLS, the HTTP probe's own setting, in `health_urls.py`), durations
and crontab in `cron.py`, schedules in words in `schedule_words.py`, a job as a Sentry
Crons monitor in `sentry_monitor.py`. This module reads one job's keys into a JobSpec.

Two jobs keep the daemon honest and are easy to lose in a copied file: the
heartbeat (`jobs.builtin:heartbeat`, its dead-man switch) and the outbox drain
(`jobs.builtin:drain_outbox`, the only way alerts reach Telegram).
`essential_job_problems` names either one missing or disabled; the daemon logs
it as a warning at start and `opsbench doctor` reports it.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ops.core.clock import parse_zone
from ops.core.errors import JobSpecError
from ops.core.settings import Settings
from ops.daemon import sentry_monitor
from ops.daemon.cron import crontab_dow_to_aps, parse_cron, parse_duration, sane_seconds
from ops.daemon.jobsfile import DEFAULT_JOBS_FILE, explain, jobs_data, jobs_file
from ops.daemon.schedule_words import cron_words, interval_words

log = logging.getLogger("opsbench.jobspec")

# what callers import from here: the job loader's whole surface, the file's place and --explain included
__all__ = ["DEFAULT_JOBS_FILE", "DEFAULT_TIMEOUT_S", "DRAIN_OUTBOX_CALLABLE", "HEARTBEAT_CALLABLE", "JobSpec",
           "JobSpecError", "essential_job_problems", "explain", "jobs_file", "load_enabled", "load_jobs"]

HEARTBEAT_CALLABLE = "jobs.builtin:heartbeat"
DRAIN_OUTBOX_CALLABLE = "jobs.builtin:drain_outbox"

DEFAULT_TIMEOUT_S = 300.0

_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_KEYS = {"id", "callable", "cron", "interval", "timezone", "enabled", "timeout", "catch_up", "args", "description"}


@dataclass(frozen=True)
class JobSpec:
    id: str
    callable: str
    timezone: str
    cron: str | None = None          # crontab expression (crontab weekday numbering)
    interval_s: float | None = None
    enabled: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    catch_up: bool = True
    args: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    description: str = ""

    # -- what to run ------------------------------------------------------
    def resolve(self) -> Callable:
        module_name, _, attr = self.callable.partition(":")
        module = importlib.import_module(module_name)
        func = getattr(module, attr)
        if not callable(func):
            raise TypeError(f"{self.callable} is not callable")
        return func

    # -- when -------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return parse_zone(self.timezone)

    def trigger(self) -> CronTrigger | IntervalTrigger:
        if self.cron is not None:
            minute, hour, day, month, dow = self.cron.split()
            return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                               day_of_week=crontab_dow_to_aps(dow), timezone=self.tz)
        return IntervalTrigger(seconds=self.interval_s, timezone=self.tz)

    def next_run(self, now: datetime) -> datetime | None:
        """The next fire time after `now` (for interval jobs: one interval from now)."""
        trig = self.trigger()
        if isinstance(trig, IntervalTrigger):
            return now + timedelta(seconds=self.interval_s or 0)
        return trig.get_next_fire_time(None, now)

    def schedule_words(self) -> str:
        if self.cron is None:
            return interval_words(self.interval_s or 0)
        return f"{cron_words(self.cron)} ({self.timezone})"

    # -- as Sentry sees it ---------------------------------------------
    def monitor_config(self) -> dict[str, Any]:
        """Sentry Crons monitor config (ops/daemon/sentry_monitor.py)."""
        return sentry_monitor.monitor_config(self)

    @property
    def monitor_slug(self) -> str:
        return sentry_monitor.monitor_slug(self)


# -- loading -----------------------------------------------------------------

def load_jobs(settings: Settings, path: Path | None = None, *, check_callables: bool = True) -> list[JobSpec]:
    """Read and validate the jobs file. Raises JobSpecError naming the job and key."""
    path = Path(path) if path else jobs_file(settings)
    where = path.name if path == DEFAULT_JOBS_FILE else str(path)
    data, _ = jobs_data(settings, path)

    unknown_top = sorted(set(data) - {"job", "jobs"})
    if unknown_top:
        raise JobSpecError(f"{where}: unknown top-level key {unknown_top[0]!r} (expected [[job]] or [jobs.<id>])")
    raw: list[tuple[str | None, Any]] = []
    jobs_table = data.get("jobs", {})
    if not isinstance(jobs_table, dict):
        raise JobSpecError(f"{where}: 'jobs' must be a table of [jobs.<id>] tables")
    raw += [(key, value) for key, value in jobs_table.items()]
    job_list = data.get("job", [])
    if not isinstance(job_list, list):
        raise JobSpecError(f"{where}: 'job' must be an array of [[job]] tables")
    raw += [(None, value) for value in job_list]

    specs: list[JobSpec] = []
    seen: set[str] = set()
    for n, (table_id, body) in enumerate(raw, start=1):
        spec = _parse_one(where, n, table_id, body, settings, check_callables)
        if spec.id in seen:
            raise JobSpecError(f"{where}: job {spec.id!r}: declared twice")
        seen.add(spec.id)
        specs.append(spec)
    return specs


def load_enabled(settings: Settings) -> dict[str, JobSpec]:
    """The enabled jobs, for the daemon. Warns (log) when the heartbeat or outbox drain is not among them."""
    specs = load_jobs(settings)
    for problem in essential_job_problems(specs):
        log.warning("%s: %s", jobs_file(settings), problem)
    return {s.id: s for s in specs if s.enabled}


def essential_job_problems(specs: list[JobSpec]) -> list[str]:
    """Plain-words problems when the heartbeat or the outbox drain job is missing or disabled."""
    problems = []
    for target, role, consequence in (
        (HEARTBEAT_CALLABLE, "heartbeat",
         "no Sentry daemon check-in and no HEARTBEAT_URL ping, so nothing outside notices if the daemon dies"),
        (DRAIN_OUTBOX_CALLABLE, "outbox drain",
         "alerts and reports pile up in the outbox and never reach Telegram"),
    ):
        declared = [s for s in specs if s.callable == target]
        if any(s.enabled for s in declared):
            continue
        state = (f"job {declared[0].id!r} ({target}) is disabled" if declared
                 else f"no job runs {target}")
        problems.append(f"{role} off: {state}: {consequence}")
    return problems


def _validate_args(spec: JobSpec) -> str | None:
    """The job module's own check of `args` (ARG_VALIDATORS), as a one-line problem or None."""
    module_name, _, attr = spec.callable.partition(":")
    validators = getattr(importlib.import_module(module_name), "ARG_VALIDATORS", None) or {}
    validate = validators.get(attr)
    if validate is None:
        return None
    try:
        validate(spec.args)
    except (ValueError, TypeError) as e:
        text = " ".join(str(e).split()) or type(e).__name__
        return text if text.startswith("args") else f"args: {text}"
    return None


def _parse_one(where: str, n: int, table_id: str | None, body: Any, settings: Settings,
               check_callables: bool) -> JobSpec:
    label = repr(table_id) if table_id else f"#{n}"
    if not isinstance(body, dict):
        raise JobSpecError(f"{where}: job {label}: expected a table of settings")

    def bad(key: str, expected: str) -> JobSpecError:
        return JobSpecError(f"{where}: job {label}: key {key!r}: {expected}")

    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise bad(unknown[0], f"unknown key (expected one of: {', '.join(sorted(_KEYS))})")

    job_id = body.get("id", table_id)
    if table_id and "id" in body and body["id"] != table_id:
        raise bad("id", f"differs from the table name {table_id!r}")
    if not isinstance(job_id, str) or not _ID.match(job_id):
        raise bad("id", "expected lower_snake_case letters, digits and _ (at most 63)")
    label = repr(job_id)

    target = body.get("callable")
    if not isinstance(target, str) or not _CALLABLE.match(target):
        raise bad("callable", 'expected "package.module:function"')

    tz = body.get("timezone", settings.report_tz)
    try:
        parse_zone(tz)
    except ValueError:
        raise bad("timezone", "expected an IANA time zone name such as Europe/Istanbul") from None

    has_cron, has_interval = "cron" in body, "interval" in body
    if has_cron == has_interval:
        raise bad("cron" if has_cron else "interval", "give exactly one of cron or interval")
    cron = interval_s = None
    if has_cron:
        cron = parse_cron(body["cron"], bad)
    else:
        interval_s = parse_duration(body["interval"])
        if not sane_seconds(interval_s):
            raise bad("interval", 'expected a finite, positive duration of at most 366 days: '
                                  'seconds or "30s", "5m", "2h", "1d"')

    timeout = parse_duration(body.get("timeout", DEFAULT_TIMEOUT_S))
    if not sane_seconds(timeout):
        raise bad("timeout", 'expected a finite, positive number of seconds of at most 366 days (or "90s", "5m")')

    for key in ("enabled", "catch_up"):
        if key in body and not isinstance(body[key], bool):
            raise bad(key, "expected true or false")
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise bad("args", "expected a table, e.g. [jobs.<id>.args]")
    description = body.get("description", "")
    if not isinstance(description, str):
        raise bad("description", "expected text")

    spec = JobSpec(
        id=job_id, callable=target, timezone=str(tz), cron=cron, interval_s=interval_s,
        enabled=body.get("enabled", True), timeout_s=timeout, catch_up=body.get("catch_up", True),
        args=dict(args), description=description,
    )
    if check_callables and spec.enabled:
        try:
            spec.resolve()
        except Exception as e:  # ImportError, AttributeError, errors inside the module
            raise bad("callable", f"cannot load {target}: {type(e).__name__}: {e}") from None
        problem = _validate_args(spec)
        if problem:
            raise JobSpecError(f"{where}: job {label}: {problem}")
    return spec
