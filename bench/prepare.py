"""What pooler-safe connections cost on a direct connection (issue 23, items 3 and 4).

opsbench's engines never let psycopg prepare statements (`prepare_threshold=None`:
a transaction pooler cannot keep them) and begin every transaction with
`tools/session.apply_local` (read-only and timeouts that survive a pooler
dropping `options`). Both cost something only on a direct connection, where
neither is needed. Measured here, interleaved (ops-style, prepared, bare) so a
noisy moment falls on all alike, as the wall time of one transaction running:

- `small`: a state-store statement the daemon runs every second (the leader's
  `holds_lock`), where planning is a large share of the time;
- `series`: `revenue.daily` over one week, an analytics query whose planning
  is a small share.

Variants: `bare` (psycopg default, prepares after 5 executions; no per-
transaction settings), `unprepared` (prepare_threshold=None, no settings),
`opsbench` (what ops.data.db makes: unprepared plus apply_local).

`python -m bench.prepare [URL] [--runs N]` prints the figures (the embedded
demo database when no URL); `python -m bench` records them per scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.pool import QueuePool

import queries
from bench.timing import interleaved_ms
from ops.data import db, session

TX_PER_SAMPLE = 50   # transactions per timed sample: one transaction is too short to time alone


def _engine(url: str, *, prepare: bool, per_transaction: bool) -> sa.Engine:
    args: dict[str, Any] = {"application_name": "opsbench-bench"}
    if not prepare:
        args["prepare_threshold"] = None
    eng = sa.create_engine(db.sqlalchemy_url(url), poolclass=QueuePool, pool_size=1, connect_args=args)
    if per_transaction:
        session.set_local_each_transaction(eng, statement_timeout_ms=60_000, lock_timeout_ms=None, read_only=True)
    return eng


def _workload(engine: sa.Engine, statement: Callable[[sa.Connection], Any]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(TX_PER_SAMPLE):
            with engine.begin() as conn:
                statement(conn)
    return run


def run(url: str, runs: int, day: dt.date) -> dict:
    """Per workload, the median ms of one transaction for each variant, and the opsbench overheads."""
    variants = {
        "bare": _engine(url, prepare=True, per_transaction=False),
        "unprepared": _engine(url, prepare=False, per_transaction=False),
        "opsbench": _engine(url, prepare=False, per_transaction=True),
    }
    lock = queries.load("state/daemon").holds_lock
    revenue = queries.load("revenue").daily
    workloads = {
        "small": lambda c: lock.execute(c, key=1).scalar(),
        "series": lambda c: revenue.execute(c, start=day - dt.timedelta(days=6), end=day, tz="UTC").fetchall(),
    }
    out: dict[str, Any] = {"transactions_per_sample": TX_PER_SAMPLE, "runs": runs}
    try:
        for name, statement in workloads.items():
            ms = interleaved_ms({k: _workload(e, statement) for k, e in variants.items()}, runs, warmup=1)
            per_tx = {k: round(v / TX_PER_SAMPLE, 3) for k, v in ms.items()}
            out[name] = {
                "ms_per_transaction": per_tx,
                "unprepared_extra_ms": round(per_tx["unprepared"] - per_tx["bare"], 3),
                "apply_local_extra_ms": round(per_tx["opsbench"] - per_tx["unprepared"], 3),
                "opsbench_vs_bare": round(per_tx["opsbench"] / per_tx["bare"], 2) if per_tx["bare"] else None,
            }
    finally:
        for e in variants.values():
            e.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.prepare", description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?", help="a direct PostgreSQL URL (default: the embedded demo database)")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--day", default=None, help="last day of the revenue week (default: the demo's last day)")
    args = ap.parse_args(argv)
    url = args.url
    day = dt.date.fromisoformat(args.day) if args.day else None
    if url is None:
        from ops.core.settings import get_settings
        from ops.data.seed import last_complete_day, seed_embedded

        s = get_settings()
        seed_embedded(s)
        url = db.resolve("analytics", s).dsn
        day = day or last_complete_day(s, s.tz)
    print(json.dumps(run(url, args.runs, day or dt.date.today()), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
