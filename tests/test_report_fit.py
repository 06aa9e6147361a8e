"""Tables and charts that read on a phone: no Python values in a table, one-point time axes that say when,
percent ticks that differ, long chart titles in lines (ops/reports/formatting.py, ops/reports/fit.py)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ops.reports import fit
from ops.reports import formatting as fmt


def test_a_table_shows_no_python_literals():
    df = pd.DataFrame({"passed": [True, False], "is_admin": pd.array([True, None], dtype="boolean"),
                       "mixed": [True, None], "note": [None, "x"], "rate": [np.nan, 0.5],
                       "resolved": [pd.NaT, pd.Timestamp("2026-12-01 10:00:00")]})
    html = fmt.table(df).to_html()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert not {"True", "False", "None", "NaN", "nan", "NaT", "<NA>"} & set(cells), cells
    assert cells[:3] == ["yes", "yes", "yes"] and "no" in cells and fmt.MISSING in cells
    # a transposed row (one object column of mixed values) too
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", fmt.table(df.iloc[[0]].T.rename(columns={0: "v"})).to_html())
    assert "True" not in cells and "yes" in cells


def test_a_one_point_time_axis_spans_a_step_and_says_when():
    at = pd.Timestamp("2026-12-08 00:15:56")
    f = fit.time_axis(go.Figure(go.Scatter(x=[at], y=[1])), [at, at], pd.Timedelta(hours=1))
    assert list(f.layout.xaxis.range) == [at - pd.Timedelta(hours=1), at + pd.Timedelta(hours=1)]
    assert list(f.layout.xaxis.ticktext) == ["Dec 08 00:15"]
    day = pd.Timestamp("2026-12-08")
    f = fit.time_axis(go.Figure(go.Bar(x=[day], y=[1])), [day], pd.Timedelta(days=1))
    assert list(f.layout.xaxis.ticktext) == ["Dec 08"]
    # several points: plotly's own ticks, few enough not to overlap
    f = fit.time_axis(go.Figure(), [day, day + pd.Timedelta(days=3)])
    assert f.layout.xaxis.range is None and f.layout.xaxis.nticks == 6


@pytest.mark.parametrize("top", [0.004, 0.02, 0.07, 0.35])
def test_percent_ticks_differ(top):
    ticks = np.linspace(0, top, 5)     # plotly puts about five ticks on a short axis
    labels = [format(t, fit.rate_ticks(top)) for t in ticks]
    assert len(set(labels)) == len(labels), labels


def test_long_titles_are_cut_between_words_for_phones():
    title = "Reconciliation: offending rows per check, run by run"
    wrapped = fit.wrap_titles({"layout": {"title": {"text": title}}, "data": []})
    lines = wrapped["layout"]["title"]["text"].split("<br>")
    assert " ".join(lines) == title and all(len(line) <= fit.TITLE_LINE for line in lines) and len(lines) == 2
    assert wrapped["layout"]["margin"]["t"] >= 40 + 24 * 2
    short = {"layout": {"title": {"text": "Daily revenue"}}}
    assert fit.wrap_titles(short) is short

