"""The alert lifecycle as a pure state machine, tested over sequences of evaluations without a
database: `lifecycle.MemoryStore` runs the same `evaluate` the alert manager runs on the state store
(test_backtest.py replays one window through both and compares them notice by notice)."""

from __future__ import annotations

import datetime as dt

from ops.alerting import lifecycle
from ops.alerting.lifecycle import FLAPPING, MemoryStore, RuleConfig, Silence
from ops.contract import AlertState, Finding, JobResult, RunStatus, Severity

T0 = dt.datetime(2027, 1, 4, 9, 0, tzinfo=dt.timezone.utc)
STEP = dt.timedelta(minutes=5)
RULES = {"r": RuleConfig(fire_after=2, resolve_after=2, flap_changes=0),
         "flappy": RuleConfig(fire_after=1, resolve_after=1, flap_changes=4),
         "db_down": RuleConfig(fire_after=1, resolve_after=1, flap_changes=0),
         "dep": RuleConfig(fire_after=1, resolve_after=1, flap_changes=0)}


def bad(rule: str = "r", severity: Severity = Severity.warning, requires: tuple[str, ...] = (), **labels) -> JobResult:
    return JobResult(findings=[Finding(rule, severity, f"{rule} is bad", labels=labels, requires=requires)],
                     rules={rule})


def good(*rules: str) -> JobResult:
    return JobResult(rules=set(rules or ("r",)))


def run(store: MemoryStore, steps: list[JobResult], source: str = "probe", start: dt.datetime = T0):
    """Feed one result per step; the notices sent, as (step, key, kind)."""
    out = []
    for i, result in enumerate(steps):
        o = store.record(source, result, start + i * STEP, rules=RULES)
        out += [(i, n.alert.key, n.kind) for n in (o.notices if o else [])]
    return out


def test_pending_until_fire_after_then_one_firing_then_resolved_after_resolve_after():
    store = MemoryStore()
    told = run(store, [bad(), bad(), bad(), good(), good(), good()])
    assert told == [(1, "r", "firing"), (4, "r", "resolved")]
    assert store.alerts["r"].state == AlertState.resolved


def test_one_bad_evaluation_below_fire_after_clears_silently():
    store = MemoryStore()
    assert run(store, [bad(), good(), bad(), good()]) == []
    assert store.alerts["r"].state == AlertState.inactive


def test_keep_firing_one_good_evaluation_between_bad_ones_does_not_resolve():
    store = MemoryStore()
    told = run(store, [bad(), bad(), good(), bad(), good(), good()])
    assert told == [(1, "r", "firing"), (5, "r", "resolved")]


def test_repeat_every_while_still_bad_and_not_after_an_ack():
    rules = {"r": RuleConfig(fire_after=1, resolve_after=1, repeat_every=dt.timedelta(minutes=20), flap_changes=0)}
    store = MemoryStore()
    told = []
    for i in range(10):
        o = store.record("probe", bad(), T0 + i * STEP, rules=rules)
        told += [(i, n.kind) for n in o.notices]
    assert told == [(0, "firing"), (4, "repeat"), (8, "repeat")]
    store.alerts["r"].acked_at, store.alerts["r"].acked_by = T0 + 9 * STEP, "founder"
    later = [n.kind for i in range(10, 20) for n in store.record("probe", bad(), T0 + i * STEP, rules=rules).notices]
    assert later == []   # acked: someone is on it


def test_flapping_is_announced_once_then_held_until_calm():
    store = MemoryStore()
    pattern = [bad("flappy"), good("flappy")] * 4 + [good("flappy")] * 8
    told = run(store, pattern)
    kinds = [k for _, _, k in told]
    # two real changes announced, the fourth change announced as FLAPPING, then nothing until it stays
    # put for flap_calm (30 min = 6 steps), then its state once
    assert kinds[:3] == ["firing", "resolved", "firing"] and kinds[3] == FLAPPING, told
    assert kinds[4:] == ["resolved"], told
    assert told[-1][0] - told[3][0] >= 6


