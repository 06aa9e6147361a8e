"""The state store is bound to the backend it describes.

Two databases on the embedded server: A, the demo (seed 1), and B, the same
generator with seed 2 (other numbers), both anchored at the same instant. The
state store lives in A (as after `make demo` with OPSBENCH_STATE_URL unset)
and holds A's rollups, A's identity and one firing alert of A. Then
DATABASE_URL points at B: the digest's figures and the notebook series must be
B's raw named queries (never A's rollups, which cover the very same days),
the report says why, and once the daemon (runner) notices, A's alert is closed
as "backend changed" with no RESOLVED page, A's rollups are gone and exactly
one message in the outbox says what happened. Expected numbers are the raw
named queries on B, never the readers under test.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import _create_db, _drop_db, settings_for

import queries
from ops import notebook as nb
from ops.alerting import manager as alerts
from ops.alerting import rebind
from ops.contract import Finding, JobResult, Severity
from ops.core.settings import load_settings
from ops.daemon.runner import Runner
from ops.data import backend, rollups
from ops.data import db as ops_db
from ops.reports import figures as report
from ops.core.clock import utc_now

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

TZ = "UTC"
ONE = dt.timedelta(days=1)
KEY = "health_check_failing{probe=backend}"


@pytest.fixture(scope="module")
def a(demo_db):
    return demo_db


@pytest.fixture(scope="module")
def anchor(a) -> dt.datetime:
    return dt.datetime.fromisoformat(a.manifest["anchor"])


@pytest.fixture(scope="module")
def b_url(pg_server, seed2_template, anchor):
    name = "backend_switch_b"
    template, manifest = seed2_template
    assert dt.datetime.fromisoformat(manifest["anchor"]) == anchor  # the same moment as backend A's data
    _create_db(pg_server.admin_url, name, template=template)
    url = pg_server.url(name)
    yield url
    _drop_db(pg_server.admin_url, name)


@pytest.fixture(scope="module")
def day(anchor) -> dt.date:
    return rollups.local_today(TZ, anchor) - 2 * ONE


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as c:
        return int(c.execute(sa.text(sql)).scalar_one())


@pytest.fixture(scope="module")
def switched_world(a, b_url, pg_home, anchor, day):
    """State in A describing A (rollups, identity, one firing alert); settings for B reading that state."""
    settings_a = settings_for(pg_home, a.url, REPORT_TZ=TZ)
    state = ops_db.engine("state", settings_a)
    rollups.refresh(ops_db.analytics(settings_a), state, TZ, now=anchor)
    assert rebind.ensure(ops_db.analytics(settings_a), state) is None          # first sight: recorded, no switch
    assert backend.stored(state) == backend.current(ops_db.analytics(settings_a))
    alerts.record_result(state, "http_probes", JobResult(findings=[
        Finding("health_check_failing", Severity.critical, "backend unhealthy", labels={"probe": "backend"})]),
        utc_now(), settings_a)
    assert [r.key for r in alerts.firing(state)] == [KEY]
    wm = rollups.watermark(state, TZ)
    assert wm is not None and wm.complete_from <= day <= wm.refreshed_through   # A's rollups cover the day
    settings_b = load_settings(DATABASE_URL=b_url, OPSBENCH_STATE_URL=a.url, OPSBENCH_HOME=str(pg_home),
                               REPORT_TZ=TZ)
    return settings_a, settings_b, state


def _raw_b(settings_b, start, end) -> dict:
    b = ops_db.analytics(settings_b)
    w = {"start": start, "end": end, "tz": TZ}
    return {"revenue": queries.revenue.daily.raw(b, **w), "activity": queries.activity.daily.raw(b, **w),
            "errors": queries.errors.daily.raw(b, **w)}


def test_identities_differ_between_the_two_databases(switched_world):
    settings_a, settings_b, state = switched_world
    ida, idb = backend.current(ops_db.analytics(settings_a)), backend.current(ops_db.analytics(settings_b))
    assert ida != idb and ida.system_identifier == idb.system_identifier   # one server, two databases
    with ops_db.analytics(settings_a).connect() as c:
        sysid = c.execute(sa.text("SELECT system_identifier::text FROM pg_control_system()")).scalar_one()
    assert ida.system_identifier == sysid and ida.database == a_name(settings_a)


def a_name(settings) -> str:
    with ops_db.analytics(settings).connect() as c:
        return c.execute(sa.text("SELECT current_database()")).scalar_one()


def test_digest_after_the_switch_shows_the_new_backends_raw_numbers(switched_world, day, anchor):
    settings_a, settings_b, state = switched_world
    raw_a = _raw_b(settings_a, day, day)
    raw = _raw_b(settings_b, day, day)
    assert float(raw["revenue"]["gross"].iloc[0]) != float(raw_a["revenue"]["gross"].iloc[0])  # data differ
    rep = report.build(ops_db.analytics(settings_b), settings_b, "daily", window=report.Window(day, day, TZ),
                       state=state, now=anchor)
    f = rep.figures
    assert f["gross"].value == pytest.approx(float(raw["revenue"]["gross"].iloc[0]))
    assert f["net"].value == pytest.approx(float(raw["revenue"]["net"].iloc[0]))
    assert f["dau"].value == int(raw["activity"]["dau"].iloc[0])
    assert f["jobs"].value == int(raw["errors"]["jobs"].iloc[0])
    assert f["failed"].value == int(raw["errors"]["failed"].iloc[0])
    assert any("describes another backend" in n for n in rep.notes)


def test_notebook_series_after_the_switch_equal_the_raw_queries(switched_world, day, monkeypatch):
    _, settings_b, state = switched_world
    monkeypatch.setattr(nb, "_settings", settings_b)
    monkeypatch.setattr(nb, "_unreachable", {})
    start = day - 6 * ONE
    raw = _raw_b(settings_b, start, day)
    got = nb.revenue_series(start, day, TZ)
    assert list(got["gross"].astype(float)) == pytest.approx(list(raw["revenue"]["gross"].astype(float)))
    assert list(nb.errors_series(start, day, TZ)["failed"]) == list(raw["errors"]["failed"])
    assert list(nb.activity_series(start, day, TZ)["dau"]) == list(raw["activity"]["dau"])
    assert "another backend" in nb.series_source(TZ)
    # and the direct reader, handed the state engine, does not read A's rollups either
    direct = rollups.revenue_series(ops_db.analytics(settings_b), state, start, day, tz=TZ, today=day + 2 * ONE)
    assert list(direct["gross"].astype(float)) == pytest.approx(list(raw["revenue"]["gross"].astype(float)))


def test_the_default_query_api_reads_rollups_only_of_its_own_backend(switched_world, day):
    """queries.<series>(engine) is rollup-aware for opsbench's engines, but never reads A's rollups for B."""
    settings_a, settings_b, _ = switched_world
    w = {"start": day - 6 * ONE, "end": day, "tz": TZ}
    for settings in (settings_a, settings_b):
        engine = ops_db.analytics(settings)
        for q in (queries.revenue.daily, queries.activity.daily, queries.errors.daily, queries.errors.durations,
                  queries.errors.by_code, queries.activity.summary):
            pd.testing.assert_frame_equal(q(engine, **w), q.raw(engine, **w), check_exact=False, rtol=1e-12)
    from ops.data import series
    assert series.covered(ops_db.analytics(settings_a), "revenue.daily",
                          queries.revenue.daily.bind(**w)) is not None      # A's own rollups: read
    assert series.covered(ops_db.analytics(settings_b), "revenue.daily",
                          queries.revenue.daily.bind(**w)) is None          # another backend's: never


def test_the_read_path_names_another_backend_by_its_type_not_its_words(switched_world, day):
    """One decision per call, with a typed reason: A's own rollups are READY for A; for B the store is
    OTHER_BACKEND (naming the backend it describes), the plan reads raw, and the state store is not marked down."""
    from ops.data import runtime, series
    from ops.data.series import Reason

    settings_a, settings_b, state = switched_world
    rt_a, rt_b = runtime.for_settings(settings_a), runtime.for_settings(settings_b)
    assert series.source(rt_a, TZ).reason is Reason.READY
    src = series.source(rt_b, TZ)
    assert src.reason is Reason.OTHER_BACKEND and src.detail == str(backend.stored(state))
    assert src.detail == str(backend.current(ops_db.analytics(settings_a)))
    assert not rt_b.state_down.marked
    w = {"start": day - 6 * ONE, "end": day, "tz": TZ}
    p = series.plan(rt_b, "revenue.daily", **w)
    assert p.reason is Reason.OTHER_BACKEND and not p.rolled
    assert series.plan(rt_a, "revenue.daily", **w).reason is Reason.ROLLUPS
    got = series.read(rt_b, "revenue.daily", **w)
    assert list(got["gross"].astype(float)) == pytest.approx(
        list(queries.revenue.daily.raw(ops_db.analytics(settings_b), **w)["gross"].astype(float)))


def test_the_runner_switches_once_closing_alerts_and_forgetting_rollups(switched_world, day, anchor):
    settings_a, settings_b, state = switched_world
    old = backend.current(ops_db.analytics(settings_a))
    new = backend.current(ops_db.analytics(settings_b))
    outbox_before = _count(state, "SELECT count(*) FROM opsbench.outbox")
    runner = Runner(settings_b, {}, state_engine=state)
    switch = runner.check_backend()
    assert switch is not None and switch.alerts_closed == 1 and TZ in switch.zones_forgotten

    assert _count(state, "SELECT count(*) FROM opsbench.alerts WHERE state IN ('firing', 'pending')") == 0
    with state.connect() as c:
        ev = c.execute(sa.text("SELECT kind, note FROM opsbench.alert_events WHERE key = :k ORDER BY id DESC LIMIT 1"),
                       {"k": KEY}).one()
        bodies = [r[0] for r in c.execute(sa.text("SELECT body FROM opsbench.outbox ORDER BY id OFFSET :n"),
                                          {"n": outbox_before})]
    assert (ev.kind, ev.note) == ("closed", "backend changed")
    assert len(bodies) == 1
    assert f"backend changed from {old} to {new}: 1 alerts closed, rollups rebuilding" in bodies[0]
    assert "RESOLVED" not in bodies[0].upper()
    assert rollups.watermark(state, TZ) is None
    assert backend.stored(state) == new

    assert runner.check_backend() is None                                  # once only
    assert _count(state, "SELECT count(*) FROM opsbench.outbox") == outbox_before + 1

    # the next rollups run rebuilds from B; the readers then read B's rollups = B's raw numbers
    rollups.refresh(ops_db.analytics(settings_b), state, TZ, now=anchor)
    raw = _raw_b(settings_b, day, day)
    rep = report.build(ops_db.analytics(settings_b), settings_b, "daily", window=report.Window(day, day, TZ),
                       state=state, now=anchor)
    assert rep.figures["gross"].value == pytest.approx(float(raw["revenue"]["gross"].iloc[0]))
    assert not any("another backend" in n for n in rep.notes)
    assert rep.alerts == []


def test_state_reset_and_rollups_rebuild_by_hand(switched_world, a, b_url, monkeypatch, capsys):
    import io

    from ops.cli import main
    from ops.core.settings import reset_settings_cache

    _, settings_b, state = switched_world
    monkeypatch.setenv("DATABASE_URL", b_url)
    monkeypatch.setenv("OPSBENCH_STATE_URL", a.url)
    monkeypatch.setenv("REPORT_TZ", TZ)
    reset_settings_cache()
    alerts.record_result(state, "http_probes", JobResult(findings=[
        Finding("health_check_failing", Severity.critical, "b unhealthy", labels={"probe": "b"})]),
        utc_now(), settings_b)
    assert _count(state, "SELECT count(*) FROM opsbench.alerts WHERE state = 'firing'") == 1

    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))        # the prompt, answered no: nothing changes
    assert main(["state", "reset"]) == 130
    assert _count(state, "SELECT count(*) FROM opsbench.alerts WHERE state = 'firing'") == 1

    before = _count(state, "SELECT count(*) FROM opsbench.outbox")
    assert main(["state", "reset", "--yes"]) == 0
    assert _count(state, "SELECT count(*) FROM opsbench.alerts WHERE state = 'firing'") == 0
    assert rollups.watermark(state, TZ) is None
    assert _count(state, "SELECT count(*) FROM opsbench.outbox") == before + 1
    assert "1 alerts closed" in capsys.readouterr().out

    assert main(["rollups", "rebuild", "--tz", TZ, "--yes"]) == 0
    wm = rollups.watermark(state, TZ)
    assert wm is not None
    with state.connect() as c:
        gross = c.execute(sa.text("SELECT sum(gross) FROM opsbench.rollup_revenue_daily WHERE tz = :tz"),
                          {"tz": TZ}).scalar_one()
    raw = queries.revenue.daily.raw(ops_db.analytics(settings_b), start=wm.complete_from, end=wm.refreshed_through, tz=TZ)
    assert float(gross) == pytest.approx(float(raw["gross"].sum()))
    assert main(["rollups", "rebuild", "--tz", "Not/AZone", "--yes"]) == 2


def _numbers(rep) -> dict:
    """Every figure of a report with its baselines, as plain numbers."""
    return {k: (f.value, dict(sorted(f.base.items()))) for k, f in rep.figures.items()}


def _assert_same_numbers(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        (gv, gb), (wv, wb) = got[key], want[key]
        assert (gv is None) == (wv is None), key
        if wv is not None:
            assert gv == pytest.approx(wv, rel=1e-9, abs=1e-9), key
        assert gb.keys() == wb.keys(), key
        for b in wb:
            assert (gb[b] is None) == (wb[b] is None), (key, b)
            if wb[b] is not None:
                assert gb[b] == pytest.approx(wb[b], rel=1e-9, abs=1e-9), (key, b)


def test_nothing_derived_from_the_old_backend_is_read_after_a_switch(switched_world, a, b_url, anchor, monkeypatch):
    """B's job history (a reconcile result, cleanup volumes, rule evaluations) stays in the store but is
    never read for A: after switching back to A, the daily and weekly digest's figures, its reconciliation
    and its cleanup section are A's own, before and after the rollups job, and no alert of B is firing."""
    from ops.daemon.jobspec import load_jobs

    settings_a, settings_b, state = switched_world
    rebind.ensure(ops_db.analytics(settings_b), state)               # the store describes B (as left above)
    assert backend.stored(state) == backend.current(ops_db.analytics(settings_b))
    # one more fault in B than in A (the generator plants the same faults whatever the seed)
    import psycopg

    with psycopg.connect(b_url, autocommit=True) as c:
        c.execute("UPDATE users SET credits_remaining = credits_remaining + 7 "
                  "WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1)")
    specs_b = {s.id: s for s in load_jobs(settings_b)}
    runner_b = Runner(settings_b, specs_b, state_engine=state, clock=lambda: anchor)
    rec_b = runner_b.run("reconcile", trigger="manual")
    assert rec_b.status == "ok"
    assert runner_b.run("cleanup", trigger="manual").status == "ok"
    alerts.record_result(state, "reconcile", JobResult(findings=[
        Finding("reconcile_orphan", Severity.critical, "b's ledger", labels={"check": "b"})],
        rules={"reconcile_orphan"}), anchor, settings_b)
    assert _count(state, "SELECT count(*) FROM opsbench.rule_evaluations") > 0

    raw_rec_a = queries.reconciliation.summary(ops_db.analytics(settings_a))
    want_rec = {str(r.check): int(r.offending) for r in raw_rec_a.itertuples(index=False)}
    b_counts = {k.removeprefix("reconcile_"): int(v) for k, v in rec_b.metrics.items() if k.startswith("reconcile_")}
    assert b_counts and b_counts != want_rec                       # B's result would be visibly wrong for A

    runner_a = Runner(settings_a, {s.id: s for s in load_jobs(settings_a)}, state_engine=state,
                      clock=lambda: anchor + dt.timedelta(minutes=5))
    outbox_before = _count(state, "SELECT count(*) FROM opsbench.outbox")
    switch = runner_a.check_backend()
    assert switch is not None and switch.alerts_closed >= 1
    assert alerts.firing(state) == []
    assert _count(state, "SELECT count(*) FROM opsbench.rule_evaluations") == 0
    assert _count(state, "SELECT count(*) FROM opsbench.outbox") == outbox_before + 1

    now = anchor + dt.timedelta(minutes=10)
    analytics_a = ops_db.analytics(settings_a)
    for kind in ("daily", "weekly"):
        window = report.default_window(kind, settings_a, anchor)
        raw_rep = report.build(analytics_a, settings_a, kind, window=window, state=None, now=now)
        rep = report.build(analytics_a, settings_a, kind, window=window, state=state, now=now)
        _assert_same_numbers(_numbers(rep), _numbers(raw_rep))
        assert {c.check: c.offending for c in rep.reconciliation} == want_rec
        assert rep.cleanup == []                                   # B's cleanup volumes are not A's
        assert rep.alerts == [] and rep.failed_runs == []
        assert any("rollups are rebuilding" in n for n in rep.notes), rep.notes
    monkeypatch.setattr(nb, "_settings", settings_a)
    monkeypatch.setattr(nb, "_unreachable", {})
    assert "rebuilding after the backend changed" in nb.series_source(TZ)

    # the rollups job (as the daemon runs it at once after a switch), then the same numbers from A's rollups
    assert runner_a.run("rollups", trigger="manual").status == "ok"
    assert rollups.watermark(state, TZ) is not None
    for kind in ("daily", "weekly"):
        window = report.default_window(kind, settings_a, anchor)
        raw_rep = report.build(analytics_a, settings_a, kind, window=window, state=None, now=now)
        rep = report.build(analytics_a, settings_a, kind, window=window, state=state, now=now)
        _assert_same_numbers(_numbers(rep), _numbers(raw_rep))
        assert not any("rollups are rebuilding" in n for n in rep.notes), rep.notes

    # the operations notebook's view: B's runs are history, not A's
    day = report.default_window("daily", settings_a, anchor).start
    with state.connect() as c:
        totals = queries.load("state/operations").totals.execute(c, start=day - 7 * ONE, end=day + 2 * ONE,
                                                                 tz=TZ).one()
    assert totals.cleanup_runs == 0 and totals.reconcile_runs == 0
    assert totals.all_runs == 1                                    # A's rollups run only


