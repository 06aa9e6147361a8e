"""Scheduled reports: figures against the query modules, windows, Telegram HTML validity and limits, the CLI."""

from __future__ import annotations

import dataclasses
import html
import datetime as dt
import math
import re
import uuid

import pandas as pd
import pytest
from support.botapi import parse_html, utf16_len
from support.recompute import errors_daily, read_table, revenue_daily
from support.fixtures import db  # noqa: F401 - the shared module fixture

import queries
from ops.alerting import manager as alerts
from ops.alerting.telegram import html as messages
from ops.contract import Finding, JobResult, Severity
from ops.core.settings import load_settings
from ops.reports import figures as report
from ops.reports import message as report_message
from ops.core.clock import utc_now

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

TZ = "Europe/Istanbul"
ALLOWED = {"b", "i", "u", "s", "code", "pre", "a"}
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def settings(db, pg_home):
    from conftest import settings_for

    return settings_for(pg_home, db.url, REPORT_TZ=TZ, ENVIRONMENT="staging")


@pytest.fixture(scope="module")
def day(db) -> dt.date:
    """The last whole local day of the demo data (the data stops at the manifest's anchor)."""
    anchor = pd.Timestamp(db.manifest["anchor"]).tz_convert(TZ)
    return anchor.date() - dt.timedelta(days=2)


@pytest.fixture(scope="module")
def daily(db, settings, day) -> report.Report:
    return report.build(db.analytics, settings, "daily", window=report.Window(day, day, TZ), state=db.writer)


@pytest.fixture(scope="module")
def weekly(db, settings, day) -> report.Report:
    return report.build(db.analytics, settings, "weekly", window=report.window_for("weekly", day - dt.timedelta(days=7), TZ),
                        state=db.writer)


