"""The alert lifecycle as a pure state machine: (the alerts one job run evaluated, what it found,
the moment) -> (their new states, the notices to send, the history to record).

Nothing here reads a database or a clock. What an evaluation needs to know about the rest of the
world (other alerts that are root causes, silences in force, when a rule was last evaluated, how
often an alert changed lately) comes through a `World`: the alert manager's reads the state
store inside its transaction, the backtest's is kept in memory. Both therefore take the same
decisions, by construction. Rendering and delivery are not decided here: a `Notice` says what
happened to which alert; channels turn notices into messages.

The rules of the lifecycle are described in ops/alerting/manager.py's docstring.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, NamedTuple, Protocol

from ops.alerting import maintenance
from ops.contract import AlertState, Finding, JobResult, RunStatus, Severity
from ops.core.clock import human_duration
from ops.core.settings import Settings


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


class Silence(NamedTuple):
    """A hold in force: a silence (one fnmatch pattern over keys and rules) or a maintenance window
    (its patterns; none: every alert below critical)."""

    id: int
    pattern: str
    reason: str
    kind: str = "silence"                 # silence | maintenance
    patterns: tuple[str, ...] = ()

    def holds(self, alert: "Alert") -> bool:
        if self.kind == "maintenance":
            return maintenance.covers(self.patterns, alert.key, alert.rule, alert.severity)
        return _matches(self.pattern, alert)


class Notice(NamedTuple):
    """One alert in this evaluation's message: firing | repeat | resolved | flapping."""

    alert: "Alert"
    kind: str
    details: str


class World(Protocol):
    """What one evaluation reads about everything but the alerts it evaluates."""

    def awaiting_root_cause(self, exclude: set[str]) -> list["Alert"]:
        """Firing alerts held until their root-cause check runs, other than `exclude`."""

    def open_alerts(self) -> Iterable[tuple[str, tuple[str, str]]]:
        """(key, (rule, state)) of every pending or firing alert."""

    def rule_evaluations(self, rules: list[str]) -> dict[str, dt.datetime]:
        """When each of these rules was last evaluated."""

    def silences(self, at: dt.datetime) -> list[Silence]:
        """Silences in force at `at`."""

    def state_changes(self, key: str, since: dt.datetime) -> int:
        """How many times this alert fired or resolved since `since`."""

    def held_behind(self, rule: str, key: str) -> list[str]:
        """Keys of firing alerts suppressed behind this root cause."""


@dataclass
class Outcome:
    """What one evaluation decided. `touched`: key -> (the alert as it is now, its state before)."""

    touched: dict[str, tuple["Alert", str]]
    notices: list[Notice]
    events: list[tuple["Alert", str, str | None]]     # history rows: (alert, kind, note)
    transitions: dict[str, Transition]


def judged(result: JobResult) -> tuple[dict[str, Finding], set[str]]:
    """A job run's findings by key (the same key twice: the most severe) and the rules it evaluated."""
    findings: dict[str, Finding] = {}
    for f in result.findings:
        if f.key not in findings or Severity(f.severity).rank < Severity(findings[f.key].severity).rank:
            findings[f.key] = f
    return findings, set(result.rules) | {f.rule for f in findings.values()}


def failed(result: JobResult) -> bool:
    """The run itself failed (not a finding it made): its dependents may await their root cause."""
    return result.status in (RunStatus.failed, RunStatus.timeout)


# -- the evaluation --------------------------------------------------------------

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