def test_a_store_made_before_backend_binding_is_treated_as_another_backends(empty_db):
    """A state store from before backend binding has rollups and alerts but no recorded backend: nobody
    knows which backend they describe, so the first look switches (old backend "unknown"). A store made
    with binding that has no identity yet (its first look) just records the backend and keeps its alerts."""
    from ops.data.state import migrate

    state = empty_db.writer
    migrate(state)
    analytics = ops_db.analytics(empty_db.settings)
    fire = JobResult(findings=[Finding("stuck_jobs", Severity.warning, "3 stuck", labels={"db": "x"})])
    alerts.record_result(state, "metric_probes", fire, utc_now(), empty_db.settings)
    assert rebind.ensure(analytics, state) is None                       # made with binding: recorded
    assert [r.key for r in alerts.firing(state)] == ["stuck_jobs{db=x}"]

    with state.begin() as c:                                             # now as if made before 080
        c.execute(sa.text("DELETE FROM opsbench.backend_identity"))
        c.execute(sa.text("UPDATE opsbench.schema_migrations SET applied_at = applied_at + interval '1 day' "
                          "WHERE name >= '080'"))
    switch = rebind.ensure(analytics, state)
    assert switch is not None and switch.old is None and switch.alerts_closed == 1
    assert switch.text.startswith("backend changed from unknown to ")
    assert alerts.firing(state) == []
    assert backend.stored(state) == backend.current(analytics)
    assert backend.switched_at(state) is not None
    assert rebind.ensure(analytics, state) is None                       # once


