"""A report as a standalone HTML page with interactive plotly charts (`--out FILE.html`).

The same figures and comparisons as the Telegram digest, in tables, with the
charts drawn by plotly.js inlined once: the file opens offline and can be
mailed or archived as it is.
"""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path

from ops.alerting import tally
from ops.reports import charts
from ops.reports.figures import Report
import pandas as pd

from ops.reports import formatting as fmt
from ops.reports import message
from ops.reports.message import (BETTER, CHART_TITLES, SECTIONS, WEEKLY_LABELS, WEEKLY_LEGEND, WORSE,
                                 _baseline_heading, _pct, change_mark, fmt_change, fmt_value)

_CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:1.5rem auto;max-width:1000px;color:#222;padding:0 1rem;
overflow-wrap:break-word}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.6rem;border-bottom:1px solid #ddd}
.meta{color:#555;margin:.2rem 0}table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .8rem;text-align:right;border-bottom:1px solid #eee}td:first-child,th:first-child{text-align:left}
th{font-weight:600}td{white-space:nowrap}.fail{color:#b42318;font-weight:600}.ok{color:#1a7f37}
.good{color:#1a7f37}.bad{color:#b42318}
code{background:#f4f4f4;padding:0 .25rem;border-radius:3px}.note{color:#8a6d00}
.scroll{max-width:100%;overflow-x:auto}.chart{width:100%}
@media (max-width:600px){body{margin:.5rem auto;padding:0 .5rem;font-size:15px}h1{font-size:1.2rem}
td,th{padding:.2rem .35rem}.base{display:none}th small{display:none}}
"""


def _e(v: object) -> str:
    return html.escape(str(v))


def _change_cell(fig, baseline: str) -> str:
    # coloured by the figure's direction (up is good for revenue, bad for refunds or failures), as in the digest
    mark = change_mark(fig, baseline)
    cls = {BETTER: "good", WORSE: "bad"}.get(mark, "")
    return f"<td class=\"{cls}\">{_e(fmt_change(fig, baseline))}</td>"


def _figures_table(report: Report, keys: tuple[str, ...]) -> str:
    """Figures against each baseline; on a phone the baselines' own values hide and the changes stay."""
    head = "<tr><th></th><th>" + ("day" if report.kind == "daily" else "week") + "</th>"
    for b in report.baselines:
        head += (f"<th class=\"base\">{_e(b.title)}<br><small>{_e(b.window.describe())}</small></th>"
                 f"<th>{_e(_baseline_heading(b))}</th>")
    rows = [head + "</tr>"]
    for key in keys:
        fig = report.figures[key]
        label = WEEKLY_LABELS.get(key, fig.label) if report.kind == "weekly" else fig.label
        row = f"<tr><td>{_e(label)}</td><td>{_e(fmt_value(fig))}</td>"
        for b in report.baselines:
            base = fig.base.get(b.key)
            shown = fmt_value(replace(fig, value=base))
            row += f"<td class=\"base\">{_e(shown)}</td>{_change_cell(fig, b.key)}"
        rows.append(row + "</tr>")
    return "<div class=\"scroll\"><table>" + "".join(rows) + "</table></div>"


def _currency_section(report: Report) -> str:
    """Revenue per currency, each in its own money (formatting.table), and the conversion when rates are set."""
    if not report.currencies:
        return ""
    df = pd.DataFrame([{"currency": c.currency, "gross": c.gross, "refunds": c.refunds, "net": c.net,
                        **({"proceeds": c.proceeds} if report.commission is not None else {}),
                        "purchases": c.purchases} for c in report.currencies])
    conv = report.converted
    parts = ["<h3>Revenue by currency</h3>"]
    if conv is None:
        parts.append('<p class="meta">Each currency on its own; nothing is converted '
                     "(set OPSBENCH_FX_RATES to a file of rates to see a total).</p>" if len(df) > 1 else "")
    # one row per currency, its code first and its amounts in it: narrow enough for a phone
    df = df.set_index("currency").rename_axis(None).rename(columns={"purchases": "sales"})
    shown = fmt.table(df, kinds={"gross": "number", "refunds": "number", "net": "number", "proceeds": "number"})
    parts.append('<div class="scroll">' + shown.to_html() + "</div>")
    for line in message.conversion_lines(report):
        parts.append(f"<p>{line}</p>")
    return "\n".join(parts)


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>" if items else ""


def alerts_section(alerts: list) -> str:
    """The open alerts in the count every surface prints (ops.alerting.tally), echoes said in words."""
    count = tally.tally(alerts)
    items = [f"<b>{_e(f.severity)}</b> <code>{_e(f.alert.key)}</code> {_e(f.alert.summary)}"
             + (f" <i>({_e(f.echo_words())})</i>" if f.echoes else "") for f in count.faults]
    items += [f"<b>note</b> <code>{_e(a.key)}</code> {_e(a.summary)}" for a in count.notes]
    return f"<p>Alerts: {_e(count.headline())}</p>\n" + _list(items)


def _ops_sections(report: Report) -> str:
    parts = []
    low, high = report.error_interval
    rate = report.figures["error_rate"].value
    if rate is not None:
        parts.append(f"<p>Error rate {_pct(rate)} (95% Wilson interval {_pct(low)}–{_pct(high)})</p>")
    if report.failure_codes:
        parts.append("<p>Top failure codes: " + ", ".join(
            f"<code>{_e(c.code or 'no code')}</code> {c.count:,}" for c in report.failure_codes) + "</p>")
    if report.api_error_codes:
        parts.append("<p>Top API errors (error_log): " + ", ".join(
            f"<code>{_e(c.code or 'no code')}</code> {c.count:,}" for c in report.api_error_codes) + "</p>")
    parts.append("<h2>Reconciliation</h2>")
    if report.reconciliation is None:
        parts.append("<p>not checked</p>")
    else:
        parts.append("<div class=\"scroll\"><table><tr><th>check</th><th>rows</th><th></th></tr>" + "".join(
            f"<tr><td>{_e(c.check)}</td><td>{fmt.whole(c.offending)}</td>"
            f"<td class=\"{'ok' if c.passed else 'fail'}\">{'ok' if c.passed else 'FAIL'}</td></tr>"
            for c in report.reconciliation) + "</table></div>")
    parts.append("<h2>Operations</h2>")
    if report.alerts is None:
        parts.append("<p>Alerts: unknown (state store not read)</p>")
    else:
        parts.append(alerts_section(report.alerts))
    if report.failed_runs is not None:
        parts.append(f"<p>Failed job runs in the 24 hours before generation: {report.failed_run_total or 0}</p>")
        parts.append(_list([f"<code>{_e(r.job)}</code> {_e(r.status)} at {_e(r.started_at.isoformat())}: "
                            f"{_e(r.summary)}" for r in report.failed_runs]))
    if report.cleanup is not None:
        parts.append("<p>Cleanup, rows deleted in the 24 hours before generation: " + (", ".join(
            f"<code>{_e(v.table)}</code> {v.deleted:,} ({v.runs} run(s), last {_e(v.last_outcome)})"
            for v in report.cleanup) or "no run recorded") + "</p>")
    for note in report.notes:
        parts.append(f'<p class="note">Note: {_e(note)}</p>')
    return "\n".join(parts)


def render(report: Report) -> str:
    """The whole page."""
    w = report.window
    figs, problems = charts.figures(report)
    for fig in figs.values():   # as wide as the screen, a phone's too
        charts.fit_screen(fig)
    fragments = charts.html_fragments(figs)
    made = report.local_generated_at().strftime("%Y-%m-%d %H:%M")
    head = (f"<h1>opsbench {_e(report.title.lower())} · {_e(w.describe())}</h1>"
            f"<p class=\"meta\">Data window: {_e(w.start.isoformat())} 00:00 to {_e(w.end.isoformat())} 24:00, "
            f"local days in <b>{_e(report.tz)}</b> · generated {_e(made)} {_e(report.tz)} · "
            f"environment {_e(report.environment)} · currency {_e(report.currency)}</p>"
            f"<p class=\"meta\">Compared with: " + "; ".join(
                f"{_e(b.title)} ({_e(b.window.describe())})" for b in report.baselines) + "</p>")
    body = [head]
    for _icon, title, keys in SECTIONS:
        extra = f" ({_e(report.currency)})" if title == "Revenue" else ""
        if title == "Revenue":
            keys = message.revenue_keys(report, keys)   # never a 0 % commission or a zero cost: said below instead
        body.append(f"<h2>{_e(title)}{extra}</h2>{_figures_table(report, keys)}")
        if title == "Revenue":
            body.append(f"<p class=\"meta\">{message.proceeds_line(report)}</p>")
            body.append(f"<p class=\"meta\">{message.margin_line(report)}</p>")
            body.append(_currency_section(report))
        if title == "Users" and report.kind == "weekly":
            body.append(f"<p class=\"meta\">{_e(WEEKLY_LEGEND)}</p>")
    body.append(_ops_sections(report))
    body.append(f"<h2>Charts</h2><p class=\"meta\">{report.chart_window.days} days to "
                f"{_e(w.end.isoformat())}; the reported {'day' if report.kind == 'daily' else 'week'} is shaded.</p>")
    for name, frag in fragments.items():
        body.append(f"<h3>{_e(CHART_TITLES.get(name, name))}</h3><div class=\"chart\">{frag}</div>")
    for p in problems:
        body.append(f'<p class="note">{_e(p)}</p>')
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>opsbench {_e(report.kind)} report {_e(w.end.isoformat())}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{_CSS}</style></head>"
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write(report: Report, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(report), encoding="utf-8")
    tmp.replace(path)
    return path
