"""The operations notebook on a state store filled by real job runs.

The module fixture runs the real jobs through the real runner (`ops.daemon.runner.Runner`
with a jobs file in the daemon's TOML format) against a copy of the seeded demo
database, on a clock that steps through 26 hours: reconciliation, cleanup in dry
run and for real, the PostgreSQL probe, an HTTP probe against a local server
whose `api` endpoint fails for two hours and then recovers, and a job that
raises. Then the notebook runs in a real kernel, and what it shows is checked
against pandas over the raw state tables (`pd.read_sql_table`), cut into local
hours of a +05:30 zone independently of the SQL, and against the generator's
manifest for the reconciliation counts.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import replace
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from support.clock import test_now
from support.http_targets import http_server

import queries
from ops.daemon.jobspec import load_jobs
from ops.daemon.runner import Runner
from ops.data.state import migrate
from ops.notebook import PLOTLY_MIMETYPE
from ops.workbench import notebooks as render

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

NOTEBOOK = render.NOTEBOOKS_DIR / "operations.ipynb"
TZ = "Asia/Kolkata"   # +05:30: local hours start at half past the UTC hour
FIGURES = {
    "Job runs per hour by outcome",
    "Job runs over time, failures marked",
    "Run time per job (p95 per hour, seconds)",
    "Probe uptime per hour",
    "Probe latency per hour: p50 (solid) and p95 (dotted), ms",
    "Alert history: firing episodes",
    "Cleanup volumes per run: rows deleted",
    "Reconciliation: offending rows per check, run by run",
}

# -- the state store, filled by real runs ---------------------------------------------

def _specs(settings, base: str, api_path: str) -> dict:
    """The shipped jobs file (jobs/jobs.toml) with two local HTTP targets and one job that always raises."""
    specs = {s.id: s for s in load_jobs(settings)}
    targets = [{"name": "api", "url": f"{base}/{api_path}", "all_true": ["checks"]},
               {"name": "web", "url": f"{base}/slow?ms=40"}]
    specs["http_probes"] = replace(specs["http_probes"], args={**specs["http_probes"].args, "targets": targets})
    # an unknown reconciliation check makes the job raise on every run
    specs["broken"] = replace(specs["reconcile"], id="broken", args={"checks": ["no_such_check"]})
    return specs


@pytest.fixture(scope="module")
def store(demo_db) -> dict:
    """Run the jobs hour by hour on a fake clock; return the window the notebook is asked for."""
    migrate(demo_db.writer)
    zone = ZoneInfo(TZ)
    now = test_now()
    base = now.replace(minute=0) - dt.timedelta(hours=26)
    start = base.astimezone(zone).date()
    end = now.astimezone(zone).date()
    before_window = dt.datetime.combine(start, dt.time(0), zone) - dt.timedelta(minutes=1)
    at = [base]
    hours = lambda h: base + dt.timedelta(hours=h)  # noqa: E731

    with http_server() as url:
        failing = _specs(demo_db.settings, url, "failing")
        healthy = _specs(demo_db.settings, url, "healthy")
        plan = [
            (before_window, failing, ["postgres_probe"], False),    # the local day before: outside the window
            (hours(0), failing, ["reconcile", "postgres_probe", "http_probes", "broken"], False),
            (hours(0), failing, ["cleanup"], True),                  # dry run: changes and records nothing
            (hours(1), failing, ["postgres_probe", "http_probes", "broken"], False),
            (hours(2), healthy, ["postgres_probe", "http_probes", "cleanup"], False),
            (hours(3), healthy, ["http_probes"], False),             # second good sample: api resolves
            (hours(25), healthy, ["postgres_probe", "http_probes", "reconcile", "cleanup"], False),
        ]
        for when, specs, jobs, dry in plan:
            at[0] = when
            runner = Runner(demo_db.settings, specs, state_engine=demo_db.writer, clock=lambda: at[0])
            for job in jobs:
                record = runner.run(job, trigger="manual", dry_run=dry)
                expected = "failed" if job == "broken" else "ok"
                assert record.status == expected, (job, record.summary, record.error)
    return {"start": start, "end": end, "tz": TZ}


def _table(engine, name: str) -> pd.DataFrame:
    return pd.read_sql_table(name, engine, schema="opsbench")


def _local_day(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.tz_convert(TZ).dt.date


def _local_hour(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.tz_convert(TZ).dt.tz_localize(None).dt.floor("h")


def _in_window(df: pd.DataFrame, column: str, window: dict) -> pd.DataFrame:
    day = _local_day(df[column])
    return df[(day >= window["start"]) & (day <= window["end"])]


@pytest.fixture(scope="module")
def raw(demo_db, store) -> dict:
    """The state tables as pandas sees them, restricted to the window by local day."""
    eng = demo_db.writer
    return {
        "runs": _in_window(_table(eng, "job_runs"), "started_at", store),
        "all_runs": _table(eng, "job_runs"),
        "samples": _in_window(_table(eng, "probe_samples"), "at", store),
        "events": _table(eng, "alert_events"),
        "cleanup": _in_window(_table(eng, "cleanup_runs"), "at", store),
        "reconcile": _in_window(_table(eng, "reconciliation_counts"), "at", store),
    }


def _execute(db, pg_home, params: dict):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", db.url)
        mp.setenv("OPSBENCH_STATE_URL", db.url)
        mp.setenv("OPSBENCH_HOME", str(pg_home))
        mp.setenv("REPORT_TZ", "UTC")
        return render.execute(NOTEBOOK, params, timeout=120)


@pytest.fixture(scope="module")
def executed(demo_db, store, pg_home):
    params = {"since": store["start"].isoformat(), "until": store["end"].isoformat(), "tz": TZ, "bucket": "hour"}
    return _execute(demo_db, pg_home, params)


# -- reading the executed notebook ------------------------------------------------------

def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _figures(nb) -> dict[str, dict]:
    figs = {}
    for out in _outputs(nb):
        fig = out.get("data", {}).get(PLOTLY_MIMETYPE)
        if fig:
            title = fig.get("layout", {}).get("title", {})
            figs[title.get("text", "") if isinstance(title, dict) else str(title)] = fig
    return figs


def _text(nb) -> str:
    """Everything a reader sees as text: printed lines and Markdown."""
    parts = []
    for out in _outputs(nb):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/markdown", ""))
    return "\n".join(parts)


def _values(arr) -> list:
    """Plotly JSON arrays may be plain lists or base64 typed arrays {'dtype', 'bdata'}."""
    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"])).tolist()
    return list(arr)


def _trace(fig: dict, name: str) -> dict:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert found, f"no trace {name!r}: {[t.get('name') for t in fig['data']]}"
    return found[0]


def _series(trace: dict) -> dict[pd.Timestamp, float]:
    return {pd.Timestamp(x): y for x, y in zip(_values(trace["x"]), _values(trace["y"]))}


# -- the tests ----------------------------------------------------------------------------

def test_notebook_draws_every_figure_without_errors(executed):
    errors = [o for o in _outputs(executed) if o.output_type == "error"]
    assert errors == []
    figs = _figures(executed)
    assert set(figs) == FIGURES
    assert all(f["data"] for f in figs.values()), "a figure without traces"
    assert "OPSBENCH_STATE_URL (read-only session)" in _text(executed)


def test_headline_counts_match_the_state_tables(executed, raw):
    runs = raw["runs"]
    assert len(runs) < len(raw["all_runs"])  # the run of the day before is outside the window
    failed = int((runs["status"] == "failed").sum())
    assert failed == 2
    text = _text(executed)
    assert re.search(r"\*\*(\d+) job runs\*\*", text).group(1) == str(len(runs))
    assert re.search(r"\*\*(\d+) failed\*\*", text).group(1) == str(failed)
    assert f"{len(raw['samples'])} probe samples" in text


def test_runs_per_local_hour_by_outcome(executed, raw):
    fig = _figures(executed)["Job runs per hour by outcome"]
    runs = raw["runs"].assign(hour=_local_hour(raw["runs"]["started_at"]))
    for status in ("ok", "failed"):
        expected = runs[runs["status"] == status].groupby("hour").size().to_dict()
        got = {k: v for k, v in _series(_trace(fig, status)).items() if v}
        assert got == expected, status
    # the local hours start at half past the UTC hour
    assert {ts.minute for ts in _series(_trace(fig, "ok"))} == {0}
    assert all(ts.tzinfo is None for ts in _series(_trace(fig, "ok")))


def test_failures_are_marked_at_their_local_start(executed, raw):
    fig = _figures(executed)["Job runs over time, failures marked"]
    failed = raw["runs"][raw["runs"]["status"] == "failed"]
    marks = _trace(fig, "failed")
    local = pd.to_datetime(failed["started_at"], utc=True).dt.tz_convert(TZ).dt.tz_localize(None)
    assert sorted(pd.Timestamp(x) for x in _values(marks["x"])) == sorted(local)
    assert set(_values(marks["y"])) == {"broken"}


def test_probe_uptime_per_local_hour(executed, raw):
    fig = _figures(executed)["Probe uptime per hour"]
    samples = raw["samples"].assign(hour=_local_hour(raw["samples"]["at"]))
    for kind, probe in (("http", "api"), ("http", "web"), ("postgres", "backend")):
        mine = samples[(samples["kind"] == kind) & (samples["probe"] == probe)]
        expected = mine.groupby("hour")["ok"].mean().to_dict()
        assert _series(_trace(fig, f"{kind}: {probe}")) == pytest.approx(expected)
    api = samples[samples["probe"] == "api"]
    assert 0 < api["ok"].mean() < 1  # failing for two hours, then healthy


def _named(key: str) -> str:
    """An alert as the chart names it: without the labels whose value its rule's name already says
    (`reconcile_x{check=x}` -> `reconcile_x`), the others kept (`health_check_failing{probe=api}`)."""
    rule, _, labels = key.partition("{")
    kept = [p for p in labels.rstrip("}").split(",") if p and p.split("=", 1)[1] not in rule]
    return rule + ("{" + ",".join(kept) + "}" if kept else "")


def test_alert_episodes_match_the_event_history(executed, raw):
    fig = _figures(executed)["Alert history: firing episodes"]
    events = raw["events"].sort_values(["at", "id"])
    episodes = []
    for key, e in events.groupby("key"):
        for _, fired in e[e["kind"] == "firing"].iterrows():
            later = e[(e["kind"] == "resolved") & (e["at"] > fired["at"])]
            episodes.append((key, fired["at"], later["at"].iloc[0] if len(later) else None))
    shown = [k for t in fig["data"] if t.get("type") == "bar" for k in _values(t["y"])]
    assert sorted(shown) == sorted(_named(k) for k, _, _ in episodes)
    # each bar's name written above it (long keys beside the axis left no room for the bars on a phone)
    assert sorted(a["text"] for a in fig["layout"]["annotations"]) == sorted({_named(k) for k, _, _ in episodes})
    api = [(f, r) for k, f, r in episodes if k == "health_check_failing{probe=api}"]
    assert len(api) == 1 and api[0][1] is not None     # fired while failing, resolved after two good runs
    minutes = (api[0][1] - api[0][0]).total_seconds() / 60
    assert 179 <= minutes <= 182
    assert f"**{len(episodes)} alert episodes**" in _text(executed)


def test_cleanup_volumes_per_run(executed, raw):
    fig = _figures(executed)["Cleanup volumes per run: rows deleted"]
    cleanup = raw["cleanup"]
    assert not cleanup["dry_run"].any()      # the dry run recorded nothing
    assert cleanup["run_id"].nunique() == 2 and cleanup["deleted"].sum() > 0
    assert all(t["name"].endswith(" deleted") for t in fig["data"])
    per_table = {t["name"].removesuffix(" deleted"): sum(_values(t["y"])) for t in fig["data"]}
    assert per_table == cleanup.groupby("table_name")["deleted"].sum().to_dict()
    assert f"**{int(cleanup['deleted'].sum()):,} rows deleted** in 2 runs" in _text(executed)


def test_reconciliation_trend_ends_at_the_planted_counts(executed, demo_db):
    fig = _figures(executed)["Reconciliation: offending rows per check, run by run"]
    last = {t["name"]: _values(t["y"])[-1] for t in fig["data"]}
    assert last == demo_db.manifest["checks"]
    assert all(len(_values(t["y"])) == 2 for t in fig["data"])   # two reconciliation runs in the window


def test_daily_counts_are_cut_in_the_report_zone(demo_db, store, raw):
    """The `day` bucket of the query against pandas' own local days."""
    got = queries.load("state/operations").job_runs(demo_db.writer, **store, bucket="day")
    got = got.assign(day=pd.to_datetime(got["period"]).dt.date).groupby("day")["runs"].sum().to_dict()
    expected = raw["runs"].groupby(_local_day(raw["runs"]["started_at"])).size().to_dict()
    assert got == expected and len(expected) >= 2   # 26 hours of runs: two local days, three at some hours


