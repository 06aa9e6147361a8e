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

Two jobs keep the daemon honest and are easy to lose in a copied file: the
heartbeat (`jobs.builtin:heartbeat`, its dead-man switch) and the outbox drain
(`jobs.builtin:drain_outbox`, the only way alerts reach Telegram).
`essential_job_problems` names either one missing or disabled; the daemon logs
it as a warning at start and `opsbench doctor` reports it.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import tomllib
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

log = logging.getLogger("opsbench.jobspec")

HEARTBEAT_CALLABLE = "jobs.builtin:heartbeat"
DRAIN_OUTBOX_CALLABLE = "jobs.builtin:drain_outbox"

# the shipped jobs file sits beside the jobs it names; found by path, never imported
DEFAULT_JOBS_FILE = Path(__file__).resolve().parents[2] / "jobs" / "jobs.toml"
DEFAULT_TIMEOUT_S = 300.0

_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_KEYS = {"id", "callable", "cron", "interval", "timezone", "enabled", "timeout", "catch_up", "args", "description"}
_CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_S = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


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
                               day_of_week=_crontab_dow_to_aps(dow), timezone=self.tz)
        return IntervalTrigger(seconds=self.interval_s, timezone=self.tz)

    def next_run(self, now: datetime) -> datetime | None:
        """The next fire time after `now` (for interval jobs: one interval from now)."""
        trig = self.trigger()
        if isinstance(trig, IntervalTrigger):
            return now + timedelta(seconds=self.interval_s or 0)
        return trig.get_next_fire_time(None, now)

    def schedule_words(self) -> str:
        if self.cron is None:
            return _interval_words(self.interval_s or 0)
        return f"{_cron_words(self.cron)} ({self.timezone})"

    def monitor_config(self) -> dict[str, Any]:
        """Sentry Crons monitor config: the schedule, its zone, and how long a run may take."""
        if self.cron is not None:
            schedule: dict[str, Any] = {"type": "crontab", "value": self.cron}
        else:
            secs = self.interval_s or 60
            for unit, size in (("day", 86400), ("hour", 3600)):
                if secs >= size and secs % size == 0:
                    schedule = {"type": "interval", "value": int(secs // size), "unit": unit}
                    break
            else:  # Sentry's smallest unit is a minute
                schedule = {"type": "interval", "value": max(1, math.ceil(secs / 60)), "unit": "minute"}
        return {
            "schedule": schedule,
            "timezone": self.timezone,
            "checkin_margin": 1,
            "max_runtime": max(1, math.ceil(self.timeout_s / 60)),
        }

    @property
    def monitor_slug(self) -> str:
        return "opsbench-" + self.id.replace("_", "-")


# -- loading -----------------------------------------------------------------

def jobs_file(settings: Settings) -> Path:
    return Path(settings.jobs_file) if settings.jobs_file else DEFAULT_JOBS_FILE


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


# -- the override file and OPSBENCH_HEALTH_URLS: merged over the shipped defaults ----------

ORIGIN_DEFAULT = "default"
ORIGIN_OVERRIDE = "override file"
ORIGIN_ENV = "env OPSBENCH_HEALTH_URLS"
EXTENDS_KEY = "extends"
HTTP_PROBES_CALLABLE = "jobs.probes:http_probes"


def _read_toml(path: Path) -> dict[str, Any]:
    where = path.name if path == DEFAULT_JOBS_FILE else str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobSpecError(f"OPSBENCH_JOBS_FILE: {path} does not exist") from None
    except OSError as e:
        raise JobSpecError(f"OPSBENCH_JOBS_FILE: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise JobSpecError(f"{where}: not valid TOML: {e}") from None


def _leaves(table: dict[str, Any], prefix: str, origin: str, origins: dict[str, str]) -> None:
    for key, value in table.items():
        if isinstance(value, dict) and key in ("args", "cron") and prefix.count(".") == 0:
            _leaves(value, f"{prefix}.{key}", origin, origins)
        else:
            origins[f"{prefix}.{key}"] = origin


def merge_jobs(defaults: dict[str, Any], override: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The shipped jobs with `override` merged key by key: (data, origin of every job key).

    `[jobs.<id>]` of a default job changes only the keys it names (`args` key
    by key; a list such as `args.targets` is replaced whole); an id the
    defaults lack is a new job (it needs its own `callable`). Origins are
    keyed "<id>.<key>" and "<id>.args.<key>": ORIGIN_DEFAULT or ORIGIN_OVERRIDE.
    """
    unknown = sorted(set(override) - {"jobs", EXTENDS_KEY})
    if unknown:
        raise JobSpecError(f"{where}: unknown top-level key {unknown[0]!r} in an override file "
                           "(expected extends = \"defaults\" and [jobs.<id>] tables)")
    jobs_over = override.get("jobs", {})
    if not isinstance(jobs_over, dict):
        raise JobSpecError(f"{where}: 'jobs' must be a table of [jobs.<id>] tables")
    base = {k: v for k, v in defaults.get("jobs", {}).items()}
    origins: dict[str, str] = {}
    for job_id, body in base.items():
        _leaves(body, job_id, ORIGIN_DEFAULT, origins)
    merged: dict[str, Any] = {}
    for job_id, body in base.items():
        merged[job_id] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in body.items()}
    for job_id, body in jobs_over.items():
        if not isinstance(body, dict):
            raise JobSpecError(f"{where}: job {job_id!r}: expected a table of settings")
        target = merged.setdefault(job_id, {})
        for key, value in body.items():
            if key == "args" and isinstance(value, dict) and isinstance(target.get("args"), dict):
                target["args"] = {**target["args"], **value}
                _leaves(value, f"{job_id}.args", ORIGIN_OVERRIDE, origins)
                continue
            if key in ("cron", "interval"):       # one schedule: naming one drops the default's other
                for other in ("cron", "interval"):
                    if other != key and other in target:
                        del target[other]
                        for o in [o for o in origins if o == f"{job_id}.{other}" or o.startswith(f"{job_id}.{other}.")]:
                            del origins[o]
            target[key] = value
            for o in [o for o in origins if o.startswith(f"{job_id}.{key}.")]:
                del origins[o]
            origins[f"{job_id}.{key}"] = ORIGIN_OVERRIDE
    return {"jobs": merged}, origins


def _add_health_urls(data: dict[str, Any], settings: Settings, origins: dict[str, str]) -> None:
    """OPSBENCH_HEALTH_URLS: each (name, url) appended to `args.targets` of every http_probes job."""
    extra = settings.health_targets
    if not extra:
        return
    for job_id, body in data.get("jobs", {}).items():
        if not isinstance(body, dict) or body.get("callable") != HTTP_PROBES_CALLABLE:
            continue
        args = body.setdefault("args", {})
        if not isinstance(args, dict):
            continue
        targets = list(args.get("targets") or [])
        have = {str(t.get("name")) for t in targets if isinstance(t, dict) and t.get("name")}
        for name, url in extra:
            if name in have:
                raise JobSpecError(f"OPSBENCH_HEALTH_URLS: target {name!r} is also in job {job_id!r}'s "
                                   "args.targets; give it another name")
            targets.append({"name": name, "url": url})
            origins[f"{job_id}.args.targets[{name}]"] = ORIGIN_ENV
        args["targets"] = targets


def jobs_data(settings: Settings, path: Path | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The jobs file's TOML as the loader sees it, and where each job key came from.

    OPSBENCH_JOBS_FILE is an override file, merged key by key over the
    shipped jobs/jobs.toml (`merge_jobs`), when it says so (top-level
    `extends = "defaults"`) or when it is partial: it names a shipped job
    without a `callable`, which only makes sense as a change to that job.
    A file of complete job definitions without the marker stands alone, as
    it always did (a copy of the defaults with a job deleted keeps that job
    deleted). OPSBENCH_HEALTH_URLS then adds targets to the http_probes jobs.
    """
    path = Path(path) if path else jobs_file(settings)
    where = path.name if path == DEFAULT_JOBS_FILE else str(path)
    data = _read_toml(path)
    origins: dict[str, str] = {}
    if path != DEFAULT_JOBS_FILE and (EXTENDS_KEY in data or _is_partial(data)):
        if data.setdefault(EXTENDS_KEY, "defaults") != "defaults":
            raise JobSpecError(f"{where}: extends: expected \"defaults\" (the shipped jobs/jobs.toml)")
        data, origins = merge_jobs(_read_toml(DEFAULT_JOBS_FILE), data, where)
    else:
        origin = ORIGIN_DEFAULT if path == DEFAULT_JOBS_FILE else ORIGIN_OVERRIDE
        jobs_table = data.get("jobs", {})
        if isinstance(jobs_table, dict):
            for job_id, body in jobs_table.items():
                if isinstance(body, dict):
                    _leaves(body, job_id, origin, origins)
    _add_health_urls(data, settings, origins)
    return data, origins


def _is_partial(data: dict[str, Any]) -> bool:
    """A jobs file that changes a shipped job without restating it (no `callable`)."""
    jobs_table = data.get("jobs")
    if not isinstance(jobs_table, dict):
        return False
    shipped = _read_toml(DEFAULT_JOBS_FILE).get("jobs", {})
    return any(isinstance(body, dict) and job_id in shipped and "callable" not in body
               for job_id, body in jobs_table.items())


def explain(settings: Settings) -> list[tuple[str, str, Any, str]]:
    """(job, key, value, origin) for every value of every [jobs.<id>] table, for `opsbench jobs --explain`."""
    data, origins = jobs_data(settings)
    rows: list[tuple[str, str, Any, str]] = []
    for job_id, body in data.get("jobs", {}).items():
        if not isinstance(body, dict):
            continue
        for key, value in body.items():
            if key == "args" and isinstance(value, dict):
                for akey, avalue in value.items():
                    if akey == "targets" and isinstance(avalue, list):
                        for t in avalue:
                            name = t.get("name") if isinstance(t, dict) else None
                            origin = origins.get(f"{job_id}.args.targets[{name}]") or origins.get(
                                f"{job_id}.args.targets", ORIGIN_DEFAULT)
                            rows.append((job_id, f"args.targets[{name or '?'}]", t.get("url") if isinstance(t, dict) else t, origin))
                        if not avalue:
                            rows.append((job_id, "args.targets", [], origins.get(f"{job_id}.args.targets", ORIGIN_DEFAULT)))
                        continue
                    rows.append((job_id, f"args.{akey}", avalue,
                                 origins.get(f"{job_id}.args.{akey}", ORIGIN_DEFAULT)))
                continue
            rows.append((job_id, key, value, origins.get(f"{job_id}.{key}", ORIGIN_DEFAULT)))
    return rows


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
        cron = _parse_cron(body["cron"], bad)
    else:
        interval_s = _parse_duration(body["interval"])
        if not _sane_seconds(interval_s):
            raise bad("interval", 'expected a finite, positive duration of at most 366 days: '
                                  'seconds or "30s", "5m", "2h", "1d"')

    timeout = _parse_duration(body.get("timeout", DEFAULT_TIMEOUT_S))
    if not _sane_seconds(timeout):
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


_MAX_SECONDS = 366 * 86400.0


def _sane_seconds(value: float | None) -> bool:
    """Finite, positive and at most a year: nan, inf and 1e300 never reach APScheduler's timedelta."""
    return value is not None and math.isfinite(value) and 0 < value <= _MAX_SECONDS


def _parse_duration(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m[1]) * _UNIT_S[m[2]]
    return None


def _parse_cron(value: Any, bad) -> str:
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(_CRON_FIELDS))
        if unknown:
            raise bad("cron", f"unknown field {unknown[0]!r} (expected {', '.join(_CRON_FIELDS)})")
        value = " ".join(str(value.get(f, "*")) for f in _CRON_FIELDS)
    if not isinstance(value, str) or len(value.split()) != 5:
        raise bad("cron", 'expected a crontab expression with five fields, e.g. "0 9 * * mon-fri"')
    expr = " ".join(value.split())
    try:
        minute, hour, day, month, dow = expr.split()
        CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_crontab_dow_to_aps(dow))
    except ValueError as e:
        raise bad("cron", f"{expr!r} is not a valid crontab expression ({e})") from None
    return expr


def _crontab_dow_to_aps(field_text: str) -> str:
    """Crontab weekday field (0/7 = Sunday) to APScheduler weekday names.

    APScheduler 3 numbers Monday as 0, so numbers are expanded to a set of days
    and written back as names, which both agree on.
    """
    if field_text == "*":
        return "*"
    days: set[int] = set()
    for part in field_text.lower().split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if step < 1:
            raise ValueError(f"bad step in {part!r}")
        if rng == "*":
            lo, hi = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            lo, hi = _dow_number(a), _dow_number(b)
            if hi == 0 and lo > 0:  # "5-7" / "fri-sun" ends on Sunday
                hi = 7
        else:
            lo = hi = _dow_number(rng)
            if step_s:
                hi = 6
        if lo > hi:
            raise ValueError(f"weekday range {rng!r} runs backwards")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    if len(days) == 7:
        return "*"
    # Monday-first order so the text reads naturally
    return ",".join(_DOW_NAMES[d] for d in sorted(days, key=lambda d: (d + 6) % 7))


def _dow_number(token: str) -> int:
    token = token.strip()
    if token in _DOW_NAMES:
        return _DOW_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7 if int(token) != 7 else 0
    raise ValueError(f"unknown weekday {token!r}")


# -- schedules in words --------------------------------------------------------

def _plural(n: float, unit: str) -> str:
    n_text = f"{n:g}"
    return f"every {unit}" if n == 1 else f"every {n_text} {unit}s"


def _interval_words(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return _plural(seconds / size, unit)
    return _plural(seconds, "second")


def _cron_words(expr: str) -> str:
    minute, hour, day, month, dow = expr.split()
    simple = re.compile(r"^\d+$")
    if simple.match(minute) and simple.match(hour):
        when = f"at {int(hour):02d}:{int(minute):02d}"
        if day == "*" and month == "*":
            if dow == "*":
                return f"every day {when}"
            return f"{when} on {_dow_words(dow)}"
        if simple.match(day) and month == "*" and dow == "*":
            return f"{when} on day {int(day)} of every month"
    if simple.match(minute) and hour == "*" and day == month == dow == "*":
        return f"every hour at :{int(minute):02d}"
    if minute.startswith("*/") and hour == day == month == dow == "*":
        return _plural(int(minute[2:]), "minute")
    if simple.match(minute) and hour.startswith("*/") and day == month == dow == "*":
        return f"{_plural(int(hour[2:]), 'hour')} at :{int(minute):02d}"
    return f"cron '{expr}'"


def _dow_words(dow: str) -> str:
    try:
        names = _crontab_dow_to_aps(dow).split(",")
    except ValueError:
        return dow
    order = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    idx = [order.index(n) for n in names]
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{names[0].title()}-{names[-1].title()}"
    return ", ".join(n.title() for n in names)
