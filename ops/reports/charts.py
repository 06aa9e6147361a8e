"""A report's charts: plotly figures, PNG through kaleido, or one HTML document.

- `figures(report)`: revenue, active users and the job error rate with its
  95 % Wilson band over the report's chart window (30 days for the digest),
  the reported window shaded. Each figure is built on its own: one that
  fails is left out and named, the others still come.
- `to_png(figs)`: kaleido 1.x renders PNGs in a headless Chrome/Chromium it
  finds through choreographer (PATH, the usual install places, a browser
  fetched with `kaleido_get_chrome`, or BROWSER_PATH). choreographer starts it
  with --no-sandbox unless asked otherwise, which is what lets it run as root
  in a container. No browser: `ChartsUnavailable`.
- `attachments(report)`: what a report sends with its text: the PNGs as one
  Telegram album (a media group, one caption), or, without a browser, the same
  charts as one small self-contained HTML document drawn in SVG (no script,
  opens offline, kilobytes). It never raises: a chart problem must not keep
  the text from going out.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import plotly.graph_objects as go

from ops.alerting import outbox
from ops.core.errors import ChartsUnavailable
from ops.core.redact import redact
from ops.reports import palette

log = logging.getLogger("opsbench.charts")

WIDTH, HEIGHT, SCALE = 900, 420, 2
RENDER_TIMEOUT_S = 90.0
# the one mapping every chart uses (ops/reports/palette.py), so the notebooks draw the same colours
COLORS = {"gross": palette.FIGURES["gross"], "net": palette.FIGURES["net"], "dau": palette.FIGURES["dau"],
          "new": palette.FIGURES["new"], "rate": palette.FIGURES["error_rate"], "band": palette.FIGURES["band"],
          "window": palette.FIGURES["window"], "target": palette.FIGURES["target"]}
ERROR_RATE_TARGET = 0.01   # the backend's reliability target: error rate < 1 %


@dataclass
class Attachment:
    kind: str           # photo | media_group (several photos, ops.alerting.outbox.pack_album) | document
    name: str           # chart name, or "charts" for the HTML document
    data: bytes
    filename: str
    caption: str


@dataclass
class ChartSet:
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # one line each: what failed and why
    mode: str = "none"                                  # png | html | none
    charts: int = 0                                     # charts delivered (an album holds several)


# -- figures ----------------------------------------------------------------------------

def _days(df: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(df["day"])


def _layout(fig: go.Figure, title: str, report, yaxis: dict) -> go.Figure:
    w = report.window
    fig.add_vrect(x0=pd.Timestamp(w.start) - pd.Timedelta(hours=12), x1=pd.Timestamp(w.end) + pd.Timedelta(hours=12),
                  fillcolor=COLORS["window"], line_width=0, layer="below")
    fig.update_layout(
        title={"text": f"{title}<br><sup>{report.chart_window.days} days to {w.end:%a %d %b %Y}, "
                       f"days in {html.escape(report.tz)}; shaded: the reported "
                       f"{'day' if report.kind == 'daily' else 'week'}</sup>"},
        template="plotly_white", width=WIDTH, height=HEIGHT, margin={"l": 60, "r": 20, "t": 70, "b": 40},
        legend={"orientation": "h", "y": -0.12}, yaxis=yaxis, hovermode="x unified",
    )
    return fig


def revenue_figure(report) -> go.Figure:
    df = report.series["revenue"]
    x = _days(df)
    fig = go.Figure()
    fig.add_bar(x=x, y=df["gross"], name="gross", marker_color=COLORS["gross"])
    fig.add_scatter(x=x, y=df["net"], name="net (after refunds)", mode="lines+markers",
                    line={"color": COLORS["net"], "width": 2})
    return _layout(fig, f"Revenue ({html.escape(report.currency)}, production)", report,
                   {"title": report.currency, "rangemode": "tozero"})


def dau_figure(report) -> go.Figure:
    df = report.series["activity"]
    x = _days(df)
    fig = go.Figure()
    fig.add_bar(x=x, y=df["new_users"], name="new users (sign-ups)", marker_color=COLORS["new"])
    fig.add_scatter(x=x, y=df["dau"], name="DAU", mode="lines+markers", line={"color": COLORS["dau"], "width": 2})
    return _layout(fig, "Daily active users", report, {"title": "users", "rangemode": "tozero"})


def error_rate_figure(report) -> go.Figure:
    df = report.series["errors"]
    x = _days(df)
    low, high, rate = (100 * df[c].astype(float) for c in ("wilson_low", "wilson_high", "error_rate"))
    fig = go.Figure()
    # the band: upper edge, then lower edge filled up to it
    fig.add_scatter(x=x, y=high, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip",
                    connectgaps=False)
    fig.add_scatter(x=x, y=low, mode="lines", line={"width": 0}, fill="tonexty", fillcolor=COLORS["band"],
                    name="95% interval", hoverinfo="skip", connectgaps=False)
    fig.add_scatter(x=x, y=rate, name="error rate", mode="lines+markers",
                    line={"color": COLORS["rate"], "width": 2},
                    customdata=df[["failed", "jobs"]].to_numpy(),
                    hovertemplate="%{y:.2f}% (%{customdata[0]} of %{customdata[1]})<extra></extra>")
    fig.add_hline(y=100 * ERROR_RATE_TARGET, line_dash="dash", line_color=COLORS["target"],
                  annotation_text="target 1%", annotation_position="top left")
    return _layout(fig, "Video job error rate (failed / finished)", report,
                   {"title": "% of finished jobs", "rangemode": "tozero"})


def fit_screen(fig: go.Figure) -> go.Figure:
    """For a page: as wide as its container (a 390 px phone too) instead of the PNG's fixed 900 px."""
    fig.update_layout(width=None, autosize=True, margin={"l": 45, "r": 10, "t": 70, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    return fig


# Chart name -> builder, in the order they are sent.
BUILDERS: dict[str, Callable] = {
    "revenue": revenue_figure,
    "dau": dau_figure,
    "error_rate": error_rate_figure,
}


def figures(report) -> tuple[dict[str, go.Figure], list[str]]:
    """Every chart that could be built, and a line per chart that could not."""
    out: dict[str, go.Figure] = {}
    problems: list[str] = []
    for name, build in BUILDERS.items():
        try:
            out[name] = build(report)
        except Exception as e:  # one broken chart must not take the others (or the text) down
            problems.append(f"chart {name}: {type(e).__name__}: {redact(str(e))[:200]}")
            log.warning("chart %s could not be built: %s", name, redact(e), exc_info=True)
    return out, problems


# -- PNG ----------------------------------------------------------------------------------

def find_browser() -> str | None:
    """The Chrome/Chromium kaleido would use, or None.

    BROWSER_PATH (choreographer's override) wins; a path there that is not an
    executable file means "no browser", which is also how tests take it away.
    """
    override = os.environ.get("BROWSER_PATH")
    if override is not None:
        return override if Path(override).is_file() and os.access(override, os.X_OK) else None
    try:
        from choreographer.browsers.chromium import Chromium

        return Chromium.find_browser(skip_local=False)
    except Exception as e:  # noqa: BLE001 - a broken lookup means no browser, not a crash
        log.debug("browser lookup failed: %s", e)
        return None


def _in_thread(coro_factory: Callable, timeout: float):
    """Run a coroutine on a private event loop in its own thread (safe inside Jupyter or a daemon job)."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(asyncio.wait_for(coro_factory(), timeout))
        except BaseException as e:  # noqa: BLE001 - handed back to the caller
            box["error"] = e

    t = threading.Thread(target=run, name="kaleido", daemon=True)
    t.start()
    t.join(timeout + 15)
    if t.is_alive():
        raise TimeoutError(f"chart rendering did not finish in {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def to_png(figs: dict[str, go.Figure], *, timeout: float = RENDER_TIMEOUT_S) -> dict[str, bytes | Exception]:
    """PNG bytes per chart (or the exception that chart raised), in one browser session.

    Raises ChartsUnavailable when there is no browser or it cannot start.
    """
    if not figs:
        return {}
    path = find_browser()
    if path is None:
        raise ChartsUnavailable("no Chrome/Chromium found (kaleido needs one for PNG; install chromium "
                                "or run kaleido_get_chrome, or set BROWSER_PATH)")
    import kaleido

    async def render() -> dict[str, bytes | Exception]:
        out: dict[str, bytes | Exception] = {}
        # mathjax=False: no CDN fetch; plotly.js comes from the installed plotly package
        async with kaleido.Kaleido(n=1, timeout=timeout, mathjax=False, path=path) as k:
            for name, fig in figs.items():
                try:
                    out[name] = await k.calc_fig(fig, opts={"format": "png", "width": WIDTH, "height": HEIGHT,
                                                            "scale": SCALE})
                except Exception as e:  # noqa: BLE001 - per chart
                    out[name] = e
        return out

    try:
        return _in_thread(render, timeout)
    except Exception as e:
        raise ChartsUnavailable(f"the browser at {path} could not render: {type(e).__name__}: "
                                f"{redact(str(e)).splitlines()[0][:200] if str(e) else ''}") from None


# -- HTML ---------------------------------------------------------------------------------

def html_fragments(figs: dict[str, go.Figure]) -> dict[str, str]:
    """One <div> per chart; plotly.js is inlined in the first one only, so the page works offline."""
    out: dict[str, str] = {}
    for i, (name, fig) in enumerate(figs.items()):
        out[name] = fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"chart-{name}",
                                config={"displaylogo": False, "responsive": True})
    return out


def html_document(figs: dict[str, go.Figure], title: str, subtitle: str = "") -> str:
    """The charts as one small self-contained HTML page: drawn as SVG (ops/reports/svg.py), no script,
    so it opens offline on a phone and weighs kilobytes, not the 4.8 MB of plotly.js inlined."""
    from ops.reports import svg

    body = "\n".join(f'<section class="chart" id="chart-{html.escape(name)}">{svg.figure_svg(fig)}</section>'
                     for name, fig in figs.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;margin:1rem auto;max-width:680px;padding:0 .6rem;color:#222}}
h1{{font-size:1.2rem}}.sub{{color:#666}}.chart{{margin:1.2rem 0}}figure{{margin:0}}figcaption{{margin:.3rem 0}}
.legend{{font-size:.85rem;color:#333}}</style></head>
<body><h1>{html.escape(title)}</h1><p class="sub">{html.escape(subtitle)}</p>
{body}
<p class="sub">Hover or long-press a bar or point for its day and value.</p>
</body></html>
"""


# -- what a report sends ------------------------------------------------------------------

def attachments(report, *, allow_png: bool = True) -> ChartSet:
    """PNG photos, else one HTML document; never raises (problems are listed instead)."""
    from ops.reports import message as report_message

    result = ChartSet()
    try:
        figs, result.problems = figures(report)
        if not figs:
            return result
        stamp = report.window.end.isoformat()
        reason = "PNG rendering is off"
        if allow_png:
            try:
                pngs = to_png(figs)
            except ChartsUnavailable as e:
                reason = str(e).split(" (")[0]
                log.info("charts go as HTML: %s", e)
                result.problems.append(f"PNG charts: {e}")
                pngs = None
            if pngs is not None:
                photos: list[tuple[str, str, bytes]] = []
                for name, png in pngs.items():
                    if isinstance(png, bytes) and png.startswith(b"\x89PNG"):
                        photos.append((name, f"{report.kind}-{name}-{stamp}.png", png))
                    else:
                        result.problems.append(f"chart {name}: PNG rendering failed: {redact(str(png))[:200]}")
                if len(photos) == 1:
                    name, filename, png = photos[0]
                    result.attachments.append(Attachment("photo", name, png, filename,
                                                         report_message.chart_caption(report, name)))
                elif photos:
                    # one album under the text: the charts arrive together, with one caption (<= 1,024)
                    result.attachments.append(Attachment(
                        "media_group", "charts", outbox.pack_album([(f, png) for _, f, png in photos]),
                        f"{report.kind}-charts-{stamp}",
                        report_message.album_caption(report, [n for n, _, _ in photos])))
                if result.attachments:
                    result.mode, result.charts = "png", len(photos)
                    return result
                reason = "PNG rendering failed"
        title = f"opsbench {report.title.lower()} charts · {report.window.describe()}"
        subtitle = (f"{report.chart_window.days} days to {report.window.end:%a %d %b %Y}, days in {report.tz}; "
                    f"generated {report.local_generated_at():%Y-%m-%d %H:%M} {report.tz}")
        doc = html_document(figs, title, subtitle).encode("utf-8")
        result.attachments.append(Attachment(
            "document", "charts", doc, f"{report.kind}-charts-{stamp}.html",
            report_message.charts_document_caption(report, list(figs), reason)))
        result.mode, result.charts = "html", len(figs)
    except Exception as e:  # the text goes out whatever happens here
        result.problems.append(f"charts: {type(e).__name__}: {redact(str(e))[:200]}")
        log.warning("charts failed: %s", redact(e), exc_info=True)
    return result
