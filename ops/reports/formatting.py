"""How numbers, money and times are written, once, for the notebooks, the HTML report and the digest.

* `percent(0.0123, 2)` -> '1.23%'; `points(0.0106)` -> '+1.06 pp' (a difference of two rates is in
  percentage points, never a percentage); `signed_percent(0.25)` -> '+25.0%' (a relative change).
* `money(1234.5, "USD")` -> '1,234.50 USD'; without a currency '1,234.50'.
* `whole(1234.0)` -> '1,234'; a missing value is '–' in every formatter, never NaN or None.
* `when(ts)` -> '2026-11-30 14:05:12' (no microseconds, no offset: the column says the zone).
* `yes_no(True)` -> 'yes': a shared page never shows Python's True/False/None/NaN/NaT.
* `table(df, currency=...)` -> a pandas Styler that applies all of the above by column name and type,
  so every table a notebook or the report shows reads the same. Money columns take the row's own
  `currency` column when there is one.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from numbers import Number

import numpy as np
import pandas as pd

MISSING = "–"

PERCENT_COLUMNS = {"error_rate", "failure_rate", "stickiness", "share", "retention", "wilson_low",
                   "wilson_high", "uptime", "success_rate", "rate"}
MONEY_COLUMNS = {"gross", "refunds", "net", "arppu", "price", "revenue", "amount", "cumulative_net"}


def _missing(x) -> bool:
    if x is None or x is pd.NaT:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def percent(x, digits: int = 1) -> str:
    """A share (0.0123) as '1.2%'."""
    if _missing(x):
        return MISSING
    return f"{float(x) * 100:.{digits}f}%"


def signed_percent(x, digits: int = 1) -> str:
    """A relative change (0.25 = a quarter more) as '+25.0%'."""
    if _missing(x):
        return MISSING
    return f"{float(x) * 100:+.{digits}f}%"


def points(x, digits: int = 2) -> str:
    """The difference of two rates (0.0106) as '+1.06 pp'."""
    if _missing(x):
        return MISSING
    return f"{float(x) * 100:+.{digits}f} pp"


def money(x, currency: str | None = None, digits: int = 2) -> str:
    """'1,234.50 USD' (or '1,234.50' without a currency)."""
    if _missing(x):
        return MISSING
    text = f"{Decimal(str(x)) if isinstance(x, Decimal) else float(x):,.{digits}f}"
    return f"{text} {currency.upper()}" if currency else text


def whole(x) -> str:
    """A count: '1,234'; a count that is not whole (an average) keeps one decimal."""
    if _missing(x):
        return MISSING
    v = float(x)
    return f"{v:,.0f}" if v.is_integer() else f"{v:,.1f}"


def yes_no(x) -> str:
    """A flag as a reader says it: 'yes' / 'no' ('–' when unknown), never Python's True/False."""
    if _missing(x):
        return MISSING
    return "yes" if bool(x) else "no"


def seconds(x, digits: int = 1) -> str:
    if _missing(x):
        return MISSING
    return f"{float(x):,.{digits}f} s"


def number(x, digits: int = 2) -> str:
    if _missing(x):
        return MISSING
    return f"{float(x):,.{digits}f}"


def when(x) -> str:
    """A date or a time without microseconds or offset."""
    if _missing(x):
        return MISSING
    if isinstance(x, pd.Timestamp):
        x = x.to_pydatetime()
    if isinstance(x, dt.datetime):
        return x.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(x, dt.date):
        return x.isoformat()
    return str(x)


def duration(x) -> str:
    if _missing(x):
        return MISSING
    return str(pd.Timedelta(x).floor("s")).removeprefix("0 days ")


# -- tables --------------------------------------------------------------------------