def test_the_daemon_rebuilds_rollups_at_once_after_a_switch_at_start(switched_world, b_url):
    """A daemon started with DATABASE_URL at B while the store describes A switches before scheduling and
    runs the (hourly) rollups job at once, not an hour later: B's rollups are there within seconds."""
    import threading
    import time

    from support.daemon_support import runs, wait_until

    from ops.daemon.jobspec import load_jobs
    from ops.daemon.scheduler import Daemon

    settings_a, settings_b, state = switched_world
    rebind.ensure(ops_db.analytics(settings_a), state)
    assert backend.stored(state) == backend.current(ops_db.analytics(settings_a))   # left describing A
    spec = {s.id: s for s in load_jobs(settings_b)}["rollups"]
    assert (spec.interval_s or 0) >= 3600 or spec.cron
    before = int((runs(state, "rollups").status == "ok").sum())
    d = Daemon(settings_b, {spec.id: spec}, state_engine=state, poll_s=0.2, shutdown_grace_s=10)
    thread = threading.Thread(target=d.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: int((runs(state, "rollups").status == "ok").sum()) > before, 60,
                   what="the rollups run after the switch")
        time.sleep(0.2)
    finally:
        d.stop("test over")
        thread.join(15)
    assert backend.stored(state) == backend.current(ops_db.analytics(settings_b))
    wm = rollups.watermark(state, TZ)
    assert wm is not None
    with state.connect() as c:
        gross = c.execute(sa.text("SELECT sum(gross) FROM opsbench.rollup_revenue_daily WHERE tz = :tz"),
                          {"tz": TZ}).scalar_one()
    raw = queries.revenue.daily.raw(ops_db.analytics(settings_b), start=wm.complete_from, end=wm.refreshed_through,
                                    tz=TZ)
    assert float(gross) == pytest.approx(float(raw["gross"].sum()))
