"""The alert manager: findings in, state transitions and outbox messages out.

Modelled on healthchecks (alert state lives in the database, so a restart
changes nothing) and Alertmanager (grouping, silences, repeat interval,
inhibition). One job run is one evaluation:

- a finding is a bad evaluation of its key; a rule the run evaluated
  (`JobResult.rules`, plus the rules of its findings) without a finding for
  a key is a good evaluation of that key;
- pending until `fire_after` consecutive bad evaluations, then firing (one
  message); repeated every `repeat_every` while still bad; resolved after
  `resolve_after` consecutive good ones (one message saying how long it
  lasted). A firing alert needs several good evaluations in a row to resolve,
  so a flapping check stays firing instead of sending a message per flip;
- flapping: an alert that fires or resolves `flap_changes` times (default 4,
  OPSBENCH_FLAP_CHANGES; 0 = off) within `flap_window` (1 h) is announced once
  as FLAPPING, then its changes are recorded but not announced until it has
  stayed put for `flap_calm` (30 min); then its state is announced once
  (Healthchecks' flapping notices, Prometheus' keep_firing_for);
- an alert held behind a root cause that its own check finds gone before the
  hold ends closes silently: it was never announced, so nothing is sent;
- everything that needs a message in one evaluation goes out as ONE message;
- held back, but tracked: alerts matched by a silence, and alerts whose
  `requires` names a pending or firing alert (by rule, key, or key pattern) -
  the root cause, confirmed or about to be. A held firing alert is announced
  at its first evaluation after the hold ends, if it is still firing (as
  Alertmanager does);
- ordering: a job that FAILED (its run, not a finding it made: a finding
  from a run that read the database proves the database answered) may have
  failed because of the root cause, and may run before the root-cause check
  in the same cycle. Its dependent alerts are held as `awaiting` while a
  rule they `requires` has not been evaluated since they started (or never
  was); the next evaluation of any job settles them: suppressed if the root
  cause is now pending or firing, announced in that evaluation's message if
  the root-cause rule was evaluated fine, announced anyway once
  AWAIT_ROOT_CAUSE has passed;
- quiet hours (OPSBENCH_QUIET_HOURS in REPORT_TZ): messages without a
  critical firing alert are delivered silently.

What it tells the founder leaves here as neutral notices
(ops.alerting.notices: which alerts changed how, with their evidence, in
which incident); every channel that is on renders them for its medium
(`outbox.publish`). State changes and the messages they cause are written in
one transaction.
"""

from __future__ import annotations

import datetime as dt
import html
import fnmatch
import json
from dataclasses import replace
from typing import Any, Mapping

from sqlalchemy.engine import Connection, Engine

import queries
from ops.alerting import channels, lifecycle, maintenance_store, outbox
from ops.alerting.lifecycle import (  # noqa: F401 - the lifecycle's names, as callers knew them here
    AWAIT_ROOT_CAUSE, DEFAULT_RULE, FLAPPING, RULE_DEFAULTS, Alert, RuleConfig, Transition, rule_config,
)
from ops.alerting.notices import AlertNotice, Notice, human_duration
from ops.contract import AlertState, Finding, JobResult, Severity
from ops.core.settings import Settings


def _q():
    return queries.load("state/alerts")


# -- quiet hours ---------------------------------------------------------------

def in_quiet_hours(settings: Settings, now: dt.datetime) -> bool:
    window = settings.quiet_hours_window
    if window is None:
        return False
    start, end = window
    local = now.astimezone(settings.tz).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # the window crosses midnight


# -- the evaluation ------------------------------------------------------------

