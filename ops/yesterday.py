"""One day's headline numbers, as `make demo` prints them.

Every figure comes straight from a named query for that one local day; this
module only gathers and prints them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

import queries


@dataclass
class DayNumbers:
    day: dt.date
    tz: str
    revenue: dict[str, Any]
    activity: dict[str, Any]
    errors: dict[str, Any]
    reconciliation: pd.DataFrame


def _one_row(df: pd.DataFrame) -> dict[str, Any]:
    return df.iloc[0].to_dict() if len(df) else {}


def collect(engine: Engine, day: dt.date, tz: str) -> DayNumbers:
    with engine.connect() as conn:
        window = {"start": day, "end": day, "tz": tz}
        return DayNumbers(
            day=day,
            tz=tz,
            revenue=_one_row(queries.revenue.summary(conn, **window)),
            activity=_one_row(queries.activity.summary(conn, **window)),
            errors=_one_row(queries.errors.daily(conn, **window)),
            reconciliation=queries.reconciliation.summary(conn),
        )


def _money(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:,.2f}"


def _pct(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{100 * v:.2f} %"


def _int(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{int(v):,}"


def render(console, n: DayNumbers) -> None:
    from rich.table import Table

    r, a, e = n.revenue, n.activity, n.errors
    cur = r.get("currency") or "USD"
    console.print(f"\n[bold]Yesterday, {n.day:%A %d %B %Y}[/bold] ({n.tz})\n")

    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("Revenue", "")
    t.add_row("  gross", f"{_money(r.get('gross'))} {cur}")
    t.add_row("  refunds", f"{_money(r.get('refunds'))} {cur}")
    t.add_row("  net", f"{_money(r.get('net'))} {cur}")
    t.add_row("  purchases", _int(r.get("purchases")))
    t.add_row("  paying users", _int(r.get("paying_users")))
    t.add_row("  ARPPU", f"{_money(r.get('arppu'))} {cur}")
    t.add_row("Active users", "")
    t.add_row("  DAU", _int(a.get("dau")))
    t.add_row("  WAU (7 days)", _int(a.get("wau")))
    t.add_row("  MAU (30 days)", _int(a.get("mau")))
    t.add_row("Video jobs", "")
    t.add_row("  finished", _int(e.get("jobs")))
    t.add_row("  failed", _int(e.get("failed")))
    t.add_row("  error rate", f"{_pct(e.get('error_rate'))}  "
              f"(95 % CI {_pct(e.get('wilson_low'))} – {_pct(e.get('wilson_high'))})")
    console.print(t)

    console.print("\n[bold]Reconciliation[/bold] (whole ledger, now)")
    rec = Table(box=None, show_header=False, pad_edge=False)
    rec.add_column()
    rec.add_column(justify="right")
    rec.add_column()
    for row in n.reconciliation.itertuples(index=False):
        ok = bool(row.passed)
        rec.add_row(f"  {row.check}", _int(row.offending), "[green]ok[/green]" if ok else "[red]FAIL[/red]")
    console.print(rec)
    failing = [row.check for row in n.reconciliation.itertuples(index=False) if not row.passed]
    if failing:
        console.print(f"\n  list offending rows: [cyan]opsbench query reconciliation.{failing[0]}[/cyan]")