def close(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def q(fn, conn, **kw) -> dict:
    df = fn(conn, **kw)
    return df.iloc[0].to_dict()


# -- figures ---------------------------------------------------------------------------

def test_daily_figures_equal_the_query_modules(db, daily, day):
    d1 = {"start": day, "end": day, "tz": TZ}
    prev = {"start": day - dt.timedelta(days=7), "end": day - dt.timedelta(days=1), "tz": TZ}
    same = {"start": day - dt.timedelta(days=7), "end": day - dt.timedelta(days=7), "tz": TZ}
    f = daily.figures
    with db.analytics.connect() as conn:
        rev, act, err = q(queries.revenue.daily, conn, **d1), q(queries.activity.daily, conn, **d1), \
            q(queries.errors.daily, conn, **d1)
        dur = q(queries.errors.durations, conn, **d1)
        rev7, act7 = queries.revenue.daily(conn, **prev), queries.activity.daily(conn, **prev)
        err7, dur7 = queries.errors.daily(conn, **prev), queries.errors.durations(conn, **prev)
        rev_lw, act_lw, err_lw = q(queries.revenue.daily, conn, **same), q(queries.activity.daily, conn, **same), \
            q(queries.errors.daily, conn, **same)
        summary = q(queries.activity.summary, conn, **d1)

    for key in ("gross", "refunds", "net", "purchases", "paying_users", "arppu"):
        assert close(f[key].value, rev[key]), key
        assert close(f[key].base["last_week"], rev_lw[key]), key
    for key in ("gross", "refunds", "net", "purchases", "paying_users"):
        assert close(f[key].base["avg7"], rev7[key].mean()), key
    assert close(f["arppu"].base["avg7"], rev7["gross"].sum() / rev7["paying_users"].sum())
    for key in ("dau", "wau", "mau", "stickiness", "new_users"):
        assert close(f[key].value, act[key]), key
        assert close(f[key].base["avg7"], act7[key].mean()), key
        assert close(f[key].base["last_week"], act_lw[key]), key
    # the daily row and the one-day summary agree on the end day (two query functions, one truth)
    assert (f["dau"].value, f["wau"].value, f["mau"].value) == (summary["dau"], summary["wau"], summary["mau"])
    for key in ("jobs", "failed", "error_rate"):
        assert close(f[key].value, err[key]), key
        assert close(f[key].base["last_week"], err_lw[key]), key
    assert close(f["jobs"].base["avg7"], err7["jobs"].mean())
    assert close(f["error_rate"].base["avg7"], err7["failed"].sum() / err7["jobs"].sum())
    assert close(daily.error_interval[0], err["wilson_low"]) and close(daily.error_interval[1], err["wilson_high"])
    assert close(f["p95_seconds"].value, dur["p95_seconds"])
    assert close(f["p95_seconds"].base["avg7"], dur7["p95_seconds"].mean())
    assert f["jobs"].value > 0 and f["gross"].value > 0   # a real day, not an empty one


def test_daily_figures_match_an_independent_recomputation(db, daily, day):
    purchases, jobs = read_table(db.writer, "purchases"), read_table(db.writer, "video_jobs")
    rev = revenue_daily(purchases, day, day, TZ).iloc[0]
    err = errors_daily(jobs, day, day, TZ).iloc[0]
    for key in ("gross", "refunds", "net", "purchases", "paying_users"):
        assert daily.figures[key].value == pytest.approx(float(rev[key])), key
    assert daily.figures["jobs"].value == err["jobs"] and daily.figures["failed"].value == err["failed"]
    assert daily.error_interval[0] == pytest.approx(err["wilson_low"])


def test_weekly_figures_equal_the_query_modules(db, weekly):
    w = weekly.window
    assert w.start.weekday() == 0 and w.days == 7
    f = weekly.figures
    with db.analytics.connect() as conn:
        for window, key in ((w, None), (w.shift(-7), "prev_week")):
            args = {"start": window.start, "end": window.end, "tz": TZ}
            rev = q(queries.revenue.summary, conn, **args)
            act = q(queries.activity.summary, conn, **args)
            since, until = window.bounds()
            err = q(queries.errors.window, conn, since=since, until=until)
            days = queries.activity.daily(conn, **args)
            dur = queries.errors.durations(conn, **args)

            def got(k):
                return f[k].value if key is None else f[k].base[key]

            for k in ("gross", "refunds", "net", "purchases", "paying_users", "arppu"):
                assert close(got(k), rev[k]), k
            assert close(got("wau"), act["active_users"]) and close(got("mau"), act["mau"])
            assert close(got("new_users"), act["new_users"])
            assert close(got("dau"), days["dau"].mean()) and close(got("stickiness"), days["stickiness"].mean())
            for k in ("jobs", "failed", "error_rate"):
                assert close(got(k), err[k]), k
            assert close(got("p95_seconds"), dur["p95_seconds"].max())
            if key is None:
                assert close(weekly.error_interval[0], err["wilson_low"])
    # the week is cut at local midnights in the report zone
    since, until = w.bounds()
    assert since.astimezone(dt.timezone.utc).hour == 21  # Istanbul is UTC+3


def test_default_windows_follow_the_report_zone():
    s = load_settings(REPORT_TZ=TZ, DATABASE_URL="postgresql://u@127.0.0.1:1/x")
    # 22:30 UTC on Sunday 2026-03-08 is already Monday 01:30 in Istanbul
    now = dt.datetime(2026, 3, 8, 22, 30, tzinfo=UTC)
    assert report.default_window("daily", s, now) == report.Window(dt.date(2026, 3, 8), dt.date(2026, 3, 8), TZ)
    assert report.default_window("weekly", s, now) == report.Window(dt.date(2026, 3, 2), dt.date(2026, 3, 8), TZ)
    # on a Wednesday the last whole week is the one before
    wed = dt.datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    assert report.default_window("weekly", s, wed) == report.Window(dt.date(2026, 3, 2), dt.date(2026, 3, 8), TZ)
    assert report.window_for("weekly", dt.date(2026, 3, 4), TZ) == report.Window(dt.date(2026, 3, 2),
                                                                                  dt.date(2026, 3, 8), TZ)
    bases = report.baselines("daily", report.Window(dt.date(2026, 3, 8), dt.date(2026, 3, 8), TZ))
    assert [(b.key, b.window.start, b.window.end) for b in bases] == [
        ("avg7", dt.date(2026, 3, 1), dt.date(2026, 3, 7)), ("last_week", dt.date(2026, 3, 1), dt.date(2026, 3, 1))]


def test_a_window_holds_its_zone_as_a_zoneinfo_from_the_settings():
    from zoneinfo import ZoneInfo

    s = load_settings(REPORT_TZ=TZ, DATABASE_URL="postgresql://u@127.0.0.1:1/x")
    w = report.default_window("daily", s, dt.datetime(2026, 3, 8, 22, 30, tzinfo=UTC))
    assert isinstance(w.tz, ZoneInfo) and w.tz is s.tz
    assert report.Window(w.start, w.end, TZ).tz is ZoneInfo(TZ)            # a name is parsed once, here
    with pytest.raises(ValueError, match="IANA"):
        report.Window(w.start, w.end, "Europe/Atlantis")                   # a misspelt zone fails at the window


def test_changes_are_relative_or_points():
    fig = report.Figure("gross", "gross", "money", 110.0, {"a": 100.0, "z": 0.0, "n": None})
    assert fig.change("a") == pytest.approx(0.10) and report_message.fmt_change(fig, "a") == "▲ 10%"
    assert fig.change("z") is None and report_message.fmt_change(fig, "z") == "–"
    assert report_message.fmt_change(fig, "n") == "–"
    rate = report.Figure("error_rate", "error rate", "rate", 0.012, {"a": 0.02})
    assert report_message.fmt_change(rate, "a") == "▼ 0.8pp"


# -- state sections ----------------------------------------------------------------------

def test_state_sections_alerts_failed_runs_and_cleanup_volumes(db, settings, day):
    now = utc_now()
    daemon, probes = queries.load("state/daemon"), queries.load("state/probes")
    with db.writer.begin() as conn:
        for job, status, age_h in (("reconcile", "failed", 2), ("cleanup", "timeout", 5), ("old_one", "failed", 30)):
            run_id = str(uuid.uuid4())
            start = now - dt.timedelta(hours=age_h)
            daemon.insert_run.execute(conn, run_id=run_id, job=job, trigger="schedule", started_at=start,
                                      leader="test")
            daemon.finish_run.execute(conn, run_id=run_id, status=status, finished_at=start + dt.timedelta(seconds=3),
                                      duration_s=3.0, summary=f"{job} <went> wrong & badly", error="boom")
        for table, deleted, dry in (("rate_limit_log", 700, False), ("rate_limit_log", 50, False),
                                    ("idempotency_keys", 12, False), ("error_log", 999, True)):
            probes.insert_cleanup_run.execute(
                conn, at=now - dt.timedelta(hours=3), job_id="cleanup", run_id=str(uuid.uuid4()), table_name=table,
                cutoff=now - dt.timedelta(days=7), candidates=deleted, table_rows=10_000, deleted=0 if dry else deleted,
                batches=1, dry_run=dry, outcome="dry_run" if dry else "done", note="")
    finding = Finding("health_check_failing", Severity.critical, "backend <unhealthy> & slow",
                      labels={"probe": "back_end*"})
    alerts.record_result(db.writer, "health_probe", JobResult(findings=[finding]), now - dt.timedelta(minutes=5),
                         settings)

    rep = report.build(db.analytics, settings, "daily", window=report.Window(day, day, TZ), state=db.writer, now=now)
    assert [a.key for a in rep.alerts] == ["health_check_failing{probe=back_end*}"]
    assert rep.failed_run_total == 2 and {r.job for r in rep.failed_runs} == {"reconcile", "cleanup"}
    assert {v.table: v.deleted for v in rep.cleanup} == {"rate_limit_log": 750, "idempotency_keys": 12}

    text = report_message.telegram_message(rep)
    visible = parse_html(text)
    assert "health_check_failing{probe=back_end*} backend <unhealthy> & slow" in visible
    assert "Failed job runs (24 h): 2" in visible and "reconcile failed at" in visible
    assert "rate_limit_log 750" in visible and "idempotency_keys 12" in visible and "error_log" not in visible


def test_a_state_store_that_cannot_be_read_leaves_a_note(db, settings, day):
    import sqlalchemy as sa

    broken = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/nothing",
                              connect_args={"connect_timeout": 2})
    rep = report.build(db.analytics, settings, "daily", window=report.Window(day, day, TZ), state=broken)
    assert rep.alerts is None and rep.failed_runs is None and rep.cleanup is None
    text = report_message.telegram_message(rep)
    assert "state store not readable" in parse_html(text) and rep.figures["gross"].value > 0