class _StoreWorld:
    """The lifecycle's view of the rest of the world, read from the state store inside the
    evaluation's transaction (before its own writes)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        # the maintenance windows, read once per evaluation: for its holds and for the summaries after it
        self.windows = maintenance_store.active(conn)

    def awaiting_root_cause(self, exclude: set[str]) -> list[Alert]:
        return [Alert.from_row(r) for r in _q().awaiting_root_cause.execute(self.conn, keys=json.dumps(sorted(exclude)))]

    def open_alerts(self):
        return [(r.key, (r.rule, r.state)) for r in _q().root_keys.execute(self.conn)]

    def rule_evaluations(self, rules: list[str]) -> dict[str, dt.datetime]:
        return {r.rule: r.last_eval_at for r in _q().rule_evaluations.execute(self.conn, rules=json.dumps(rules))}

    def silences(self, at: dt.datetime) -> list[lifecycle.Silence]:
        held = [lifecycle.Silence(r.id, r.pattern, r.reason) for r in _q().active_silences.execute(self.conn, at=at)]
        return held + maintenance_store.holds_at(self.windows, at)

    def state_changes(self, key: str, since: dt.datetime) -> int:
        return int(_q().state_changes.execute(self.conn, key=key, since=since).scalar_one())

    def held_behind(self, rule: str, key: str) -> list[str]:
        return [r.key for r in _q().held_behind.execute(self.conn, rule=rule, key=key)]


def record_result(engine: Engine, source: str, result: JobResult, now: dt.datetime, settings: Settings,
                  rules: Mapping[str, RuleConfig] | None = None) -> list[Transition]:
    """Feed one job run into the lifecycle; returns what changed (and what was announced)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    findings, evaluated = lifecycle.judged(result)
    if not evaluated:
        return []
    with engine.begin() as conn:
        return _evaluate(conn, source, findings, evaluated, now, settings, rules, run_failed=lifecycle.failed(result))


def _evaluate(conn: Connection, source: str, findings: dict[str, Finding], evaluated: set[str],
              now: dt.datetime, settings: Settings, rules: Mapping[str, RuleConfig] | None,
              run_failed: bool = False) -> list[Transition]:
    existing = {r.key: Alert.from_row(r) for r in _q().lock_rules.execute(conn, rules=json.dumps(sorted(evaluated)))}
    _q().mark_evaluated.execute(conn, rules=json.dumps(sorted(evaluated)), at=now, source=source)
    world = _StoreWorld(conn)
    out = lifecycle.evaluate(existing, source, findings, now, world, settings, rules, run_failed)
    touched, events, transitions = out.touched, out.events, out.transitions
    notices = [(n.alert, AlertNotice(
        kind=n.kind, key=n.alert.key, rule=n.alert.rule, severity=n.alert.severity, summary=n.alert.summary,
        source=n.alert.source, details=n.details, evidence=n.alert.evidence, evidence_count=n.alert.evidence_count,
        command=n.alert.command, started_at=n.alert.started_at, now=now)) for n in out.notices]

    # written before the messages: an incident's edit renders the rows as this evaluation left them
    for alert, _ in touched.values():
        _q().upsert.execute(conn, **alert.params())
    incident_before = {key: alert.incident_id for key, (alert, _) in touched.items()}
    sent_for = _announce(conn, notices, touched, settings, now, source)
    _summarise_maintenance(conn, world.windows, settings, now)
    for key, ids in sent_for.items():
        transitions[key] = replace(transitions[key], outbox_ids=tuple(ids))
    for key, (alert, _) in touched.items():
        if alert.incident_id != incident_before[key]:  # announced in a new incident message
            _q().upsert.execute(conn, **alert.params())
    for alert, kind, note in events:
        in_message = transitions[alert.key].notified is not None and kind in ("firing", "repeat", "resolved", FLAPPING, "stable")
        ids = sent_for.get(alert.key) or [None]
        _q().add_event.execute(conn, at=now, key=alert.key, rule=alert.rule, severity=alert.severity, kind=kind,
                               summary=alert.summary, outbox_id=ids[0] if in_message else None, note=note)
    return [transitions[k] for k in sorted(transitions)]


