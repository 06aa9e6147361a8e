"""A report as one compact Telegram message (HTML parse mode).

The only markup is fixed tags written here (b, i, code, pre); every value
that comes from data (alert keys and summaries, error codes, job names) goes
through `ops.alerting.telegram_html.escape`. Figures sit in small <pre> tables a phone can
show without wrapping (about 36 columns); a change is an arrow and a size:
"▲ 12%" for amounts and counts, "▲ 0.8pp" (percentage points) for rates.
Long lists are cut to a few lines with "… and N more", so a digest stays
well under Telegram's 4,096 characters; the outbox splits it safely anyway.
"""

from __future__ import annotations

import datetime as dt

from ops.alerting.telegram_html import SEVERITY_ICON, escape, human_duration
from ops.reports.figures import Baseline, Figure, Report

MAX_ALERTS = 6
MAX_RUNS = 5
LABEL_W, VALUE_W, CHANGE_W = 10, 9, 8

SECTIONS = (
    ("💰", "Revenue", ("gross", "refunds", "net", "purchases", "paying_users", "arppu")),
    ("👥", "Users", ("dau", "wau", "mau", "stickiness", "new_users")),
    ("🎬", "Video jobs", ("jobs", "failed", "error_rate", "p95_seconds")),
)
# Weekly figures that are not a plain total of the week say what they are.
WEEKLY_LABELS = {"dau": "avg DAU", "p95_seconds": "p95 worst"}
WEEKLY_LEGEND = ("avg DAU and DAU/MAU: daily averages; WAU: distinct users of the week; MAU: on its Sunday; "
                 "p95 worst: the week's slowest day")


# -- numbers -------------------------------------------------------------------------

def fmt_value(fig: Figure) -> str:
    v = fig.value
    if v is None:
        return "–"
    if fig.unit == "money":
        return f"{v:,.2f}"
    if fig.unit == "count":
        return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"
    if fig.unit in ("rate", "ratio"):
        return f"{100 * v:.2f}%" if fig.unit == "rate" else f"{100 * v:.1f}%"
    if fig.unit == "seconds":
        return f"{v:,.0f} s"
    return f"{v:g}"


def fmt_change(fig: Figure, baseline: str) -> str:
    """▲ 12% / ▼ 3.4% / = 0% / ▲ 0.8pp; – when there is nothing to compare with."""
    change = fig.change(baseline)
    if change is None:
        return "–"
    if fig.change_kind == "points":
        pp = 100 * change
        if abs(pp) < 0.05:
            return "= 0pp"
        return f"{'▲' if pp > 0 else '▼'} {abs(pp):.1f}pp"
    pct = 100 * change
    if abs(pct) < 0.5:
        return "= 0%"
    size = f"{abs(pct):.0f}%" if abs(pct) >= 10 else f"{abs(pct):.1f}%"
    return f"{'▲' if pct > 0 else '▼'} {size}"


def _pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}%"


def _local(ts: dt.datetime | None, report: Report, fmt: str = "%H:%M") -> str:
    if ts is None:
        return "?"
    return ts.astimezone(report.local_generated_at().tzinfo).strftime(fmt)


# -- parts -----------------------------------------------------------------------------

def _column_heading(report: Report) -> str:
    return "day" if report.kind == "daily" else "week"


def _baseline_heading(b: Baseline) -> str:
    if b.key == "avg7":
        return "vs avg"
    if b.key == "last_week":
        return f"vs {b.window.end:%a}"
    return "vs prev"


def figure_table(report: Report, keys: tuple[str, ...]) -> str:
    head = " " * LABEL_W + _column_heading(report).rjust(VALUE_W)
    head += "".join(_baseline_heading(b).rjust(CHANGE_W) for b in report.baselines)
    lines = [head.rstrip()]
    for key in keys:
        fig = report.figures[key]
        label = WEEKLY_LABELS.get(key, fig.label) if report.kind == "weekly" else fig.label
        row = label.ljust(LABEL_W)[:LABEL_W] + fmt_value(fig).rjust(VALUE_W)
        row += "".join(fmt_change(fig, b.key).rjust(CHANGE_W) for b in report.baselines)
        lines.append(row.rstrip())
    return "<pre>" + escape("\n".join(lines)) + "</pre>"


def header(report: Report) -> list[str]:
    w = report.window
    icon = "📊" if report.kind == "daily" else "📈"
    lines = [f"{icon} <b>{report.title}</b> · {escape(w.describe())}"]
    if report.kind == "daily":
        span = f"{w.start:%a %d %b %Y}, 00:00–24:00"
    else:
        span = f"{w.start:%a %d %b} 00:00 – {w.end:%a %d %b %Y} 24:00"
    lines.append(f"<i>Data: {escape(span)} {escape(report.tz)}</i>")
    compared = "; ".join(f"{_baseline_heading(b)} = {escape(b.title)} ({escape(b.window.describe())})"
                         for b in report.baselines)
    lines.append(f"<i>{compared}</i>")
    return lines


def jobs_lines(report: Report) -> list[str]:
    low, high = report.error_interval
    rate = report.figures["error_rate"].value
    lines = []
    if rate is not None:
        lines.append(f"Error rate {_pct(rate)} (95% CI {_pct(low)}–{_pct(high)}, "
                     f"{report.figures['failed'].value or 0:,.0f} of {report.figures['jobs'].value or 0:,.0f})")
    if report.failure_codes:
        codes = ", ".join(f"<code>{escape(c.code or 'no code')}</code> {c.count:,}" for c in report.failure_codes)
        lines.append(f"Top failure codes: {codes}")
    if report.api_error_codes:
        codes = ", ".join(f"<code>{escape(c.code or 'no code')}</code> {c.count:,}" for c in report.api_error_codes)
        lines.append(f"Top API errors: {codes}")
    return lines


