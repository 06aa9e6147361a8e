"""A report as one compact Telegram message (HTML parse mode).

The only markup is fixed tags written here (b, i, code, pre); every value
that comes from data (alert keys and summaries, error codes, job names) goes
through `ops.alerting.telegram.html.escape`. Figures sit in small <pre> tables a phone can
show without wrapping (about 36 columns); a change is an arrow and a size:
"▲ 12%" for amounts and counts, "▲ 0.8pp" (percentage points) for rates.
Long lists are cut to a few lines with "… and N more", so a digest stays
well under Telegram's 4,096 characters; the outbox splits it safely anyway.
"""

from __future__ import annotations

import datetime as dt

from ops.alerting import tally, wording
from ops.alerting.telegram.html import SEVERITY_ICON, escape, human_duration
from ops.reports import formatting as fmt
from ops.reports.figures import Baseline, Figure, Report

MAX_ALERTS = 6
MAX_RUNS = 5
LABEL_W = 10

SECTIONS = (
    ("💰", "Revenue", ("gross", "refunds", "net", "proceeds", "gross_margin", "purchases", "paying_users", "arppu")),
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
        return fmt.MISSING
    if fig.unit == "money":
        return fmt.money(v)
    if fig.unit == "count":
        return fmt.whole(v)
    if fig.unit in ("rate", "ratio"):
        return fmt.percent(v, 2 if fig.unit == "rate" else 1)
    if fig.unit == "seconds":
        return fmt.seconds(v, 0)
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
    return fmt.percent(v, digits)


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


# Which way is good for each figure: a change is marked 🟢 (better) or 🔴 (worse) so the
# digest reads without a legend; ⚪ is no change or nothing to compare with.
UP_IS_GOOD = {"gross", "net", "proceeds", "gross_margin", "purchases", "paying_users", "arppu", "dau", "wau", "mau",
              "stickiness", "new_users", "jobs"}
UP_IS_BAD = {"refunds", "failed", "error_rate", "p95_seconds"}
BETTER, WORSE, NEUTRAL = "🟢", "🔴", "⚪"


def change_mark(fig: Figure, baseline: str) -> str:
    """🟢 when the change is good for the business, 🔴 when bad, ⚪ when none (or no direction)."""
    text = fmt_change(fig, baseline)
    change = fig.change(baseline)
    if change is None or text.startswith(("=", "–")):
        return NEUTRAL
    if fig.key in UP_IS_GOOD:
        return BETTER if change > 0 else WORSE
    if fig.key in UP_IS_BAD:
        return WORSE if change > 0 else BETTER
    return NEUTRAL


def figure_table(report: Report, keys: tuple[str, ...]) -> str:
    """A monospace table sized to its content; columns always apart by at least one space.

    Every change cell starts with exactly one mark emoji, so however wide a phone
    draws the emoji, the cells of a column stay aligned with each other.
    """
    rows: list[list[str]] = []
    for key in keys:
        fig = report.figures[key]
        label = WEEKLY_LABELS.get(key, fig.label) if report.kind == "weekly" else fig.label
        rows.append([label[:LABEL_W], fmt_value(fig),
                     *(f"{change_mark(fig, b.key)}{fmt_change(fig, b.key)}" for b in report.baselines)])
    head = ["", _column_heading(report), *(_baseline_heading(b) for b in report.baselines)]

    def width(cell: str) -> int:  # a mark emoji takes about two cells on a phone
        return len(cell) + (1 if cell[:1] in (BETTER, WORSE, NEUTRAL) else 0)

    widths = [max(width(r[i]) for r in rows + [head]) for i in range(len(head))]
    widths[0] = max(len(r[0]) for r in rows)

    def line(cells: list[str]) -> str:
        out = cells[0].ljust(widths[0])
        for i, c in enumerate(cells[1:], start=1):
            out += " " + " " * (widths[i] - width(c)) + c
        return out.rstrip()

    return "<pre>" + escape("\n".join([line(head), *(line(r) for r in rows)])) + "</pre>"


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


TOP_CHECKS = 3


def reconciliation_line(report: Report) -> str:
    """A verdict and the checks with the most rows, one short line each (not a comma list of every check)."""
    checks = report.reconciliation
    if checks is None:
        return "🧾 <b>Reconciliation</b>: not checked"
    failing = sorted((c for c in checks if not c.passed), key=lambda c: (-c.offending, c.check))
    if not failing:
        return f"🧾 <b>Reconciliation</b>: ✅ all clear ({len(checks)} checks)"
    rows = sum(c.offending for c in failing)
    lines = [f"🧾 <b>Reconciliation</b>: ⚠️ {len(failing)} of {len(checks)} checks failing, "
             f"{escape(tally.plural(rows, 'row'))}"]
    lines += [f"• <code>{escape(c.check)}</code> {c.offending:,}" for c in failing[:TOP_CHECKS]]
    if len(failing) > TOP_CHECKS:
        lines.append(f"… and {len(failing) - TOP_CHECKS} more (<code>opsbench checks run</code>)")
    return "\n".join(lines)


# the one count of open alerts (ops.alerting.tally): echoes folded into their roots, info as notes
ECHO_OF = {echo: root for echo, (root, _) in tally.ECHO_OF.items()}
SEVERITY_RANK = tally.SEVERITY_RANK
TOP_ATTENTION = 3


def _rule(key: str) -> str:
    return tally.rule_of(key)


def root_alerts(alerts: list) -> list[tuple[object, int]]:
    """(alert, echoes folded into it) per fault, most severe first; info-level alerts left out."""
    return [(f.alert, len(f.echoes)) for f in tally.tally(alerts).faults]


def _alert_line(report: Report, a, fault: tally.Fault | None = None) -> str:
    since = ""
    if a.fired_at is not None and report.generated_at - a.fired_at >= dt.timedelta(minutes=1):
        since = f" · for {human_duration(report.generated_at - a.fired_at)}"
    echo = f" ({fault.echo_words()})" if fault is not None and fault.echoes else ""
    key, summary = wording.line(a.key, a.summary, 72)     # the key's words once, cut between words
    return (f"{SEVERITY_ICON.get(a.severity, '⚪')} <code>{escape(key)}</code> "
            f"{escape(summary)}{echo}{since}")


def _unalerted_checks(report: Report) -> list:
    """Failing reconciliation checks that no firing alert stands for (e.g. no daemon recorded them)."""
    alerted = {_rule(a.key) for a in (report.alerts or [])}
    out = []
    for c in report.reconciliation or []:
        rule = f"reconcile_{c.check}"
        if c.offending and rule not in alerted and ECHO_OF.get(rule) not in alerted:
            out.append(c)
    return out


def attention_lines(report: Report) -> list[str]:
    """The first thing on the phone: what needs the founder, or all clear."""
    unalerted = _unalerted_checks(report)
    if report.alerts is None:
        lines = ["❔ <b>Alerts unknown</b>: the state store was not read"]
        if unalerted:
            lines.append(f"🟠 <b>Needs you: {len(unalerted)} reconciliation check(s) failing</b>")
        return lines
    roots = root_alerts(report.alerts)
    crit = sum(1 for a, _ in roots if a.severity == "critical")
    warn = sum(1 for a, _ in roots if a.severity == "warning")
    if not roots and not unalerted:
        return ["✅ <b>All clear</b>: nothing needs you"]
    parts = [f"{n} {word}" for n, word in ((crit, "critical"), (warn, "warning")) if n]
    if unalerted:
        parts.append(f"{len(unalerted)} reconciliation check{'s' if len(unalerted) > 1 else ''} failing")
    lines = [f"{'🔴' if crit else '🟠'} <b>Needs you: {', '.join(parts)}</b>"]
    for a, _ in roots[:TOP_ATTENTION]:
        lines.append(f"• {escape(_short(a.summary, 70))}")
    for c in unalerted[:max(0, TOP_ATTENTION - len(roots))]:
        lines.append(f"• reconciliation {escape(c.check)}: {escape(tally.plural(c.offending, 'row'))}")
    return lines


def alert_lines(report: Report) -> list[str]:
    if report.alerts is None:
        return ["🚨 <b>Alerts</b>: unknown (state store not read)"]
    count = tally.tally(report.alerts)
    if not count.open:
        return ["🚨 <b>Alerts</b>: nothing open"]
    lines = [f"🚨 <b>Alerts</b>: {escape(count.headline())}"]
    for f in count.faults[:MAX_ALERTS]:
        lines.append(_alert_line(report, f.alert, f))
    if len(count.faults) > MAX_ALERTS:
        lines.append(f"… and {len(count.faults) - MAX_ALERTS} more (<code>opsbench alerts</code>)")
    return lines


def notes_lines(report: Report) -> list[str]:
    """Info-level alerts (weekly reviews): worth reading, not firing."""
    infos = tally.tally(report.alerts or []).notes
    if not infos:
        return []
    lines = [f"📝 <b>Notes</b> ({len(infos)})"]
    for a in infos[:MAX_ALERTS]:
        lines.append(f"• {escape(_short(a.summary, 110))}")
    if len(infos) > MAX_ALERTS:
        lines.append(f"… and {len(infos) - MAX_ALERTS} more (<code>opsbench alerts</code>)")
    return lines


def margin_line(report: Report) -> str:
    """Where the gross margin's provider costs come from, or that they are not configured."""
    if report.provider_costs is None:
        return "<i>margin: provider costs not configured (set OPSBENCH_PROVIDER_COSTS to the provider costs file)</i>"
    return f"<i>margin: credits charged at the sold price less {escape(report.provider_costs.describe())}</i>"


def revenue_keys(report: Report, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The Revenue section's figures: no proceeds or margin row the founder's files cannot give (said below it)."""
    hidden = {k for k, missing in (("proceeds", report.commission is None),
                                   ("gross_margin", report.provider_costs is None)) if missing}
    return tuple(k for k in keys if k not in hidden)


def economics_lines(report: Report) -> list[str]:
    """The weekly report's economics section: what unspent credits are worth, which models lose money."""
    e = report.economics
    if e is None:
        return []
    cur = report.currency
    lines = ["📒 <b>Economics</b>"]
    if e.liability is not None:
        lines.append(f"unspent purchased credits: {e.outstanding_credits:,}, "
                     f"worth {escape(fmt.money(e.liability, cur))} at their sold price")
    if e.losers is None:
        lines.append("<i>models' margins: provider costs not configured (OPSBENCH_PROVIDER_COSTS)</i>")
    elif not e.losers:
        lines.append("every priced model earned more than its provider cost")
    else:
        lines.append("losing money: " + ", ".join(
            f"{escape(m.model)} ({escape(m.provider)}) {escape(fmt.money(m.margin, cur))} over {m.jobs:,} jobs"
            for m in e.losers))
    return lines


def proceeds_line(report: Report) -> str:
    """Where proceeds come from (the commission file), or that they are not configured."""
    if report.commission is None:
        return "<i>proceeds: not configured (set OPSBENCH_COMMISSION to the store's commission file)</i>"
    return f"<i>proceeds: after tax share and store commission, {escape(report.commission.describe())}</i>"


def currency_lines(report: Report) -> list[str]:
    """Revenue of every currency present, one line each; the table above is the report's currency only.

    With the founder's rates (OPSBENCH_FX_RATES), a total of all currencies in the rates' base follows,
    saying which currencies it converted and at what rate; without them nothing is converted.
    """
    others = [c for c in report.currencies if c.currency.upper() != report.currency.upper()]
    if not others:
        return []
    conv = report.converted
    lines = ["Other currencies (not in the table):" if conv else
             "Other currencies (not converted, not in the table):"]
    for c in others:
        kept = f"proceeds {fmt.money(c.proceeds)}, " if c.proceeds is not None else ""
        lines.append(f"• {escape(c.currency)} gross {fmt.money(c.gross)}, net {fmt.money(c.net)}, {kept}"
                     f"{c.purchases:,} purchases")
    lines += conversion_lines(report)
    return lines


def conversion_lines(report: Report) -> list[str]:
    """'All currencies in USD: ...' and the rates used; [] without rates."""
    conv = report.converted
    if conv is None:
        return []
    a = conv.amounts
    lines = [f"<b>All currencies in {escape(conv.base)}</b>: gross {fmt.money(a['gross'])}, "
             f"refunds {fmt.money(a['refunds'])}, net {fmt.money(a['net'])}"]
    said = f"converted {escape(conv.rates_text())}" if conv.used else "nothing converted"
    lines.append(f"<i>{said}; {escape(conv.describe)}</i>")
    if conv.missing:
        lines.append(f"<i>left out, no rate: {escape(', '.join(conv.missing))}</i>")
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
    """One line of at most `limit` characters, cut between words."""
    return wording.clip(text, limit)


def telegram_message(report: Report) -> str:
    """The whole report as Telegram HTML: what needs the founder first, then the numbers."""
    head = header(report)
    blocks: list[str] = ["\n".join([head[0], *attention_lines(report), *head[1:]])]
    for icon, title, keys in SECTIONS:
        extra = f" ({escape(report.currency)})" if title == "Revenue" else ""
        if title == "Revenue":
            keys = revenue_keys(report, keys)   # never a 0 % commission or a zero cost: said below instead
        block = f"{icon} <b>{title}</b>{extra}\n{figure_table(report, keys)}"
        if title == "Revenue":
            block += "\n" + proceeds_line(report) + "\n" + margin_line(report)
        if title == "Revenue" and currency_lines(report):
            block += "\n" + "\n".join(currency_lines(report))
        if title == "Users" and report.kind == "weekly":
            block += f"\n<i>{escape(WEEKLY_LEGEND)}</i>"
        if title == "Video jobs":
            block += "\n" + "\n".join(jobs_lines(report))
        blocks.append(block.rstrip())
    if economics_lines(report):
        blocks.append("\n".join(economics_lines(report)))
    ops_lines = [reconciliation_line(report), *alert_lines(report), *runs_lines(report), *cleanup_lines(report)]
    blocks.append("\n".join(ops_lines))
    if notes_lines(report):
        blocks.append("\n".join(notes_lines(report)))
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


def album_caption(report: Report, charts: list[str]) -> str:
    """The caption under a report's album of charts: what each photo is, over which days (well under 1,024)."""
    cw = report.chart_window
    names = " · ".join(escape(CHART_TITLES.get(c, c)) for c in charts)
    return (f"{'📊' if report.kind == 'daily' else '📈'} <b>{escape(report.title)} charts</b>: {names}\n"
            f"<i>{cw.days} days to {escape(cw.end.strftime('%a %d %b %Y'))} ({escape(report.tz)}); shaded: the "
            f"reported {'day' if report.kind == 'daily' else 'week'}</i>")


def charts_document_caption(report: Report, charts: list[str], reason: str) -> str:
    names = ", ".join(CHART_TITLES.get(c, c).lower() for c in charts)
    return (f"📎 Charts as one small HTML page ({escape(names)}; tap a point for its value); {escape(reason)} · "
            f"{report.chart_window.days} days to {escape(report.chart_window.end.isoformat())} ({escape(report.tz)})")
