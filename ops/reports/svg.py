"""A report's plotly figures drawn as plain SVG: the charts without a browser and without plotly.js.

When there is no Chrome/Chromium for PNGs, the charts still go out as one
HTML document; inlining plotly.js would make it 4.8 MB, so the figures are
drawn here instead, in a few kilobytes each: bars, lines with markers, a
filled band between two lines (`fill="tonexty"`), the shaded window
(`add_vrect`) and a target line (`add_hline`). Every point carries a tooltip
(`<title>`) with its day and value, so the document still answers "how much
on that day?". Only what the report's own charts use is supported.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re

import pandas as pd

W, H = 640, 330
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 24, 34


def _days(values) -> list[dt.datetime]:
    return [pd.Timestamp(v).to_pydatetime().replace(tzinfo=None) for v in values]


def _floats(values) -> list[float | None]:
    out = []
    for v in values if values is not None else []:
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        out.append(None if math.isnan(f) else f)
    return out


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(1, ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _label(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:,.1f}"


def _plain_text(text: str) -> str:
    return re.sub(r"<[^>]+>", " ", text.split("<br>")[0]).strip()


def _plain(title) -> str:
    return _plain_text(getattr(title, "text", None) or "")


def figure_svg(fig) -> str:
    """One figure as an inline <svg> (scales to its container), with a legend below it."""
    traces = [t for t in fig.data if t.type in ("bar", "scatter") and t.x is not None]
    xs = [x for t in traces for x in _days(t.x)]
    ys = [y for t in traces for y in _floats(t.y) if y is not None]
    shapes = list(fig.layout.shapes or [])
    for s in shapes:
        if s.type == "line" and s.y0 is not None:
            ys.append(float(s.y0))
    if not xs:
        return "<p>(no data)</p>"
    x0, x1 = min(xs) - dt.timedelta(hours=12), max(xs) + dt.timedelta(hours=12)
    top = max(ys + [0.0]) or 1.0
    low = min(ys + [0.0])
    step = _nice_step(top - low)
    y_hi = math.ceil(top / step) * step
    y_lo = math.floor(low / step) * step
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    span_s = (x1 - x0).total_seconds()

    def px(x: dt.datetime) -> float:
        return LEFT + pw * (x - x0).total_seconds() / span_s

    def py(y: float) -> float:
        return TOP + ph * (1 - (y - y_lo) / ((y_hi - y_lo) or 1))

    out = [f'<svg viewBox="0 0 {W} {H}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg" '
           f'style="max-width:{W}px;font:11px system-ui,sans-serif">']
    for s in shapes:   # the shaded window, drawn first
        if s.type == "rect" and s.x0 is not None:
            a, b = px(_days([s.x0])[0]), px(_days([s.x1])[0])
            out.append(f'<rect x="{a:.1f}" y="{TOP}" width="{max(0.0, b - a):.1f}" height="{ph}" '
                       f'fill="{html.escape(str(s.fillcolor or "#eee"))}"/>')
    tick = y_lo
    while tick <= y_hi + step / 2:
        y = py(tick)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_label(tick)}</text>')
        tick += step
    ytitle = getattr(getattr(fig.layout.yaxis, "title", None), "text", None)
    if ytitle:
        out.append(f'<text x="4" y="11" fill="#555">{html.escape(_plain_text(ytitle))}</text>')
    days = sorted(set(xs))
    every = max(1, math.ceil(len(days) / 6))
    for d in days[::every]:
        out.append(f'<text x="{px(d):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" fill="#555">'
                   f'{d:%d %b}</text>')
    bar_w = 0.8 * pw / max(1, (x1 - x0).days)
    previous: list[tuple[float, float]] | None = None
    legend = []
    for t in traces:
        colour = (t.marker.color if t.type == "bar" else t.line.color) or "#444"
        pts = [(x, y) for x, y in zip(_days(t.x), _floats(t.y))]
        name = html.escape(t.name or "")
        if t.type == "bar":
            for x, y in pts:
                if y is None:
                    continue
                y_top, y_base = py(max(y, 0.0)), py(min(y, 0.0))
                out.append(f'<rect x="{px(x) - bar_w / 2:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
                           f'height="{max(0.5, y_base - y_top):.1f}" fill="{colour}">'
                           f'<title>{x:%Y-%m-%d} {name}: {y:,.2f}</title></rect>')
        else:
            coords = [(px(x), py(y)) for x, y in pts if y is not None]
            if t.fill == "tonexty" and previous:
                poly = coords + list(reversed(previous))
                out.append('<polygon points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in poly)
                           + f'" fill="{html.escape(str(t.fillcolor or "rgba(0,0,0,.1)"))}" stroke="none"/>')
            width = 0 if (t.line.width == 0) else (t.line.width or 2)
            if width:
                run: list[str] = []
                for x, y in pts + [(None, None)]:
                    if y is None:
                        if len(run) > 1:
                            out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                                       f'stroke-width="{width}"/>')
                        run = []
                        continue
                    run.append(f"{px(x):.1f},{py(y):.1f}")
            if t.mode and "markers" in t.mode:
                for x, y in pts:
                    if y is not None:
                        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}">'
                                   f'<title>{x:%Y-%m-%d} {name}: {y:,.2f}</title></circle>')
            previous = coords
        if t.showlegend is not False and t.name:
            swatch = colour if t.type == "bar" or t.fill != "tonexty" else t.fillcolor
            legend.append(f'<span style="white-space:nowrap;margin-right:.8em"><span style="display:inline-block;'
                          f'width:.8em;height:.8em;background:{html.escape(str(swatch))};margin-right:.3em">'
                          f'</span>{name}</span>')
    for s in shapes:   # target lines on top
        if s.type == "line" and s.y0 is not None:
            y = py(float(s.y0))
            out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#636363" '
                       f'stroke-dasharray="5 4"/>')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(max(y_lo, 0.0)):.1f}" y2="{py(max(y_lo, 0.0)):.1f}" '
               f'stroke="#999"/></svg>')
    title = html.escape(_plain(fig.layout.title))
    return (f'<figure><figcaption><b>{title}</b></figcaption>{"".join(out)}'
            f'<div class="legend">{"".join(legend)}</div></figure>')
