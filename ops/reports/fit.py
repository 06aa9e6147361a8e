"""Charts that read on a 390 px phone as well as on a laptop.

* `fit(fig)`: the legend goes under the plot, in rows (on the right it takes half a phone's width and
  squashes the plot to a sliver), with tight margins.
* `time_axis(fig, x, step)`: a time axis with one point on it (one run, one day) spans a step either
  side of it instead of plotly's default +-1 ms (`11:59:59.999 ... 12:00:00.001`), and every time axis
  gets few enough ticks not to overlap.
* `wrap_titles(fig_dict)`: a chart title longer than a phone's line is cut into lines between words
  (plotly never wraps a title; at 390 px it ran off the screen).
* `rate_ticks(max_rate)`: a tick format for a percent axis precise enough that no two ticks read the
  same (`0% 1% 1% 1% 2%` on an axis that ends at 2 %).
"""

from __future__ import annotations

import pandas as pd


def fit(fig, *, legend: bool = True):
    """Legend below in rows, tight margins; returns fig."""
    layout = {"margin": {"l": 10, "r": 10, "t": 60, "b": 10}}
    if legend:
        layout["legend"] = {"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0, "xanchor": "left",
                            "title": {"side": "top"}}
    fig.update_layout(**layout)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def time_axis(fig, x, step: pd.Timedelta | None = None, **where):
    """Pad a one-point time axis by `step` (default an hour) each side; at most 6 ticks on any time axis."""
    values = pd.to_datetime(pd.Series(list(x)), errors="coerce").dropna()
    step = step if step is not None else pd.Timedelta(hours=1)
    fig.update_xaxes(nticks=6, **where)
    if len(values) and values.nunique() == 1:
        # one tick, at the point, saying when it is (auto ticks on a padded range repeat a day's name)
        at = values.iloc[0]
        label = at.strftime("%b %d") if at == at.normalize() and step >= pd.Timedelta(days=1) \
            else at.strftime("%b %d %H:%M")
        fig.update_xaxes(range=[at - step, at + step], tickvals=[at], ticktext=[label], **where)
    return fig


def rate_ticks(max_rate) -> str:
    """'.0%' for an axis past 10 %, '.1%' past 1 %, else '.2%'."""
    try:
        top = float(max_rate)
    except (TypeError, ValueError):
        return ".0%"
    if top != top or top >= 0.1:      # NaN or large
        return ".0%"
    return ".1%" if top >= 0.01 else ".2%"


TITLE_LINE = 36     # characters of a 17 px title that fit a 390 px phone beside the margins


def _wrap(text: str, width: int = TITLE_LINE) -> str:
    if "<br" in text or len(text) <= width:
        return text
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


def wrap_titles(fig_dict: dict) -> dict:
    """A copy of a figure dict whose long title reads in lines; the dict given is not changed."""
    layout = fig_dict.get("layout") or {}
    title = layout.get("title")
    text = title.get("text") if isinstance(title, dict) else title if isinstance(title, str) else None
    if not text or len(text) <= TITLE_LINE:
        return fig_dict
    wrapped = _wrap(text)
    new_title = {**title, "text": wrapped} if isinstance(title, dict) else {"text": wrapped}
    top = (layout.get("margin") or {}).get("t")
    lines = wrapped.count("<br>") + 1
    margin = {**(layout.get("margin") or {}), "t": max(top or 0, 40 + 24 * lines)}
    return {**fig_dict, "layout": {**layout, "title": new_title, "margin": margin}}