# -- the Telegram message -----------------------------------------------------------------

def _tags(text: str) -> set[str]:
    return {m.group(1).lower() for m in re.finditer(r"</?([a-zA-Z][a-zA-Z0-9-]*)", text)}


@pytest.mark.parametrize("kind", ["daily", "weekly"])
def test_message_is_valid_telegram_html_that_states_window_zone_and_time(request, kind):
    rep = request.getfixturevalue(kind)
    text = report_message.telegram_message(rep)
    visible = parse_html(text)          # the fake Bot API's strict parser: balanced, known tags, entities
    assert _tags(text) <= ALLOWED
    assert utf16_len(text) <= messages.MESSAGE_LIMIT
    w = rep.window
    assert f"Data: {w.start:%a %d %b}" in visible and TZ in visible
    made = rep.local_generated_at().strftime("%Y-%m-%d %H:%M")
    assert f"Generated {made} {TZ}" in visible and "staging" in visible
    gross = rep.figures["gross"]
    assert report_message.fmt_value(gross) in visible
    for b in rep.baselines:
        assert b.window.describe() in visible
    if kind == "weekly":
        assert "vs prev" in visible and "avg DAU" in visible
    else:
        assert "vs avg" in visible and f"vs {w.end - dt.timedelta(days=7):%a}" in visible


