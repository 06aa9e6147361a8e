"""Orphaned alerts close, at daemon start and reload: alerts nothing evaluates any more.

An alert is orphaned when the job that raised it (the alert's `source`) is
no longer an enabled job of the jobs file, or, for the HTTP probes, when the
alert's `probe` label names a target the job no longer has (a target removed
from `args.targets` or from OPSBENCH_HEALTH_URLS), or when the job still
runs but no longer evaluates the alert's rule (a check file deleted, a metric
rule dropped from `args.checks`): UNEVALUATED_RUNS successful runs of the job
have started since the rule was last evaluated. Such alerts close with note
"check removed" and no RESOLVED page: nothing was seen to recover, the rule
just stopped looking. (The note keeps its first wording: it is stored with
every closed alert's history and the README quotes it.)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Iterable, Mapping

from sqlalchemy.engine import Engine

from ops.alerting import manager
from ops.daemon.health_urls import HTTP_PROBES_CALLABLE
from ops.daemon.jobspec import JobSpec

log = logging.getLogger(__name__)

NOTE = "check removed"
DAEMON_SOURCE = "daemon"
# successful runs of the source job without the rule before it counts as gone: one run may skip a
# rule for a reason of its own (no https target this time, no baseline weeks yet); three in a row do not
UNEVALUATED_RUNS = 3


def _target_names(spec: JobSpec) -> set[str] | None:
    """Names of an http_probes job's targets (as jobs/probes/http.py parse_targets names them), else None."""
    if spec.callable != HTTP_PROBES_CALLABLE:
        return None
    from urllib.parse import urlsplit

    names = set()
    for n, t in enumerate(spec.args.get("targets") or [], start=1):
        if isinstance(t, dict):
            url = str(t.get("url") or "")
            names.add(str(t.get("name") or urlsplit(url).hostname or f"target{n}"))
    return names


def _labels(row: Any) -> dict[str, Any]:
    labels = getattr(row, "labels", None)
    if isinstance(labels, str):
        labels = json.loads(labels)
    return labels or {}


def removed(open_alerts: Iterable[Any], specs: Mapping[str, JobSpec]) -> list[str]:
    """Keys of open alerts whose rule no enabled job evaluates any more."""
    enabled = {k: s for k, s in specs.items() if s.enabled}
    gone = []
    for a in open_alerts:
        if a.source == DAEMON_SOURCE:   # the daemon's own alerts (the leader lock lost) belong to no job
            continue
        spec = enabled.get(a.source)
        if spec is None:
            gone.append(a.key)
            continue
        targets = _target_names(spec)
        probe = _labels(a).get("probe")
        if targets is not None and probe is not None and probe not in targets:
            gone.append(a.key)
        elif int(getattr(a, "runs_without_rule", 0) or 0) >= UNEVALUATED_RUNS:
            gone.append(a.key)
    return gone


def close_removed(engine: Engine, specs: Mapping[str, JobSpec], now: dt.datetime) -> list[str]:
    """Close (note "check removed", no page) the orphaned open alerts. Returns their keys."""
    keys = removed(manager.open_alerts(engine), specs)
    closed = [r.key for r in manager.close_keys(engine, keys, NOTE, now)] if keys else []
    if closed:
        log.warning("closed %d alert(s) whose rule is gone: %s", len(closed), ", ".join(closed))
    return closed