def evaluate(existing: Mapping[str, Alert], source: str, findings: Mapping[str, Finding], now: dt.datetime,
             world: World, settings: Settings | None = None, rules: Mapping[str, RuleConfig] | None = None,
             run_failed: bool = False) -> Outcome:
    """One job run's evaluation. `existing`: the current alerts of the rules it evaluated (changed in
    place and returned in `touched`); `findings`: its findings by key (the rest of those rules' keys
    from the same source had a good evaluation)."""
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
    for alert in world.awaiting_root_cause(exclude=set(touched)):
        touched[alert.key] = (alert, alert.state)

    # root causes: every alert pending or firing after this evaluation
    roots = dict(world.open_alerts())
    for key, (alert, _) in touched.items():
        if alert.state in (AlertState.pending, AlertState.firing):
            roots[key] = (alert.rule, alert.state)
        else:
            roots.pop(key, None)
    root_rules = {k: rule for k, (rule, _) in roots.items()}
    root_states = {k: st for k, (_, st) in roots.items()}
    needs = sorted({n for alert, _ in touched.values() if alert.state == AlertState.firing for n in alert.requires})
    evals = world.rule_evaluations(needs) if needs else {}
    silences = world.silences(now)

    notices: list[Notice] = []
    transitions: dict[str, Transition] = {}
    for key, (alert, before) in touched.items():
        cfg = rule_config(alert.rule, rules, settings)
        silence = next((s for s in silences if s.holds(alert)), None)
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
                    note = f"{silence.kind} {silence.id}: {silence.reason}" if silence else dep_note
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
            changes = world.state_changes(alert.key, now - cfg.flap_window) + 1  # this one included
            if changes >= cfg.flap_changes:
                notified, alert.held_reason = FLAPPING, FLAPPING
                alert.last_notified_at = now
                events.append((alert, FLAPPING, f"{changes} changes in {human_duration(cfg.flap_window)}"))
        if notified:
            details = alert.details
            if notified == "resolved":
                details = ""  # a RESOLVED message names what it kept quiet, not the old finding's details
                held_keys = world.held_behind(alert.rule, alert.key)
                if held_keys:
                    details = (f"Held back while it lasted (each closes silently when its next check is fine): "
                               f"{', '.join(held_keys[:10])}" + (f" and {len(held_keys) - 10} more"
                                                                 if len(held_keys) > 10 else ""))
            if notified == FLAPPING:
                details = (f"It fired or resolved {cfg.flap_changes} times or more within "
                           f"{human_duration(cfg.flap_window)}. Further changes are held until it stays "
                           f"put for {human_duration(cfg.flap_calm)}; then its state is announced once.")
            notices.append(Notice(alert, notified, details))
            if notified == "repeat":
                events.append((alert, "repeat", None))
        duration = next((d for a, d in resolved_now if a.key == key), None)
        transitions[key] = Transition(key, alert.rule, alert.severity, before, alert.state, notified, held_now,
                                      duration)

    return Outcome(touched, notices, events, transitions)


# -- the lifecycle in memory -------------------------------------------------------

def _copy(alert: Alert) -> Alert:
    return replace(alert, labels=dict(alert.labels), evidence=list(alert.evidence), requires=list(alert.requires))


class MemoryStore:
    """The alert state of the state store, kept in memory: the backtest replays a window through the
    same `evaluate` without writing a row. Reads see the state before the evaluation's own writes,
    as the store's reads inside its transaction do."""

    def __init__(self, silences: Iterable[Silence] = ()):
        self.alerts: dict[str, Alert] = {}
        self.evaluated_at: dict[str, dt.datetime] = {}
        self.changes: dict[str, list[dt.datetime]] = {}   # key -> when it fired or resolved
        self._silences = list(silences)

    def record(self, source: str, result: JobResult, now: dt.datetime, settings: Settings | None = None,
               rules: Mapping[str, RuleConfig] | None = None) -> Outcome | None:
        """One job run, as the alert manager's `record_result` takes it; None when it evaluated no rule."""
        findings, evaluated = judged(result)
        if not evaluated:
            return None
        existing = {k: _copy(a) for k, a in self.alerts.items() if a.rule in evaluated}
        for rule in evaluated:   # marked before the evaluation reads it, as the store does
            self.evaluated_at[rule] = max(now, self.evaluated_at.get(rule, now))
        out = evaluate(existing, source, findings, now, self, settings, rules, failed(result))
        for key, (alert, _) in out.touched.items():
            self.alerts[key] = alert
        for alert, kind, _ in out.events:
            if kind in ("firing", "resolved"):
                self.changes.setdefault(alert.key, []).append(now)
        return out

    # the World the evaluation reads
    def awaiting_root_cause(self, exclude: set[str]) -> list[Alert]:
        return [_copy(a) for k, a in sorted(self.alerts.items())
                if a.state == AlertState.firing and a.held_reason == "awaiting" and k not in exclude]

    def open_alerts(self):
        return [(k, (a.rule, a.state.value)) for k, a in self.alerts.items()
                if a.state in (AlertState.pending, AlertState.firing)]

    def rule_evaluations(self, rules: list[str]) -> dict[str, dt.datetime]:
        return {r: self.evaluated_at[r] for r in rules if r in self.evaluated_at}

    def silences(self, at: dt.datetime) -> list[Silence]:
        return list(self._silences)

    def state_changes(self, key: str, since: dt.datetime) -> int:
        return sum(1 for t in self.changes.get(key, ()) if t >= since)

    def held_behind(self, rule: str, key: str) -> list[str]:
        return sorted(k for k, a in self.alerts.items() if a.state == AlertState.firing
                      and a.held_reason == "suppressed" and (rule in a.requires or key in a.requires))