def test_hostile_and_huge_state_stays_valid_and_within_limits(daily):
    rep = dataclasses.replace(daily)
    evil = "<script>alert('x')</script> & <b>bold</b> _under_ *star* `tick` &amp; &#x1F600;"
    rep.alerts = [report.AlertLine(f"rule_{i}{{path=/v1/<{i}>&x}}", "critical", evil * 3, None) for i in range(300)]
    rep.failed_runs = [report.RunLine(f"job<{i}>", "failed", utc_now(), evil) for i in range(50)]
    rep.failed_run_total = 50
    rep.failure_codes = [report.CodeCount("<ERR&1>", 5, 0.5)]
    rep.notes = [evil]
    text = report_message.telegram_message(rep)
    parse_html(text)
    assert _tags(text) <= ALLOWED
    assert "… and 294 more" in text and "… and 45 more" in text
    for cap in (report_message.chart_caption(rep, "error_rate"),
                report_message.charts_document_caption(rep, ["revenue", "dau", "error_rate"], evil)):
        parse_html(cap)
        assert utf16_len(cap) <= messages.CAPTION_LIMIT
    # whatever the length, the outbox's splitter cuts it into parts Telegram accepts
    parts = messages.split_html(text * 3)
    assert len(parts) > 1
    for part in parts:
        parse_html(part)
        assert utf16_len(part) <= messages.MESSAGE_LIMIT


# -- the CLI -----------------------------------------------------------------------------------