def reconciliation_line(report: Report) -> str:
    checks = report.reconciliation
    if checks is None:
        return "🧾 <b>Reconciliation</b>: not checked"
    failing = [c for c in checks if not c.passed]
    if not failing:
        return f"🧾 <b>Reconciliation</b>: ✅ all clear ({len(checks)} checks)"
    parts = ", ".join(f"{escape(c.check)} {c.offending:,}" for c in failing)
    return f"🧾 <b>Reconciliation</b>: ⚠️ {len(failing)} of {len(checks)} checks failing: {parts}"


def alert_lines(report: Report) -> list[str]:
    if report.alerts is None:
        return ["🚨 <b>Alerts</b>: unknown (state store not read)"]
    if not report.alerts:
        return ["🚨 <b>Alerts</b>: none firing"]
    counts: dict[str, int] = {}
    for a in report.alerts:
        counts[a.severity] = counts.get(a.severity, 0) + 1
    by_severity = ", ".join(f"{n} {escape(sev)}" for sev, n in counts.items())
    lines = [f"🚨 <b>Alerts firing</b>: {len(report.alerts)} ({by_severity})"]
    for a in report.alerts[:MAX_ALERTS]:
        since = ""
        if a.fired_at is not None and report.generated_at - a.fired_at >= dt.timedelta(minutes=1):
            since = f" · for {human_duration(report.generated_at - a.fired_at)}"
        lines.append(f"{SEVERITY_ICON.get(a.severity, '⚪')} <code>{escape(a.key)}</code> "
                     f"{escape(_short(a.summary, 90))}{since}")
    if len(report.alerts) > MAX_ALERTS:
        lines.append(f"… and {len(report.alerts) - MAX_ALERTS} more (<code>opsbench alerts</code>)")
    return lines


def runs_lines(report: Report) -> list[str]:
    if report.failed_runs is None:
        return []
    total = report.failed_run_total if report.failed_run_total is not None else len(report.failed_runs)
    if not total:
        return ["⚙️ <b>Job runs</b> (24 h): none failed"]
    lines = [f"⚙️ <b>Failed job runs</b> (24 h): {total}"]
    for r in report.failed_runs[:MAX_RUNS]:
        lines.append(f"• <code>{escape(r.job)}</code> {escape(r.status)} at {_local(r.started_at, report)}: "
                     f"{escape(_short(r.summary, 100))}")
    if total > MAX_RUNS:
        lines.append(f"… and {total - MAX_RUNS} more (<code>opsbench status</code>)")
    return lines


def cleanup_lines(report: Report) -> list[str]:
    if report.cleanup is None:
        return []
    if not report.cleanup:
        return ["🧹 <b>Cleanup</b> (24 h): no run recorded"]
    parts = []
    for v in report.cleanup:
        flag = "" if v.last_outcome in ("done", "capped") else f" ({escape(v.last_outcome)})"
        parts.append(f"{escape(v.table)} {v.deleted:,}{flag}")
    return ["🧹 <b>Cleanup</b> (24 h), rows deleted: " + ", ".join(parts)]


def footer(report: Report) -> str:
    made = report.local_generated_at().strftime("%Y-%m-%d %H:%M")
    cmd = f"opsbench report {report.kind} --date {report.window.end.isoformat()}"
    return (f"<i>Generated {escape(made)} {escape(report.tz)} · {escape(report.environment)} · "
            f"</i><code>{escape(cmd)}</code>")


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def telegram_message(report: Report) -> str:
    """The whole report as Telegram HTML."""
    blocks: list[str] = ["\n".join(header(report))]
    for icon, title, keys in SECTIONS:
        extra = f" ({escape(report.currency)})" if title == "Revenue" else ""
        block = f"{icon} <b>{title}</b>{extra}\n{figure_table(report, keys)}"
        if title == "Users" and report.kind == "weekly":
            block += f"\n<i>{escape(WEEKLY_LEGEND)}</i>"
        if title == "Video jobs":
            block += "\n" + "\n".join(jobs_lines(report))
        blocks.append(block.rstrip())
    ops_lines = [reconciliation_line(report), *alert_lines(report), *runs_lines(report), *cleanup_lines(report)]
    blocks.append("\n".join(ops_lines))
    for note in report.notes:
        blocks.append(f"<i>Note: {escape(note)}</i>")
    blocks.append(footer(report))
    return "\n\n".join(blocks)


CHART_TITLES = {"revenue": "Revenue", "dau": "Active users", "error_rate": "Job error rate with 95% interval"}


def chart_caption(report: Report, chart: str) -> str:
    cw = report.chart_window
    title = CHART_TITLES.get(chart, chart)
    return (f"{escape(title)} · {cw.days} days to {escape(cw.end.strftime('%a %d %b %Y'))} "
            f"({escape(report.tz)})")


def charts_document_caption(report: Report, charts: list[str], reason: str) -> str:
    names = ", ".join(CHART_TITLES.get(c, c).lower() for c in charts)
    return (f"📎 Charts as interactive HTML ({escape(names)}); {escape(reason)} · "
            f"{report.chart_window.days} days to {escape(report.chart_window.end.isoformat())} ({escape(report.tz)})")
