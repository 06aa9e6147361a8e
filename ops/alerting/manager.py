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
import fnmatch
import json
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from sqlalchemy.engine import Connection, Engine

import queries
from ops.alerting import channels, outbox
from ops.alerting.notices import AlertNotice, Notice, human_duration
from ops.contract import AlertState, Finding, JobResult, RunStatus, Severity
from ops.core.settings import Settings


def _q():
    return queries.load("state/alerts")


# -- rule configuration --------------------------------------------------------

@dataclass(frozen=True)
class RuleConfig:
    fire_after: int = 1                                  # consecutive bad evaluations to fire
    resolve_after: int = 2                               # consecutive good evaluations to resolve
    repeat_every: dt.timedelta = dt.timedelta(hours=4)   # re-announce while firing
    # flapping: this many fire/resolve changes within flap_window is announced once
    # as flapping, then held until the alert stays put for flap_calm (0 = off)
    flap_changes: int = 4
    flap_window: dt.timedelta = dt.timedelta(hours=1)
    flap_calm: dt.timedelta = dt.timedelta(minutes=30)


DEFAULT_RULE = RuleConfig()
# keep_firing_for (Prometheus) for rules judged on sampled counts: a provider whose error rate hovers
# at its line would otherwise resolve and fire again within the hour. Six good evaluations (30 min
# at the metric probes' 5 minutes) close it; tuned with `opsbench backtest` (docs/backtest.md).
RULE_DEFAULTS: dict[str, RuleConfig] = {
    "job_error_rate": RuleConfig(resolve_after=6),
    # a daemon leading again is good news at once (ops.daemon.scheduler pages each loss of the lead)
    "daemon_leadership": RuleConfig(resolve_after=1),
}
# the longest a dependent waits for its root-cause check to run (see the module docstring)
AWAIT_ROOT_CAUSE = dt.timedelta(minutes=15)


def rule_config(rule: str, overrides: Mapping[str, RuleConfig] | None = None,
                settings: Settings | None = None) -> RuleConfig:
    """Every rule fires on its first bad evaluation and resolves after two good ones (job_error_rate: six,
    see RULE_DEFAULTS), unless overridden."""
    if overrides and rule in overrides:
        return overrides[rule]
    base = RULE_DEFAULTS.get(rule, DEFAULT_RULE)
    if settings is not None and settings.flap_changes != base.flap_changes:
        return replace(base, flap_changes=settings.flap_changes)
    return base


# -- results -------------------------------------------------------------------

@dataclass(frozen=True)
class Transition:
    """What one evaluation did to one alert."""

    key: str
    rule: str
    severity: str
    from_state: str           # none | pending | firing | resolved | inactive
    to_state: str
    notified: str | None = None    # firing | repeat | resolved when it is in this evaluation's message
    held: str | None = None        # silenced | suppressed when a message was held back
    duration: dt.timedelta | None = None   # for resolved: how long it lasted
    outbox_ids: tuple[int, ...] = ()


@dataclass
class Alert:
    """One row of opsbench.alerts."""

    key: str
    rule: str
    labels: dict[str, str]
    source: str
    severity: str
    state: AlertState
    summary: str = ""
    details: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    evidence_count: int | None = None
    command: str | None = None
    requires: list[str] = field(default_factory=list)
    bad_streak: int = 0
    good_streak: int = 0
    started_at: dt.datetime | None = None
    fired_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    last_notified_at: dt.datetime | None = None
    held_reason: str | None = None
    last_eval_at: dt.datetime | None = None
    incident_id: int | None = None          # the Telegram message announcing this episode
    acked_by: str | None = None             # acknowledged (from Telegram): no repeats this episode
    acked_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        self.state = AlertState(self.state)

    @classmethod
    def from_row(cls, row) -> "Alert":
        m = dict(row._mapping)
        m["requires"] = list(m.get("requires") or [])
        m["labels"] = dict(m.get("labels") or {})
        m["evidence"] = list(m.get("evidence") or [])
        return cls(**m)

    def params(self) -> dict[str, Any]:
        p = dict(vars(self))
        p["labels"] = json.dumps(self.labels)
        p["evidence"] = json.dumps(self.evidence, default=str)
        p["requires"] = json.dumps(list(self.requires))
        return p


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