def test_report_cli_previews_and_writes_html(db, day, tmp_path, monkeypatch, capsys):
    from ops.cli import main

    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("OPSBENCH_STATE_URL", db.url)
    monkeypatch.setenv("REPORT_TZ", TZ)
    out = tmp_path / "r" / "daily.html"
    assert main(["report", "daily", "--date", day.isoformat(), "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"Daily digest · {day:%a %d %b %Y}" in shown and "preview only" in shown
    page = out.read_text(encoding="utf-8")
    # interactive and offline: plotly.js inlined exactly once, no script loaded from elsewhere
    assert "Plotly.newPlot" in page and page.count("plotly.js v") == 1 and "<script src" not in page
    assert f"Data window: {day.isoformat()} 00:00" in page and TZ in page and "generated" in page
    assert 'id="chart-revenue"' in page and 'id="chart-error_rate"' in page


@pytest.mark.parametrize("argv, words", [
    (["report", "daily", "--date", "2026-02-30"], "--date: expected a date"),
    (["report", "daily", "--date", "2999-01-01"], "is not over yet"),
    (["report", "daily", "--send"], "TELEGRAM_BOT_TOKEN is not set"),
    (["report", "monthly"], "monthly"),
])
def test_report_cli_bad_input_is_one_line_exit_2(db, monkeypatch, capsys, argv, words):
    from ops.cli import main

    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("OPSBENCH_STATE_URL", db.url)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]


# -- code lists and reconciliation against the raw rows and the manifest ---------------

def _top(counts: pd.Series, limit: int) -> list[tuple[str | None, int]]:
    """(code, count) most frequent first, ties by code (NULL last) - the report's order."""
    df = counts.rename("n").reset_index()
    df.columns = ["code", "n"]
    df["nulls_last"] = df["code"].isna()
    df = df.sort_values(["n", "nulls_last", "code"], ascending=[False, True, True]).head(limit)
    return [(None if pd.isna(c) else str(c), int(n)) for c, n in zip(df["code"], df["n"])]


@pytest.mark.parametrize("kind", ["daily", "weekly"])
def test_code_lists_and_reconciliation_equal_the_raw_rows_and_manifest(db, daily, weekly, kind):
    from support.recompute import local_day

    rep = daily if kind == "daily" else weekly
    jobs = read_table(db.analytics, "video_jobs")
    jobs = jobs[(jobs["status"] == "failed")
                & local_day(jobs["created_at"], TZ).between(rep.window.start, rep.window.end)]
    expected_jobs = _top(jobs["error_code"].value_counts(dropna=False), report.TOP_CODES)
    assert [(c.code, c.count) for c in rep.failure_codes] == expected_jobs
    assert expected_jobs  # the demo has failures every day, so the list is not vacuous
    log = read_table(db.analytics, "error_log")
    log = log[local_day(log["created_at"], TZ).between(rep.window.start, rep.window.end)]
    assert [(c.code, c.count) for c in rep.api_error_codes] == _top(log["error_code"].value_counts(dropna=False),
                                                                    report.TOP_CODES)
    # the ledger checks look at the whole database: the generator's planted counts
    # (reconciliation.summary: the checks that need no settings, not negative_model_margin: provider costs)
    assert {c.check: c.offending for c in rep.reconciliation} == \
        {c: n for c, n in db.manifest["checks"].items() if c != "negative_model_margin"}


def test_the_digest_reads_reconciliation_from_the_nights_job_not_the_ledger(db, settings, day):
    """The reconcile job already read the whole ledger that night: a report takes its counts (and says when)."""
    from ops.daemon.jobspec import JobSpec
    from ops.daemon.runner import Runner

    spec = JobSpec(id="reconcile", callable="jobs.reconcile:reconcile", timezone=TZ, interval_s=86400, timeout_s=120)
    record = Runner(settings, {"reconcile": spec}, state_engine=db.writer, identity="test").run("reconcile")
    assert record.status == "ok"
    rep = report.build(db.analytics, settings, "daily", window=report.Window(day, day, TZ), state=db.writer)
    assert {c.check: c.offending for c in rep.reconciliation} == db.manifest["checks"]
    assert any(n.startswith("reconciliation from the reconcile job at ") for n in rep.notes)
    # what the report shows is the job's stored result, not a recomputation over the ledger
    with db.writer.begin() as conn:
        conn.exec_driver_sql("UPDATE opsbench.job_runs SET metrics = metrics || '{\"reconcile_negative_balances\": 99}' "
                             "WHERE run_id = %(id)s", {"id": record.run_id})
    try:
        rep = report.build(db.analytics, settings, "daily", window=report.Window(day, day, TZ), state=db.writer)
        assert {c.check: c.offending for c in rep.reconciliation}["negative_balances"] == 99
        # with no run in the last 36 hours it recomputes, and says nothing about a job
        later = record.finished_at + dt.timedelta(days=3)
        rep = report.build(db.analytics, settings, "daily", window=report.Window(day, day, TZ), state=db.writer,
                           now=later)
        # (reconciliation.summary: the checks that need no settings, not negative_model_margin: provider costs)
        assert {c.check: c.offending for c in rep.reconciliation} == \
            {c: n for c, n in db.manifest["checks"].items() if c != "negative_model_margin"}
        assert not any(n.startswith("reconciliation from the reconcile job") for n in rep.notes)
    finally:
        with db.writer.begin() as conn:
            conn.exec_driver_sql("DELETE FROM opsbench.job_runs WHERE run_id = %(id)s", {"id": record.run_id})


# -- the digest, phone first ----------------------------------------------------------------

def _alert(key: str, severity: str, summary: str) -> report.AlertLine:
    return report.AlertLine(key, severity, summary, None)


def _visible_lines(text: str) -> list[str]:
    return parse_html(text).splitlines()


def test_the_first_lines_say_what_needs_the_founder(daily):
    rep = dataclasses.replace(daily, alerts=[
        _alert("stuck_jobs", "warning", "6 video jobs stuck"),
        _alert("negative_balance", "critical", "1 user with a negative balance"),
        _alert("reconcile_negative_balances{check=negative_balances}", "critical", "reconciliation negative rows"),
        _alert("health_check_failing{probe=backend}", "critical", "backend unhealthy"),
        _alert("admin_actions_review", "info", "1 admin action this week"),
    ])
    lines = _visible_lines(report_message.telegram_message(rep))
    # title, then the verdict: two faults are critical (negative balance counted once), one warning
    assert "Needs you: 2 critical, 1 warning" in lines[1]
    top = lines[2:5]
    assert [line.lstrip("• ") for line in top] == ["1 user with a negative balance", "backend unhealthy",
                                                    "6 video jobs stuck"]
    text = "\n".join(lines)
    assert "Alerts: 4 open (2 critical, 1 warning, 1 note)" in text  # the echo counted once, the info as a note
    assert "negative_balance 1 user with a negative balance (also seen by reconciliation)" in text
    assert "reconciliation negative rows" not in text
    notes = text.split("Notes (1)")[1]
    assert "1 admin action this week" in notes and "1 admin action this week" not in text.split("Notes (1)")[0]


def test_all_clear_when_only_info_notes(daily):
    passing = [report.CheckResult(c.check, 0) for c in daily.reconciliation]
    rep = dataclasses.replace(daily, alerts=[_alert("admin_actions_review", "info", "weekly review")],
                              reconciliation=passing)
    lines = _visible_lines(report_message.telegram_message(rep))
    assert "All clear" in lines[1]
    assert "Alerts: 1 open (1 note)" in "\n".join(lines)


def test_failing_checks_without_an_alert_are_not_all_clear(daily, db):
    """No daemon recorded the night's checks (a report from the CLI): the failing ones still need the founder."""
    rep = dataclasses.replace(daily, alerts=[])
    lines = _visible_lines(report_message.telegram_message(rep))
    failing = sum(1 for n in db.manifest["checks"].values() if n)
    assert "All clear" not in "\n".join(lines)
    assert f"Needs you: {failing} reconciliation checks failing" in lines[1]
    assert lines[2].startswith("• reconciliation ")


LONG = ("backend unhealthy: HTTP 503, expected 200; status is 'unhealthy', expected 'healthy'; checks failing: "
        "database, storage, queue; last healthy answer eleven minutes ago from the primary region")


def test_digest_lines_are_cut_between_words_and_say_the_key_once(daily):
    """On a phone: every shortened text ends on a whole word of the original, and an alert line names the key's
    words once (the check's summary starts by naming the check again)."""
    recon_key = "reconcile_iap_refund_mismatch{check=iap_refund_mismatch}"
    recon_summary = ("reconciliation iap_refund_mismatch: 3 row(s) - App Store refunds without an iap_refund debit "
                     "of the credited amount, and refunds debited twice")
    rep = dataclasses.replace(daily, alerts=[
        _alert("health_check_failing{probe=backend}", "critical", LONG),
        _alert(recon_key, "critical", recon_summary),
    ])
    lines = _visible_lines(report_message.telegram_message(rep))
    originals = [LONG, recon_summary, recon_summary.split(": ", 1)[1]]
    cut = [ln for ln in lines if "…" in ln and not ln.startswith("…")]
    assert cut, "nothing was shortened: the test's texts are too short"
    for ln in cut:
        before = ln.split("…", 1)[0]
        # the longest tail of the visible text that starts one of the originals is a whole-word prefix of it
        found = False
        for orig in originals:
            for i in range(len(before)):
                piece = before[i:]
                if len(piece) > 15 and orig.startswith(piece):
                    rest = orig[len(piece):]
                    assert rest[:1] in (" ", ",", ";", ":", "") or piece[-1:] in " ,;:", (ln, rest[:10])
                    found = True
                    break
            if found:
                break
        assert found, ln
    alert = next(ln for ln in lines if "reconcile_iap_refund_mismatch" in ln)
    assert "reconcile_iap_refund_mismatch 3 row(s) - App Store refunds" in alert, alert
    assert alert.count("iap_refund_mismatch") == 1 and "{check=" not in alert
    assert "reconciliation iap_refund_mismatch" not in alert
    # a key whose labels add something keeps them
    assert any("health_check_failing{probe=backend} backend unhealthy" in ln for ln in lines)


def test_digest_reconciliation_is_a_verdict_and_the_largest_checks(daily, db):
    """Not a comma list of every check: the count, the rows, the three checks with most rows, then how many more."""
    lines = _visible_lines(report_message.telegram_message(dataclasses.replace(daily, alerts=[])))
    failing = {c: n for c, n in db.manifest["checks"].items() if n}
    at = next(i for i, ln in enumerate(lines) if ln.startswith("🧾 Reconciliation"))
    # the checks that judge the ledger: negative_model_margin needs the founder's costs file, not set here
    judged = [c for c in db.manifest["checks"] if c != "negative_model_margin"]
    assert lines[at] == (f"🧾 Reconciliation: ⚠️ {len(failing)} of {len(judged)} checks failing, "
                         f"{sum(failing.values())} rows")
    top = sorted(failing.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert lines[at + 1: at + 4] == [f"• {c} {n}" for c, n in top]
    assert lines[at + 4] == f"… and {len(failing) - 3} more (opsbench checks run)"
    assert all(len(ln) <= 100 for ln in lines[at: at + 5])


def _fig(key: str, unit: str, value: float, before: float) -> report.Figure:
    return report.Figure(key, key, unit, value, {"avg7": before, "last_week": before})


@pytest.mark.parametrize("key, unit, value, before, mark", [
    ("refunds", "money", 200.0, 100.0, "🔴"),        # refunds up is bad
    ("refunds", "money", 50.0, 100.0, "🟢"),
    ("gross", "money", 200.0, 100.0, "🟢"),          # revenue up is good
    ("net", "money", 50.0, 100.0, "🔴"),
    ("error_rate", "rate", 0.01, 0.02, "🟢"),        # fewer failures: better
    ("p95_seconds", "seconds", 300.0, 200.0, "🔴"),
    ("dau", "count", 100.0, 100.0, "⚪"),            # no change: neither
])
def test_each_change_is_marked_better_or_worse_by_the_metrics_direction(key, unit, value, before, mark):
    fig = _fig(key, unit, value, before)
    assert report_message.change_mark(fig, "avg7") == mark


def _pre_rows(text: str) -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"<pre>(.*?)</pre>", text, re.S)]


