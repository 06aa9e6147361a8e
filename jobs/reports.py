"""Scheduled reports: the daily digest and the weekly report.

A report job gathers the figures (`ops.reports.figures`), writes the Telegram text
(`ops.reports.message`) and the charts (`ops.reports.charts`), and puts them in the
outbox in one transaction: text first, then the charts as one silent album of
PNG photos (a Telegram media group), or one small HTML document when there is
no browser. It never talks to Telegram; the
outbox drain delivers, retries and keeps the order.

The text is queued even when every chart fails: charts are extras.

args (all optional):
  date     "YYYY-MM-DD": report this day / the week containing it (default:
           yesterday / last week in REPORT_TZ, see `ops.reports.figures.default_window`)
  charts   false to send the text only
  png      false to send the charts as HTML even when a browser is present
"""

from __future__ import annotations

from typing import Any

from jobs import args as read
from ops.contract import JobContext, JobResult
from ops.core.redact import redact
from ops.reports import charts as chart_maker
from ops.reports import figures as report
from ops.reports import message as report_message
from ops.reports import queue as report_queue


def daily_digest(ctx: JobContext) -> JobResult:
    return run_report(ctx, "daily")


def weekly_report(ctx: JobContext) -> JobResult:
    return run_report(ctx, "weekly")


def report_args(args: dict[str, Any]) -> dict[str, Any]:
    """The report's arguments with defaults, checked. Raises JobArgError naming the key."""
    read.known_keys(args, {"date", "charts", "png"})
    raw = args.get("date")
    return {"date": None if raw in (None, "") else read.day(raw, "args.date"),
            "charts": read.flag(args.get("charts", True), "args.charts"),
            "png": read.flag(args.get("png", True), "args.png")}


def validate_args(args: dict[str, Any]) -> None:
    report_args(args)


def _window(ctx: JobContext, kind: str, day) -> report.Window | None:
    if day is None:
        return None
    return report.window_for(kind, day, ctx.settings.tz)


def run_report(ctx: JobContext, kind: str) -> JobResult:
    a = report_args(ctx.args)
    now = ctx.now()
    rep = report.build(ctx.analytics, ctx.settings, kind, window=_window(ctx, kind, a["date"]), state=ctx.state,
                       now=now)
    text = report_message.telegram_message(rep)
    chart_set = chart_maker.ChartSet()
    if a["charts"]:
        try:
            chart_set = chart_maker.attachments(rep, allow_png=a["png"])
        except Exception as e:  # attachments() should not raise; if it does, the text still goes
            chart_set.problems.append(f"charts: {type(e).__name__}: {redact(str(e))[:200]}")
    for problem in chart_set.problems:
        ctx.logger.warning("report charts: %s", problem)
    what = f"{rep.title.lower()} for {rep.window.describe()} ({rep.tz})"
    album = " as one album" if chart_set.charts > 1 else ""
    charts_word = {"png": f"{chart_set.charts} PNG chart(s){album}", "html": "charts as one HTML document",
                   "none": "no charts"}[chart_set.mode]
    metrics = {"charts": float(chart_set.charts), "chars": float(len(text)),
               "chart_problems": float(len(chart_set.problems))}
    ids = ctx.enqueue(lambda conn: report_queue.enqueue(conn, text, chart_set, source=ctx.job_id, now=now))
    if ids is None:  # a dry run: nothing was queued
        return JobResult("ok", f"dry run: {what} with {charts_word} not queued", metrics)
    metrics["queued"] = float(len(ids))
    return JobResult("ok", f"{what} queued with {charts_word}", metrics)


ARG_VALIDATORS = {"daily_digest": validate_args, "weekly_report": validate_args}