def _announce(conn: Connection, notices: list[tuple[Alert, AlertNotice]],
              touched: Mapping[str, tuple[Alert, str]], settings: Settings, now: dt.datetime,
              source: str) -> dict[str, list[int]]:
    """Queue what this evaluation tells the founder; returns the outbox ids per alert key.

    - new FIRING (and FLAPPING) alerts: one new incident (`opened`);
    - a repeat of an alert with an incident: an `update` of it;
    - a resolution: an `update` that says the incident's view changed (`ended`); a silenced
      alert's resolution changes the view without alert news;
    - alerts announced before incidents existed: one `grouped` notice.
    How each looks (the chat edits its incident message in place and replies; email sends
    a new email) is the channels' business.
    """
    quiet = in_quiet_hours(settings, now)
    env = settings.environment
    src = f"alerts:{source}"
    sent_for: dict[str, list[int]] = {}
    fresh = [(a, n) for a, n in notices if n.kind in ("firing", FLAPPING)]
    repeats = [(a, n) for a, n in notices if n.kind == "repeat" and a.incident_id is not None]
    resolved = [(a, n) for a, n in notices if n.kind == "resolved" and a.incident_id is not None]
    placed = {id(n) for _, n in fresh + repeats + resolved}
    legacy = [(a, n) for a, n in notices if id(n) not in placed]
    # alerts that fire together share one incident; as many as the chat needs to show every one
    by_notice = {id(n): a for a, n in fresh}
    for group in channels.medium("main").group([n for _, n in fresh], env):
        alerts = [by_notice[id(n)] for n in group]
        critical = any(n.severity == Severity.critical for n in group)
        incident_id = _open_incident(conn, alerts, now)
        ids = outbox.publish(conn, Notice("opened", tuple(group), env, incident_id, silent=quiet and not critical),
                             settings, now=now, source=src)
        for a in alerts:
            a.incident_id = incident_id
            sent_for[a.key] = ids
    by_incident: dict[int, list[tuple[Alert, AlertNotice]]] = {}
    for a, n in repeats + resolved:
        by_incident.setdefault(a.incident_id, []).append((a, n))
    # silenced (or flapping-held) resolutions: the incident's view still shows it, quietly
    announced = {a.key for a, _ in notices}
    for key, (a, before) in touched.items():
        if a.incident_id is not None and before == AlertState.firing and a.state == AlertState.resolved \
                and key not in announced:
            by_incident.setdefault(a.incident_id, [])
    for incident_id, pairs in sorted(by_incident.items()):
        ended = any(a.incident_id == incident_id and before == AlertState.firing and a.state == AlertState.resolved
                    for a, before in touched.values())
        # resolutions first, then what still fires (the order the update reads in)
        news = tuple(n for _, n in pairs if n.kind == "resolved") + tuple(n for _, n in pairs if n.kind == "repeat")
        critical = any(n.severity == Severity.critical for n in news if n.kind == "repeat")
        ids: list[int] = []
        if ended or news:  # a repeat alone changes nothing the incident's view shows
            ids = outbox.publish(conn, Notice("update", news, env, incident_id, silent=quiet and not critical,
                                              ended=ended), settings, now=now, source=src)
        for a, _ in pairs:
            sent_for[a.key] = ids
    if legacy:
        critical = any(n.severity == Severity.critical and n.kind != "resolved" for _, n in legacy)
        ids = outbox.publish(conn, Notice("grouped", tuple(n for _, n in legacy), env,
                                          silent=quiet and not critical), settings, now=now, source=src)
        for a, _ in legacy:
            sent_for[a.key] = ids
    return sent_for


def _summarise_maintenance(conn: Connection, windows: list[maintenance_store.Window], settings: Settings, now: dt.datetime) -> None:
    """One message for each maintenance occurrence that has ended, listing what fired and cleared inside it
    (an occurrence inside which nothing fired sends nothing)."""
    for summary in maintenance_store.due_summaries(conn, windows, now):
        if not summary.events:
            continue
        lines = maintenance_store.summary_lines(summary, settings.tz)
        text = f"🛠 <b>{html.escape(lines[0], quote=False)}</b>\n" + "\n".join(html.escape(x, quote=False)
                                                                                for x in lines[1:])
        outbox.publish(conn, Notice("text", text=text, silent=True), settings, now=now, source="maintenance")


