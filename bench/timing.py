"""Time named queries against their floor.

A query's time is the wall time a user waits: execute, fetch every row into a
DataFrame (the loader's own call), median of `runs` after one warm-up run. Its
floor, measured the same way in the same run, is one sequential pass
(`SELECT count(*)`) over the largest table the query reads, found in its plan.
One `EXPLAIN (ANALYZE, BUFFERS)` run gives rows and buffers (shared hit + read,
8 kB pages, the whole plan tree's totals at its root).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import sqlalchemy as sa

import queries
from ops.workbench.index_doctor import explain_sql

FLOOR_TABLES = ("users", "purchases", "quota_log", "video_jobs", "error_log", "rate_limit_log",
                "idempotency_keys", "admin_actions", "models", "products")


def median_ms(fn: Callable[[], Any], runs: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2), [round(t, 2) for t in times]


def interleaved_ms(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 1) -> dict[str, float]:
    """Median ms of each function, timed in turn within every round (A B C, A B C, ...): under a shared,
    noisy machine the load of any moment falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1000)
    return {k: round(statistics.median(v), 2) for k, v in times.items()}


def _bench_sql() -> queries.Subject:
    return queries.load("bench/bench")


def floors(engine: sa.Engine, runs: int) -> dict[str, float]:
    """Median ms of one sequential count(*) pass over each backend table."""
    out = {}
    for table in FLOOR_TABLES:
        q = getattr(_bench_sql(), f"floor_{table}")
        out[table] = median_ms(lambda: q(engine), runs)[0]
    return out


def table_rows(engine: sa.Engine) -> dict[str, int]:
    from ops.workbench.index_doctor import _tools

    with engine.connect() as c:
        return {r.table_name: int(r.est_rows) for r in _tools("catalog")["table_rows"].execute(c)}


@dataclass
class QueryTiming:
    query: str
    params: dict[str, str]
    median_ms: float
    runs_ms: list[float]
    rows: int
    shared_hit: int
    shared_read: int
    temp_blocks: int
    tables: list[str]
    floor_table: str | None
    floor_ms: float | None
    ratio: float | None
    plan_nodes: list[str]          # node types, outermost first (a compact plan summary)
    seq_scans: list[str]           # tables read by a sequential scan


def _walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def explain_analyze(engine: sa.Engine, q: queries.NamedQuery, params: dict[str, Any]) -> dict:
    with engine.connect() as c:
        raw = c.execute(explain_sql(q, analyze=True), q.bind(**params)).scalar_one()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]


def time_query(engine: sa.Engine, q: queries.NamedQuery, params: dict[str, Any], runs: int,
               floor_ms: dict[str, float], sizes: dict[str, int]) -> QueryTiming:
    med, all_runs = median_ms(lambda: q(engine, **params), runs)
    plan = explain_analyze(engine, q, params)
    root = plan["Plan"]
    nodes = list(_walk(root))
    tables = sorted({n["Relation Name"] for n in nodes if n.get("Relation Name")})
    backend_tables = [t for t in tables if t in floor_ms]
    floor_table = max(backend_tables, key=lambda t: sizes.get(t, 0)) if backend_tables else None
    fl = floor_ms.get(floor_table) if floor_table else None
    return QueryTiming(
        query=q.qualified_name, params={k: str(v) for k, v in params.items()}, median_ms=med, runs_ms=all_runs,
        rows=int(root.get("Actual Rows", 0)),
        shared_hit=int(root.get("Shared Hit Blocks", 0)), shared_read=int(root.get("Shared Read Blocks", 0)),
        temp_blocks=int(root.get("Temp Read Blocks", 0)) + int(root.get("Temp Written Blocks", 0)),
        tables=tables, floor_table=floor_table, floor_ms=fl,
        ratio=round(med / fl, 2) if fl else None,
        plan_nodes=[n["Node Type"] for n in nodes][:12],
        seq_scans=sorted({n["Relation Name"] for n in nodes if n.get("Node Type") == "Seq Scan"}),
    )


def as_dict(t: QueryTiming) -> dict:
    return asdict(t)


def same_frame(a, b) -> bool:
    """Do two query results hold the same rows (floats to 1e-12)? The bench's raw-vs-rollups check."""
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False,
                                      rtol=1e-12)
        return True
    except AssertionError:
        return False
