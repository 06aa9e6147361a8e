"""The daemon's only door to the alert manager and the outbox.

`ops.alerts` and `ops.outbox` are imported lazily, when first needed, so the
runner works before they exist and a broken alert manager cannot stop the
daemon from importing. Every call here is guarded: a failure inside the alert
manager is logged and sent to Sentry, never raised into the scheduler.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from types import ModuleType
from typing import Any

from sqlalchemy.engine import Engine

from jobs.base import JobResult
from ops.settings import Settings

log = logging.getLogger("opsbench.alerts.bridge")


class NotInstalled(RuntimeError):
    """The alert manager module is not there (yet)."""


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            raise NotInstalled(f"{name} is not installed") from None
        raise


def _report(what: str, err: BaseException) -> None:
    from ops import sentry

    log.error("alert manager call failed: %s: %s: %s", what, type(err).__name__, err,
              extra={"component": "alerts"})
    sentry.capture_exception(err, tags={"component": "alerts", "call": what})


def record_result(engine: Engine, source: str, result: JobResult, now: dt.datetime, settings: Settings) -> bool:
    """Hand a job's result to the alert manager. True if it took it."""
    try:
        _module("ops.alerts").record_result(engine, source, result, now, settings)
        return True
    except NotInstalled:
        if result.findings:
            log.warning("alert manager not installed: %d finding(s) of %s not recorded", len(result.findings),
                        source, extra={"job": source})
        return False
    except Exception as e:
        _report("record_result", e)
        return False


def drain(settings: Settings, engine: Engine, **limits) -> int | None:
    """Send pending outbox messages. The number sent, or None if the outbox is unavailable.

    `limits` go to ops.outbox.drain (clock, budget_s, max_messages)."""
    try:
        return int(_module("ops.outbox").drain(settings, engine, **limits))
    except NotInstalled:
        return None
    except Exception as e:
        _report("drain", e)
        return None


def depth(engine: Engine) -> int | None:
    """Messages waiting in the outbox, or None if unknown."""
    try:
        return int(_module("ops.outbox").depth(engine))
    except NotInstalled:
        return None
    except Exception as e:
        _report("depth", e)
        return None


def firing(engine: Engine) -> list[Any] | None:
    """Firing alerts, or None if unknown."""
    try:
        return list(_module("ops.alerts").firing(engine))
    except NotInstalled:
        return None
    except Exception as e:
        _report("firing", e)
        return None
