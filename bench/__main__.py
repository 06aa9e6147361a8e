"""`python -m bench [--scales medium,large] [--runs 5]`: run the benchmark, write results and docs.

Per scale: seed (or reuse) its database, apply queries/schema.sql (new
indexes) and VACUUM ANALYZE, then time every named query against its floor,
run the seeds' SQL side by side, build and read rollups, and export the
video jobs as CSV. Then, once for the machine rather than per scale, the
daemon's timings (bench/failover.py: leader failover after kill -9;
bench/probe_cycle.py: 100 HTTP probes against the slowest). Results are merged
into bench/results.json (a part not run keeps its previous results) and
docs/performance.md is rewritten from the whole file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import psutil
import sqlalchemy as sa

import queries
from bench import experience
from bench import export as export_bench
from bench import failover, probe_cycle, report, rollup_bench, seeds, server, timing
from bench import prepare as prepare_bench
from bench.seeding import seed_scale
from ops.core.clock import utc_now
from ops.data.db import sqlalchemy_url
from ops.data.seed import apply_schema
from ops.workbench.index_doctor import sample_params

RESULTS = Path(__file__).resolve().parent / "results.json"


def log(msg: str) -> None:
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def _engine(url: str, read_only: bool) -> sa.Engine:
    opts = "-c statement_timeout=0" + (" -c default_transaction_read_only=on" if read_only else "")
    # pooled like ops.data.db's engines: a reader pays for a connection once, not per call
    return sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True,
                            connect_args={"options": opts, "application_name": "opsbench-bench"})


def machine() -> dict:
    return {"cores": psutil.cpu_count(logical=True), "physical_cores": psutil.cpu_count(logical=False),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform(),
            "python": platform.python_version(), "cpu": platform.processor() or platform.machine()}


def bench_scale(scale: str, runs: int, reseed: bool, skip_export: bool) -> dict:
    rec = None if reseed else server.load_record(scale)
    if rec is None:
        rec = seed_scale(scale, log=log)
    else:
        log(f"{scale}: reusing the database seeded at {rec['anchor']} ({rec['seconds']} s to seed)")
    url = server.url(scale)
    t0 = time.monotonic()
    apply_schema(url)              # indexes added to schema.sql since the seed
    rw = _engine(url, read_only=False)
    with rw.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        queries.load("bench/bench").vacuum_analyze.execute(c)
    prepare_s = round(time.monotonic() - t0, 1)
    log(f"{scale}: schema applied and vacuumed in {prepare_s} s")

    ro = _engine(url, read_only=True)
    with ro.connect() as c:
        settings = dict(queries.load("bench/bench").server_settings.execute(c).mappings().one())
    anchor = dt.datetime.fromisoformat(rec["anchor"])
    today = anchor.date()
    floor_ms = timing.floors(ro, runs)
    sizes = timing.table_rows(ro)
    log(f"{scale}: floors {floor_ms}")
    some_user = queries.reconciliation.negative_balances(ro)["user_id"].iloc[0]

    results = []
    for q in queries.all_queries(internal=True):  # the rollups' extraction is timed too
        params = sample_params(q, today, now=anchor - dt.timedelta(hours=1))
        for p in q.params:
            if p.type == "uuid":
                params[p.name] = str(some_user)
        try:
            t = timing.time_query(ro, q, params, runs, floor_ms, sizes)
            results.append(timing.as_dict(t))
            log(f"{scale}: {q.qualified_name}: {t.median_ms} ms, x{t.ratio} of {t.floor_table}")
        except Exception as e:  # one broken query must not lose the whole run
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            results.append({"query": q.qualified_name, "error": reason})
            log(f"{scale}: {q.qualified_name}: FAILED {reason}")

    log(f"{scale}: what the founder waits for")
    waits = experience.run(scale, anchor, floor_ms, ro, runs, log)
    log(f"{scale}: rollups")
    roll = rollup_bench.run(ro, rw, anchor, runs)
    log(f"{scale}: seeds' SQL side by side")
    seed_cmp = seeds.compare_all(ro, runs, state=rw)
    exp = None
    if not skip_export:
        log(f"{scale}: CSV export")
        window_start = dt.datetime.fromisoformat(rec["window"]["start"]).date()
        exp = export_bench.export(url, window_start.isoformat(), today.isoformat())
        log(f"{scale}: export {exp['rows']} rows, peak RSS {exp['peak_rss_mb']} MB")
    log(f"{scale}: pooler-safe connections (no prepared statements, settings per transaction)")
    prep = prepare_bench.run(url, max(runs, 5), today - dt.timedelta(days=1))
    log(f"{scale}: {json.dumps(prep)}")
    rw.dispose()
    ro.dispose()
    return {"prepare": prep, "scale": scale, "seed": rec, "prepare_seconds": prepare_s, "server": settings, "floors_ms": floor_ms,
            "table_rows": {t: sizes.get(t) for t in timing.FLOOR_TABLES}, "queries": results, "seeds": seed_cmp,
            "rollups": roll, "export": exp, "experience": waits, "runs": runs, "finished_at": utc_now().isoformat()}


def _parts(stored: dict, parts: set[str], scales: list[str], runs: int) -> None:
    """The quick parts of the benchmark alone: the generator at each scale, the CLI's start."""
    if "cli" in parts:
        log("CLI start against a bare Python start")
        stored["cli_start"] = {**experience.cli_start(runs, log), "finished_at": utc_now().isoformat()}
    if "seed" in parts:
        for scale in scales:
            stored.setdefault("generator", {})[scale] = seed_scale(scale, log=log)
            RESULTS.write_text(json.dumps(stored, indent=1, default=str) + "\n")
    stored["machine"] = machine()
    RESULTS.write_text(json.dumps(stored, indent=1, default=str) + "\n")
    log(f"written to {RESULTS}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="medium,large", help="comma-separated: small, medium, large")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per query (median reported)")
    ap.add_argument("--reseed", action="store_true", help="seed again even if the scale's database exists")
    ap.add_argument("--skip-export", action="store_true", help="leave out the CSV export")
    ap.add_argument("--report-only", action="store_true", help="rewrite docs/performance.md from results.json")
    ap.add_argument("--skip-daemon", action="store_true", help="leave out the daemon's failover and probe timings")
    ap.add_argument("--failover-trials", type=int, default=3, help="leader failovers to time (median reported)")
    ap.add_argument("--parts", default="all",
                    help="all, or a comma-separated subset of: seed (generate each scale anew and time it), "
                         "cli (opsbench --help and query --list against a bare Python start)")
    args = ap.parse_args(argv)

    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"scales": {}}
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"all", "seed", "cli"}:
        ap.error(f"--parts: expected all or a subset of seed, cli; got {args.parts!r}")
    if not args.report_only and parts != {"all"}:
        _parts(stored, parts, [s.strip() for s in args.scales.split(",") if s.strip()], args.runs)
    elif not args.report_only:
        for scale in [s.strip() for s in args.scales.split(",") if s.strip()]:
            stored["scales"][scale] = bench_scale(scale, args.runs, args.reseed, args.skip_export)
            stored.setdefault("generator", {})[scale] = stored["scales"][scale]["seed"]
            if stored["scales"][scale].get("experience"):
                stored["cli_start"] = stored["scales"][scale]["experience"]["cli"]
            stored["machine"] = machine()
            RESULTS.write_text(json.dumps(stored, indent=1, default=str) + "\n")   # after every scale
            log(f"{scale}: written to {RESULTS}")
        if not args.skip_daemon:
            log("daemon: leader failover after kill -9, and one cycle of 100 HTTP probes")
            stored["daemon"] = {"failover": failover.run(args.failover_trials, log),
                                "probe_cycle": probe_cycle.run(args.runs, log), "finished_at": utc_now().isoformat()}
            stored["machine"] = machine()
            RESULTS.write_text(json.dumps(stored, indent=1, default=str) + "\n")
            log(f"daemon: written to {RESULTS}")
    path = report.write(stored)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