def test_a_dependent_is_held_behind_its_root_cause_and_closes_silently_when_gone():
    store = MemoryStore()
    told = run(store, [bad("db_down", Severity.critical)], source="db_probe")
    assert told == [(0, "db_down", "firing")]
    # the dependent fires behind the root cause: held (suppressed), nothing sent
    o = store.record("jobs", bad("dep", requires=("db_down",)), T0 + STEP, rules=RULES)
    assert o.notices == [] and o.transitions["dep"].held == "suppressed"
    # its own check finds it gone before the root cause resolves: closed without a word
    o = store.record("jobs", good("dep"), T0 + 2 * STEP, rules=RULES)
    assert o.notices == [] and store.alerts["dep"].state == AlertState.resolved
    o = store.record("db_probe", good("db_down"), T0 + 3 * STEP, rules=RULES)
    assert [(n.alert.key, n.kind) for n in o.notices] == [("db_down", "resolved")]


def test_the_root_causes_resolution_names_what_it_held_back():
    store = MemoryStore()
    run(store, [bad("db_down", Severity.critical)], source="db_probe")
    store.record("jobs", bad("dep", requires=("db_down",)), T0 + STEP, rules=RULES)
    o = store.record("db_probe", good("db_down"), T0 + 2 * STEP, rules=RULES)
    (notice,) = o.notices
    assert notice.kind == "resolved" and "dep" in notice.details


def test_a_failed_run_awaits_its_root_cause_check_then_is_announced_when_it_ran_fine():
    store = MemoryStore()
    failed = JobResult(status=RunStatus.failed, findings=[Finding("dep", Severity.warning, "job failed",
                                                                  requires=("db_down",))], rules={"dep"})
    o = store.record("jobs", failed, T0, rules=RULES)
    assert o.notices == [] and o.transitions["dep"].held == "awaiting"
    # the root-cause check runs fine: the dependent is announced in that evaluation's message
    o = store.record("db_probe", good("db_down"), T0 + STEP, rules=RULES)
    assert [(n.alert.key, n.kind) for n in o.notices] == [("dep", "firing")]


def test_a_silence_holds_firing_and_resolved_messages():
    store = MemoryStore(silences=[Silence(1, "r*", "deploy")])
    assert run(store, [bad(), bad(), good(), good()]) == []
    assert store.alerts["r"].state == AlertState.resolved


def test_only_the_source_that_raised_an_alert_clears_it():
    store = MemoryStore()
    run(store, [bad(), bad()], source="a")
    assert run(store, [good(), good(), good()], source="b", start=T0 + 2 * STEP) == []
    assert store.alerts["r"].state == AlertState.firing


def test_the_most_severe_finding_of_a_key_wins_and_labels_make_separate_alerts():
    store = MemoryStore()
    result = JobResult(findings=[Finding("r", Severity.warning, "w", labels={"p": "a"}),
                                 Finding("r", Severity.critical, "c", labels={"p": "a"}),
                                 Finding("r", Severity.warning, "w", labels={"p": "b"})], rules={"r"})
    for i in range(2):
        o = store.record("probe", result, T0 + i * STEP, rules=RULES)
    assert sorted((n.alert.key, n.alert.severity) for n in o.notices) == [("r{p=a}", "critical"),
                                                                           ("r{p=b}", "warning")]


def test_the_evaluation_reads_nothing_but_its_world():
    """evaluate() takes the world as an argument: a world that records its reads sees each one."""
    reads = []

    class Spy(MemoryStore):
        def silences(self, at):
            reads.append("silences")
            return super().silences(at)

    Spy().record("probe", bad(), T0, rules=RULES)
    assert reads == ["silences"]
    assert lifecycle.judged(good("x", "y"))[1] == {"x", "y"}