def _matches(pattern: str, alert: Alert) -> bool:
    return fnmatch.fnmatchcase(alert.key, pattern) or fnmatch.fnmatchcase(alert.rule, pattern)


def _root_cause(alert: Alert, roots: Mapping[str, str]) -> str | None:
    """A pending or firing alert this one depends on (roots: key -> rule), or None."""
    for need in alert.requires:
        for key, rule in roots.items():
            if key != alert.key and (rule == need or fnmatch.fnmatchcase(key, need)):
                return key
    return None


def _awaited(alert: Alert, evals: Mapping[str, dt.datetime], now: dt.datetime) -> str | None:
    """A required rule not evaluated since this alert started (or never), within AWAIT_ROOT_CAUSE."""
    start = alert.started_at or now
    if now - start >= AWAIT_ROOT_CAUSE:
        return None
    for need in alert.requires:
        rule = need.split("{", 1)[0]
        if any(c in rule for c in "*?["):
            continue  # a pattern names no single check to wait for
        last = evals.get(rule)
        if last is None or last < start:
            return rule
    return None


def _dependency_hold(alert: Alert, roots: Mapping[str, str], states: Mapping[str, str],
                     evals: Mapping[str, dt.datetime], now: dt.datetime,
                     may_await: bool) -> tuple[str | None, str | None]:
    """(held reason, note) for a firing alert's dependencies: suppressed, awaiting or (None, None)."""
    root = _root_cause(alert, roots)
    if root is not None:
        return "suppressed", f"root cause {root}" + (" (pending)" if states.get(root) == AlertState.pending else "")
    need = _awaited(alert, evals, now) if may_await else None
    if need is not None:
        return "awaiting", f"waiting for {need} to be checked"
    return None, None


def _episode_start(alert: Alert, now: dt.datetime) -> None:
    flapping = alert.held_reason == FLAPPING and alert.state == AlertState.resolved
    alert.state, alert.bad_streak, alert.good_streak = AlertState.pending, 0, 0
    alert.started_at, alert.fired_at, alert.resolved_at = now, None, None
    alert.incident_id, alert.acked_by, alert.acked_at = None, None, None
    # a flapping alert that fires again stays held (and keeps its last notice time)
    alert.held_reason = FLAPPING if flapping else None
    if not flapping:
        alert.last_notified_at = None


FLAPPING = "flapping"


def _last_change(alert: Alert) -> dt.datetime | None:
    return max((t for t in (alert.fired_at, alert.resolved_at) if t is not None), default=None)


def _flap_count(conn: Connection, alert: Alert, cfg: RuleConfig, now: dt.datetime) -> int:
    """Fire/resolve changes in the flap window, this evaluation's one included."""
    return int(_q().state_changes.execute(conn, key=alert.key, since=now - cfg.flap_window).scalar_one()) + 1


def _apply_finding(alert: Alert, f: Finding, source: str) -> None:
    alert.source = source
    alert.severity = Severity(f.severity).value
    alert.summary, alert.details = f.summary, f.details or ""
    alert.evidence = [dict(r) for r in f.evidence]
    alert.evidence_count = f.evidence_count if f.evidence_count is not None else (len(f.evidence) or None)
    alert.command = f.command
    alert.requires = list(f.requires)
    alert.labels = dict(f.labels)


def _while_flapping(alert: Alert, before: str, cfg: RuleConfig, now: dt.datetime,
                    events: list) -> str | None:
    """A flapping alert: changes are recorded but not announced; once it has stayed put for
    flap_calm, its state is announced once (FIRING or RESOLVED) and the hold ends."""
    if alert.state == AlertState.resolved and before == AlertState.firing:
        events.append((alert, "resolved", None))
        return None
    if alert.state != before:
        return None  # the change itself was recorded with the state change
    last = _last_change(alert)
    if last is None or now - last < cfg.flap_calm:
        return None
    alert.held_reason = None
    events.append((alert, "stable", f"no change for {human_duration(now - last)}"))
    if alert.state == AlertState.firing:
        alert.last_notified_at = now
        return "firing"
    if alert.state == AlertState.resolved:
        return "resolved"
    return None