def test_table_columns_never_touch_even_with_huge_changes(daily):
    figures = dict(daily.figures)
    figures["gross"] = _fig("gross", "money", 123_456_789.0, 1.0)        # ▲ 12345678800%
    figures["refunds"] = _fig("refunds", "money", 0.0, 5.0)
    figures["arppu"] = report.Figure("arppu", "ARPPU", "money", None, {})
    figures["error_rate"] = _fig("error_rate", "rate", 1.0, 0.0)          # ▲ 100.0pp
    figures["stickiness"] = _fig("stickiness", "ratio", 0.0, 1.0)        # ▼ 100.0pp
    rep = dataclasses.replace(daily, figures=figures)
    text = report_message.telegram_message(rep)
    marks = "🟢🔴⚪"
    for table in _pre_rows(html.unescape(text)):
        head, *rows = table
        assert len(rows) >= 4
        for row in rows:
            # label, value, then per baseline a mark+arrow (or –/=) and a size, every part apart
            cells = re.findall(rf"[{marks}]\S*(?: \S+)?", row)
            assert len(cells) == len(rep.baselines), row
            before_first = row[: row.index(cells[0])]
            assert before_first.endswith(" ") and before_first.strip(), row  # value and change apart
            for cell in cells[1:]:
                assert row[row.index(cell) - 1] == " ", row  # one change never pushes into the next
        # all change columns end together: right-aligned
        assert len({len(r) for r in rows}) == 1, rows
    assert "▲ 100.0pp" in text and "▼ 100.0pp" in text


