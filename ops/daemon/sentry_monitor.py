"""A job as a Sentry Crons monitor: its slug and its config (schedule, zone, how long a run may take).

Sentry is told the crontab expression as written (crontab weekday numbering) or the
interval in Sentry's units, so its missed-check-in alarm expects what the scheduler runs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ops.daemon.jobspec import JobSpec


def monitor_config(spec: JobSpec) -> dict[str, Any]:
    """Sentry Crons monitor config: the schedule, its zone, and how long a run may take."""
    if spec.cron is not None:
        schedule: dict[str, Any] = {"type": "crontab", "value": spec.cron}
    else:
        secs = spec.interval_s or 60
        for unit, size in (("day", 86400), ("hour", 3600)):
            if secs >= size and secs % size == 0:
                schedule = {"type": "interval", "value": int(secs // size), "unit": unit}
                break
        else:  # Sentry's smallest unit is a minute
            schedule = {"type": "interval", "value": max(1, math.ceil(secs / 60)), "unit": "minute"}
    return {
        "schedule": schedule,
        "timezone": spec.timezone,
        "checkin_margin": 1,
        "max_runtime": max(1, math.ceil(spec.timeout_s / 60)),
    }


def monitor_slug(spec: JobSpec) -> str:
    return "opsbench-" + spec.id.replace("_", "-")