def _open_incident(conn: Connection, alerts: list[Alert], now: dt.datetime) -> int:
    """A new incident: the alerts announced together, each in the episode announced (so a later
    action on it can tell an alert that changed since from one that is current)."""
    episodes = {a.key: a.started_at.isoformat() if a.started_at else None for a in alerts}
    return int(queries.load("state/incidents").create.execute(
        conn, created_at=now, keys=json.dumps([a.key for a in alerts]), episodes=json.dumps(episodes),
        body="").scalar_one())


def refresh_incidents(conn: Connection, incident_ids: list[int], settings: Settings, now: dt.datetime,
                      source: str = "alerts") -> list[int]:
    """The incidents' view changed (acked, silenced, closed by hand): tell every channel (the chat edits
    its message; email has nothing to edit)."""
    ids: list[int] = []
    for incident_id in sorted(set(incident_ids)):
        ids += outbox.publish(conn, Notice("state", incident_id=incident_id), settings, now=now, source=source)
    return ids


# -- escalation ------------------------------------------------------------------

ESCALATIONS = 2   # the first after OPSBENCH_ESCALATE_AFTER, the second after twice as long again


def escalation_due(announced_at: dt.datetime, escalated: list[dt.datetime], after: dt.timedelta,
                   now: dt.datetime) -> bool:
    """Is the next escalation of an unacked critical alert due? (A pure function of its times: the
    first `after` past its announcement, the second `2 * after` past the first, then no more.)"""
    if len(escalated) >= ESCALATIONS:
        return False
    if not escalated:
        return now - announced_at >= after
    return now - escalated[-1] >= 2 * after


def escalate(engine: Engine, settings: Settings, now: dt.datetime) -> list[str]:
    """Send again, as a new ringing message, every critical alert announced `OPSBENCH_ESCALATE_AFTER`
    ago that nobody acked, silenced or saw resolve (once more after twice as long again). Run by the
    outbox drain (ops/alerting/bridge.py), so it does not wait for the alert's own check, which may
    run daily. Returns the keys escalated now."""
    after = settings.escalation_delay
    if after is None:
        return []
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    with engine.begin() as conn:
        rows = list(_q().escalation_candidates.execute(conn))
        if not rows:
            return []
        silences = list(_q().active_silences.execute(conn, at=now))
        due: dict[int, list[Any]] = {}
        for r in rows:
            times = [dt.datetime.fromisoformat(t) for t in (r.escalated or [])]
            if not escalation_due(r.last_notified_at, times, after, now):
                continue
            if any(fnmatch.fnmatchcase(r.key, s.pattern) or fnmatch.fnmatchcase(r.rule, s.pattern) for s in silences):
                continue   # silenced since its last evaluation: held, as the evaluation would
            due.setdefault(r.incident_id, []).append(r)
        for incident_id, group in sorted(due.items()):
            for r in group:
                _q().mark_escalated.execute(conn, key=r.key, at=now)
            news = tuple(AlertNotice(kind="escalated", key=r.key, rule=r.rule, severity=r.severity,
                                     summary=r.summary, source=r.source, details=r.details or "",
                                     evidence=list(r.evidence or []), evidence_count=r.evidence_count,
                                     command=r.command, started_at=r.started_at, now=now) for r in group)
            ids = outbox.publish(conn, Notice("escalated", news, settings.environment, incident_id),
                                 settings, now=now, source="alerts:escalation")
            for r in group:
                n = len(r.escalated or []) + 1
                _q().add_event.execute(conn, at=now, key=r.key, rule=r.rule, severity=r.severity, kind="escalated",
                                       summary=r.summary, outbox_id=ids[0] if ids else None,
                                       note=f"escalation {n} of {ESCALATIONS}: not acked "
                                            f"{human_duration(now - r.last_notified_at)} after it was sent")
    return sorted(r.key for group in due.values() for r in group)