def test_state_helper_is_read_only(monkeypatch, demo_db, store):
    import ops.notebook as nb

    monkeypatch.setenv("DATABASE_URL", demo_db.url)
    monkeypatch.setenv("OPSBENCH_STATE_URL", demo_db.url)
    monkeypatch.setattr(nb, "_settings", None)
    with nb.state().connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM opsbench.job_runs").scalar() > 0
        with pytest.raises(sa.exc.DBAPIError, match="read-only"):
            conn.exec_driver_sql("DELETE FROM opsbench.job_runs")


def test_empty_state_store_says_no_runs_yet(empty_db, pg_home):
    migrate(empty_db.writer)   # tables there, no rows: a daemon that never ran a job
    nb = _execute(empty_db, pg_home, {"days": 3, "tz": TZ})
    assert [o for o in _outputs(nb) if o.output_type == "error"] == []
    assert _figures(nb) == {}
    assert "**No runs yet.**" in _text(nb)


def test_a_shared_end_day_does_not_empty_the_live_window(demo_db, store, pg_home):
    """`opsbench notebooks render -p end=<a closed day>` is for the business notebooks; the operations
    window keeps its own default (it ends today), so its charts still show the runs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", demo_db.url)
        mp.setenv("OPSBENCH_STATE_URL", demo_db.url)
        mp.setenv("OPSBENCH_HOME", str(pg_home))
        mp.setenv("REPORT_TZ", TZ)
        nb = render.execute(NOTEBOOK, {"end": "2020-01-31", "start": "2020-01-01", "days": 7}, timeout=120,
                            ignore_unknown=True)
    assert "No runs yet" not in _text(nb) and "2020-01" not in _text(nb)
    assert _figures(nb), "the live window drew nothing"