def column_kind(name: str, series: pd.Series) -> str:
    """percent | money | seconds | ms | whole | number | when | duration | text, by name first, then type."""
    key = str(name).lower()
    if pd.api.types.is_bool_dtype(series):
        return "flag"
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
        return "when"
    if pd.api.types.is_timedelta64_dtype(series):
        return "duration"
    values = series.dropna()
    numeric = pd.api.types.is_numeric_dtype(series) or (
        len(values) and all(isinstance(v, (Number, Decimal)) and not isinstance(v, bool) for v in values))
    if numeric:
        fixed = re.search(r"\bin ([A-Z]{3})$", str(name))
        if fixed:   # "net in USD": converted amounts, all in one currency whatever the row's
            return f"money:{fixed.group(1)}"
        if key in PERCENT_COLUMNS or key.endswith(("_rate", "_share")):
            return "percent"
        if key in MONEY_COLUMNS or key.startswith(("gross_", "net_", "refunds_")):
            return "money"
        if key.endswith(("_seconds", "_s")):
            return "seconds"
        if key.endswith("_ms"):
            return "ms"
        if pd.api.types.is_integer_dtype(series) or all(float(v).is_integer() for v in values):
            return "whole"
        return "number"
    if len(values) and all(isinstance(v, (dt.date, pd.Timestamp)) for v in values):
        return "when"
    if len(values) and all(isinstance(v, (bool, np.bool_)) for v in values):
        return "flag"     # a boolean column with NULLs comes as object
    return "text"


_FORMATTERS = {
    "percent": lambda v: percent(v, 2),
    "seconds": seconds,
    "ms": lambda v: MISSING if _missing(v) else f"{float(v):,.0f} ms",
    "whole": whole,
    "number": number,
    "when": when,
    "duration": duration,
    "flag": yes_no,
    "text": lambda v: anything(v),
}


def anything(v) -> str:
    """A cell of a column with mixed values (a transposed row): each value by its own type."""
    if _missing(v):
        return MISSING
    if isinstance(v, (bool, np.bool_)):
        return yes_no(v)
    if isinstance(v, (dt.date, pd.Timestamp)):
        return when(v)
    if isinstance(v, (Number, Decimal)):
        return whole(v) if float(v).is_integer() else number(v)
    return str(v)


def table(df: pd.DataFrame, currency: str | None = None, *, kinds: dict[str, str] | None = None):
    """A Styler of df with every column written by its kind (see `column_kind`); `kinds` overrides by name.

    Money columns show the row's `currency` column when df has one (each row its own), else `currency`.
    """
    kinds = {**{c: column_kind(c, df[c]) for c in df.columns}, **(kinds or {})}
    styler = df.style
    per_row = "currency" in df.columns and df.index.is_unique
    for col, kind in kinds.items():
        if col not in df.columns:
            continue
        if kind.startswith("money:"):
            styler = styler.format(lambda v, c=kind.split(":", 1)[1]: money(v, c), subset=[col])
        elif kind == "money":
            if per_row:
                for cur in df["currency"].dropna().unique():
                    rows = df.index[df["currency"] == cur]
                    styler = styler.format(lambda v, c=str(cur): money(v, c), subset=pd.IndexSlice[rows, [col]])
                rest = df.index[df["currency"].isna()]
                if len(rest):
                    styler = styler.format(lambda v: money(v, currency), subset=pd.IndexSlice[rest, [col]])
            else:
                styler = styler.format(lambda v: money(v, currency), subset=[col])
        else:
            styler = styler.format(_FORMATTERS[kind], subset=[col])
    # a phone-width table: no wrapped numbers, tight cells, text on the left; a plain 0..n index is not shown
    styles = [{"selector": "th, td", "props": [("white-space", "nowrap"), ("padding", "0.25em 0.55em")]}]
    for i, col in enumerate(df.columns):
        if kinds.get(col) in ("text", "flag"):
            styles.append({"selector": f"td.col{i}, th.col_heading.col{i}", "props": [("text-align", "left")]})
    styler = styler.set_table_styles(styles, overwrite=False)
    if isinstance(df.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    if df.index.nlevels == 1 and len(df.index):
        index_kind = column_kind(df.index.name or "", df.index.to_series())
        if index_kind == "when":
            styler = styler.format_index(_FORMATTERS[index_kind], axis=0)
        elif index_kind == "flag" or df.index.hasnans:
            styler = styler.format_index(anything, axis=0)
    return styler