# -- reading -------------------------------------------------------------------

def firing(engine: Engine) -> list:
    """Alerts firing now (rows with key, rule, severity, summary, source, started_at, fired_at,
    last_notified_at, held_reason, evidence_count, command), most severe first."""
    with engine.connect() as conn:
        return list(_q().firing.execute(conn))


def recent(engine: Engine, limit: int = 20) -> list:
    """Latest alert events (id, at, key, rule, severity, kind, summary, outbox_id, note), newest first."""
    with engine.connect() as conn:
        return list(_q().recent.execute(conn, limit=limit))


# -- silences ------------------------------------------------------------------

def add_silence_in(conn: Connection, pattern: str, until: dt.datetime, reason: str, now: dt.datetime,
                   created_by: str | None = None) -> int:
    """Create a silence inside the caller's transaction; returns its id."""
    if not pattern.strip():
        raise ValueError("a silence needs a non-empty pattern")
    if not reason.strip():
        raise ValueError("a silence needs a reason")
    if until <= now:
        raise ValueError("a silence must end in the future")
    return int(_q().add_silence.execute(conn, pattern=pattern.strip(), reason=reason.strip(),
                                        created_by=created_by, starts_at=now, ends_at=until).scalar_one())


def add_silence(engine: Engine, pattern: str, until: dt.datetime, reason: str, now: dt.datetime,
                created_by: str | None = None) -> int:
    with engine.begin() as conn:
        return add_silence_in(conn, pattern, until, reason, now, created_by)


def remove_silence_in(conn: Connection, silence_id: int, now: dt.datetime) -> bool:
    """End a silence now, inside the caller's transaction. False when there is no such silence in force."""
    return _q().cancel_silence.execute(conn, id=silence_id, at=now).first() is not None


def remove_silence(engine: Engine, silence_id: int, now: dt.datetime) -> bool:
    """End a silence now. False when there is no such silence in force."""
    with engine.begin() as conn:
        return remove_silence_in(conn, silence_id, now)


def active_silences(engine: Engine, now: dt.datetime) -> list:
    with engine.connect() as conn:
        return list(_q().active_silences.execute(conn, at=now))



# -- closing without a RESOLVED page ---------------------------------------------

def close(conn: Connection, note: str, now: dt.datetime, keys: list[str] | None = None,
          settings: Settings | None = None) -> list:
    """Close pending/firing alerts (all, or only `keys`) inside the caller's transaction.

    No RESOLVED message is queued: the condition was not seen to end (the
    backend changed, the check was removed, someone closed it by hand). Each
    closed alert gets one 'closed' history row carrying `note`. With
    `settings`, their incident messages are edited (quietly) to say so.
    Returns the closed rows (key, rule, severity, summary, source).
    """
    if keys is not None and not keys:
        return []
    rows = list(_q().close_open.execute(conn, keys=json.dumps(keys) if keys is not None else None,
                                        note=note, at=now))
    if settings is not None and rows:
        held = list(queries.load("state/incidents").alerts_of.execute(
            conn, keys=json.dumps(sorted({r.key for r in rows}))))
        refresh_incidents(conn, [r.incident_id for r in held if r.incident_id is not None], settings, now)
    return rows


def close_keys(engine: Engine, keys: list[str], note: str, now: dt.datetime,
               settings: Settings | None = None) -> list:
    with engine.begin() as conn:
        return close(conn, note, now, keys, settings)


def open_alerts(engine: Engine) -> list:
    """Pending or firing alerts (key, rule, source, state)."""
    with engine.connect() as conn:
        return list(_q().open_by_source.execute(conn))
