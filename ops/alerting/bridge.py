"""The daemon's guarded door to the alert manager and the outbox.

Every call here is guarded: a failure inside the alert manager or the outbox
is logged and sent to Sentry, never raised into the runner or the scheduler,
so a bug in alerting cannot stop jobs from running.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.engine import Engine

from ops.alerting import manager, outbox
from ops.contract import JobResult
from ops.core import sentry
from ops.core.clock import utc_now
from ops.core.settings import Settings

log = logging.getLogger("opsbench.alerts.bridge")


def _report(what: str, err: BaseException) -> None:
    log.error("alert manager call failed: %s: %s: %s", what, type(err).__name__, err,
              extra={"component": "alerts"})
    sentry.capture_exception(err, tags={"component": "alerts", "call": what})


def record_result(engine: Engine, source: str, result: JobResult, now: dt.datetime, settings: Settings) -> bool:
    """Hand a job's result to the alert manager. True if it took it."""
    try:
        manager.record_result(engine, source, result, now, settings)
        return True
    except Exception as e:
        _report("record_result", e)
        return False


def drain(settings: Settings, engine: Engine, **limits) -> int | None:
    """Escalate unacked critical alerts that are due, then send pending outbox messages. The number
    sent, or None if the outbox failed.

    `limits` go to outbox.drain (clock, budget_s, max_messages)."""
    try:
        manager.escalate(engine, settings, (limits.get("clock") or utc_now)())
    except Exception as e:  # an escalation that fails must not hold up delivery
        _report("escalate", e)
    try:
        return int(outbox.drain(settings, engine, **limits))
    except Exception as e:
        _report("drain", e)
        return None


def depth(engine: Engine) -> int | None:
    """Messages waiting in the outbox, or None if unknown."""
    try:
        return int(outbox.depth(engine))
    except Exception as e:
        _report("depth", e)
        return None


def firing(engine: Engine) -> list[Any] | None:
    """Firing alerts, or None if unknown."""
    try:
        return list(manager.firing(engine))
    except Exception as e:
        _report("firing", e)
        return None