def record_result(engine: Engine, source: str, result: JobResult, now: dt.datetime, settings: Settings,
                  rules: Mapping[str, RuleConfig] | None = None) -> list[Transition]:
    """Feed one job run into the lifecycle; returns what changed (and what was announced)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    findings: dict[str, Finding] = {}
    for f in result.findings:
        # the same key twice in one run: keep the most severe
        if f.key not in findings or Severity(f.severity).rank < Severity(findings[f.key].severity).rank:
            findings[f.key] = f
    evaluated = set(result.rules) | {f.rule for f in findings.values()}
    if not evaluated:
        return []
    with engine.begin() as conn:
        return _evaluate(conn, source, findings, evaluated, now, settings, rules,
                         run_failed=result.status in (RunStatus.failed, RunStatus.timeout))


def _evaluate(conn: Connection, source: str, findings: dict[str, Finding], evaluated: set[str],
              now: dt.datetime, settings: Settings, rules: Mapping[str, RuleConfig] | None,
              run_failed: bool = False) -> list[Transition]:
    existing = {r.key: Alert.from_row(r) for r in _q().lock_rules.execute(conn, rules=json.dumps(sorted(evaluated)))}
    _q().mark_evaluated.execute(conn, rules=json.dumps(sorted(evaluated)), at=now, source=source)
    touched: dict[str, tuple[Alert, str]] = {}   # key -> (alert, state before)
    events: list[tuple[Alert, str, str | None]] = []
    resolved_now: list[tuple[Alert, dt.timedelta]] = []

    for key, f in findings.items():
        alert = existing.get(key)
        before = alert.state if alert else "none"
        if alert is None:
            alert = Alert(key=key, rule=f.rule, labels={}, source=source, severity="info", state=AlertState.inactive)
        cfg = rule_config(f.rule, rules, settings)
        _apply_finding(alert, f, source)
        if alert.state in (AlertState.inactive, AlertState.resolved):
            _episode_start(alert, now)
        alert.bad_streak += 1
        alert.good_streak = 0
        if alert.state == AlertState.pending and alert.bad_streak >= cfg.fire_after:
            alert.state, alert.fired_at = AlertState.firing, now
        if alert.state != before:
            events.append((alert, alert.state, None))
        alert.last_eval_at = now
        touched[key] = (alert, before)

    for key, alert in existing.items():
        if key in findings:
            continue
        if alert.state == AlertState.resolved and alert.held_reason == FLAPPING and alert.source == source:
            alert.last_eval_at = now
            touched[key] = (alert, alert.state)   # no change; may be released below when calm
            continue
        if alert.state not in (AlertState.pending, AlertState.firing):
            continue
        # only the check that raised an alert can clear it: a rule such as
        # job_failed{job=X} is shared by every job, and job Y running fine
        # says nothing about X
        if alert.source != source:
            continue
        before = alert.state
        cfg = rule_config(alert.rule, rules, settings)
        alert.good_streak += 1
        alert.bad_streak = 0
        if alert.state == AlertState.pending:
            alert.state = AlertState.inactive
            events.append((alert, "cleared", None))
        elif alert.last_notified_at is None and alert.held_reason in ("suppressed", "awaiting"):
            # held behind a root cause and never announced: its own check now
            # finds it gone, so it closes without a word (no FIRING the night
            # after an outage, no RESOLVED the night after that)
            alert.state, alert.resolved_at, alert.held_reason = AlertState.resolved, now, None
            events.append((alert, "closed", "condition gone before its hold ended; never announced"))
        elif alert.good_streak >= cfg.resolve_after:
            alert.state, alert.resolved_at = AlertState.resolved, now
            resolved_now.append((alert, now - (alert.started_at or now)))
        alert.last_eval_at = now
        touched[key] = (alert, before)

    # alerts held until their root-cause check ran: this evaluation may settle them
    for r in _q().awaiting_root_cause.execute(conn, keys=json.dumps(sorted(touched))):
        alert = Alert.from_row(r)
        touched[alert.key] = (alert, alert.state)

    # root causes: every alert pending or firing after this evaluation
    roots = {r.key: (r.rule, r.state) for r in _q().root_keys.execute(conn)}
    for key, (alert, _) in touched.items():
        if alert.state in (AlertState.pending, AlertState.firing):
            roots[key] = (alert.rule, alert.state)
        else:
            roots.pop(key, None)
    root_rules = {k: rule for k, (rule, _) in roots.items()}
    root_states = {k: st for k, (_, st) in roots.items()}
    needs = sorted({n for alert, _ in touched.values() if alert.state == AlertState.firing for n in alert.requires})
    evals = {r.rule: r.last_eval_at for r in _q().rule_evaluations.execute(conn, rules=json.dumps(needs))} \
        if needs else {}
    silences = list(_q().active_silences.execute(conn, at=now))

    notices: list[tuple[Alert, AlertNotice]] = []
    transitions: dict[str, Transition] = {}
    for key, (alert, before) in touched.items():
        cfg = rule_config(alert.rule, rules, settings)
        silence = next((s for s in silences if _matches(s.pattern, alert)), None)
        may_await = (run_failed and key in findings) or alert.held_reason == "awaiting"
        dep_held, dep_note = (_dependency_hold(alert, root_rules, root_states, evals, now, may_await)
                              if alert.state == AlertState.firing else (None, None))
        held = "silenced" if silence else dep_held
        notified = held_now = None
        was_flapping = alert.held_reason == FLAPPING and not held
        if was_flapping:
            notified = _while_flapping(alert, before, cfg, now, events)
        elif alert.state == AlertState.firing:
            want = None
            if alert.last_notified_at is None:
                want = "firing"
            elif key in findings and alert.acked_at is None and now - alert.last_notified_at >= cfg.repeat_every:
                want = "repeat"  # an acked alert is not repeated: someone is on it
            if want and held:
                held_now = held
                if alert.held_reason != held:  # note the hold once, not every evaluation
                    note = f"silence {silence.id}: {silence.reason}" if silence else dep_note
                    events.append((alert, held, note))
            elif want:
                notified = want
                alert.last_notified_at = now
            alert.held_reason = held
        elif alert.state == AlertState.resolved and before == AlertState.firing:
            if alert.last_notified_at is not None and not silence:
                notified = "resolved"
            events.append((alert, "resolved", None))
            alert.held_reason = None
        if notified in ("firing", "resolved") and not was_flapping and cfg.flap_changes:
            changes = _flap_count(conn, alert, cfg, now)
            if changes >= cfg.flap_changes:
                notified, alert.held_reason = FLAPPING, FLAPPING
                alert.last_notified_at = now
                events.append((alert, FLAPPING, f"{changes} changes in {human_duration(cfg.flap_window)}"))
        if notified:
            details = alert.details
            if notified == "resolved":
                details = ""  # a RESOLVED message names what it kept quiet, not the old finding's details
                held_keys = [r.key for r in _q().held_behind.execute(conn, rule=alert.rule, key=alert.key)]
                if held_keys:
                    details = (f"Held back while it lasted (each closes silently when its next check is fine): "
                               f"{', '.join(held_keys[:10])}" + (f" and {len(held_keys) - 10} more"
                                                                 if len(held_keys) > 10 else ""))
            if notified == FLAPPING:
                details = (f"It fired or resolved {cfg.flap_changes} times or more within "
                           f"{human_duration(cfg.flap_window)}. Further changes are held until it stays "
                           f"put for {human_duration(cfg.flap_calm)}; then its state is announced once.")
            notices.append((alert, AlertNotice(
                kind=notified, key=alert.key, rule=alert.rule, severity=alert.severity, summary=alert.summary,
                source=alert.source, details=details, evidence=alert.evidence,
                evidence_count=alert.evidence_count, command=alert.command, started_at=alert.started_at, now=now)))
            if notified == "repeat":
                events.append((alert, "repeat", None))
        duration = next((d for a, d in resolved_now if a.key == key), None)
        transitions[key] = Transition(key, alert.rule, alert.severity, before, alert.state, notified, held_now,
                                      duration)

    # written before the messages: an incident's edit renders the rows as this evaluation left them
    for alert, _ in touched.values():
        _q().upsert.execute(conn, **alert.params())
    incident_before = {key: alert.incident_id for key, (alert, _) in touched.items()}
    sent_for = _announce(conn, notices, touched, settings, now, source)
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