def test_every_currency_of_the_day_is_mentioned_with_its_own_line(db, settings, day):
    import sqlalchemy as sa

    start = dt.datetime.combine(day, dt.time(12), tzinfo=pd.Timestamp.now(tz=TZ).tzinfo)
    with db.writer.connect() as c:
        user, product = c.execute(sa.text("SELECT user_id, product_id FROM purchases LIMIT 1")).one()
    rows = [("T-EUR-1", 7.50, "EUR"), ("T-EUR-2", 12.25, "EUR"), ("T-TRY-1", 199.99, "TRY")]
    with db.writer.begin() as c:
        for tid, price, cur in rows:
            c.execute(sa.text("INSERT INTO purchases (transaction_id, user_id, product_id, credits, price, currency, "
                              "environment, purchased_at) VALUES (:t, :u, :p, 10, :price, :cur, 'Production', :at)"),
                      {"t": tid, "u": user, "p": product, "price": price, "cur": cur, "at": start})
    try:
        rep = report.build(db.analytics, settings, "daily", window=report.Window(day, day, TZ), state=db.writer)
        text = parse_html(report_message.telegram_message(rep))
        revenue = text.split("Revenue (USD)")[1].split("Users")[0]
        assert "EUR gross 19.75, net 19.75, 2 purchases" in revenue  # 7.50 + 12.25, from the rows above
        assert "TRY gross 199.99, net 199.99, 1 purchases" in revenue
        assert revenue.index("TRY") < revenue.index("EUR")  # largest gross first
    finally:
        with db.writer.begin() as c:
            c.execute(sa.text("DELETE FROM purchases WHERE transaction_id LIKE 'T-EUR-%' OR transaction_id = 'T-TRY-1'"))
