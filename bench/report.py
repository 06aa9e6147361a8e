"""docs/performance.md from bench/results.json: tables per scale, goals, and why a goal is missed.

The "why" of a missed goal is written by hand in bench/notes.py after reading
the plans (results.json keeps each query's plan summary and buffers); the
numbers in the tables always come from the last run.
"""

from __future__ import annotations

from pathlib import Path

from bench import goals, notes

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
RATIO_GOAL = 2.0
RECON_GOAL = 5.0
SERIES_GOAL_MS = 50.0


def _ms(v) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def _scale_section(name: str, r: dict) -> list[str]:
    seed = r["seed"]
    rows = r["table_rows"]
    out = [f"## {name}", ""]
    out.append(f"Seeded in **{seed['seconds']} s** (peak RSS: seeding client {seed['peak_client_rss_mb']} MB, "
               f"server backend {seed['peak_server_backend_rss_mb']} MB incl. touched shared buffers); "
               f"anchor {seed['anchor']}. Schema + VACUUM ANALYZE before timing: {r['prepare_seconds']} s.")
    out.append("")
    out.append("Rows: " + ", ".join(f"{t} {rows[t]:,}" for t in ("users", "purchases", "quota_log", "video_jobs",
                                                                  "error_log", "rate_limit_log") if rows.get(t)))
    out.append("")
    out.append("Floors (one `SELECT count(*)` pass, median ms): " + ", ".join(
        f"{t} {_ms(v)}" for t, v in r["floors_ms"].items() if rows.get(t, 0) and rows[t] > 10_000))
    out.append("")
    out.append(f"### Named queries (median of {r['runs']} runs after a warm-up; last 30 days where there is a window)")
    out.append("")
    out.append("| query | median ms | rows | buffers hit / read | largest table | floor ms | × floor | ≤ 2× |")
    out.append("|---|---:|---:|---:|---|---:|---:|:-:|")
    for q in r["queries"]:
        if "error" in q:
            out.append(f"| {q['query']} | error: {q['error'][:60]} | | | | | | |")
            continue
        ok = "-" if q["ratio"] is None else ("yes" if q["ratio"] <= RATIO_GOAL else "**no**")
        out.append(f"| {q['query']} | {_ms(q['median_ms'])} | {q['rows']:,} | {q['shared_hit']:,} / "
                   f"{q['shared_read']:,} | {q['floor_table'] or '-'} | {_ms(q['floor_ms'])} | "
                   f"{'-' if q['ratio'] is None else q['ratio']} | {ok} |")
    out.append("")
    out.append("### The seeds' SQL side by side")
    out.append("")
    if any(s.get("interleaved") for s in r["seeds"]):
        out.append("Timed interleaved in one block (seeds, opsbench, opsbench through the rollups; and again), "
                   "every session with TimeZone and `tz` spelled `UTC`. *via rollups* is the same query through "
                   "the rollup-aware path `opsbench query` and the notebooks use (closed days from the rollups, "
                   "today raw; same numbers: *equal* compares the frames).")
        out.append("")
    out.append("| analysis | opsbench query | seeds ms | opsbench raw ms | seeds ÷ raw | opsbench via rollups ms | "
               "seeds ÷ via rollups | equal | days/users compared | agree |")
    out.append("|---|---|---:|---:|---:|---:|---:|:-:|---:|---:|")
    for s in r["seeds"]:
        rolled = s.get("opsbench_rollups_ms")
        eq = "-" if rolled is None else ("yes" if s.get("rollups_equal_raw") else "NO")
        out.append(f"| {s['analysis']} | {s['opsbench_query']} | {_ms(s['seeds_ms'])} | {_ms(s['opsbench_ms'])} | "
                   f"{s['speedup']} | {_ms(rolled)} | {s.get('speedup_rollups') or '-'} | {eq} | "
                   f"{s['compared']} | {s['agree']} |")
    out.append("")
    for s in r["seeds"]:
        details = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in s["details"].items())
        extra = notes.SEEDS_EXTRA.get(s["analysis"], "")
        out.append(f"- **{s['analysis']}** ({details}). {s['verdict']} {extra}".rstrip())
    out.append("")
    ro = r["rollups"]
    out.append("### Rollups (365-day series)")
    out.append("")
    out.append(f"Backfill of every day: {ro['backfill']['seconds']} s ({ro['backfill']['rows_read']:,} rows read); "
               f"a daily refresh of the last 3 closed days: {ro['daily_refresh']['seconds']} s "
               f"({ro['daily_refresh']['rows_changed']} rows changed on unchanged data).")
    out.append("")
    out.append("| series | whole reader ms (rollups + today raw) | closed days from rollups ms | today from raw ms | "
               "raw 365 days ms | equals raw | < 50 ms |")
    out.append("|---|---:|---:|---:|---:|:-:|:-:|")
    for name, s in ro["series"].items():
        goal = "yes" if s["goal_met_with_today"] else ("closed days only" if s["goal_met_closed_days"] else "**no**")
        out.append(f"| {name} | {_ms(s['series_ms'])} | {_ms(s['closed_days_from_rollups_ms'])} | "
                   f"{_ms(s['today_from_raw_ms'])} | {_ms(s['raw_365_days_ms'])} | {'yes' if s['equals_raw'] else 'NO'} "
                   f"| {goal} |")
    out.append("")
    if ro.get("activity_today_raw_lookback_ms") is not None and "activity (with WAU/MAU)" in ro["series"]:
        out.append(f"Today's activity row: {_ms(ro['series']['activity (with WAU/MAU)']['today_from_raw_ms'])} ms "
                   f"from today's raw user-days plus the stored user-days of the 29 days before, against "
                   f"{_ms(ro['activity_today_raw_lookback_ms'])} ms for activity.daily of one day (29 days of "
                   "raw look-back), in the same run.")
        out.append("")
    aware = ro.get("aware_30_days")
    if aware:
        out.append("### Series queries through the rollup-aware path (30 days ending today)")
        out.append("")
        out.append("What `opsbench query NAME` and `queries.NAME(engine)` run by default (ops/data/series.py): "
                   "the closed days from the rollups, today from the raw tables; timed interleaved with the raw "
                   "query and the floor (activity.summary: the 30 closed days before today, the window the "
                   "rollups answer).")
        out.append("")
        out.append("| query | rollup-aware ms | raw ms | floor ms | floor table | × floor | ≤ 2× | equals raw |")
        out.append("|---|---:|---:|---:|---|---:|:-:|:-:|")
        for name, a in aware.items():
            ok = "-" if a["ratio"] is None else ("yes" if a["ratio"] <= RATIO_GOAL else "**no**")
            out.append(f"| {name} | {_ms(a['aware_ms'])} | {_ms(a['raw_ms'])} | {_ms(a['floor_ms'])} | "
                       f"{a['floor_table']} | {a['ratio']} | {ok} | {'yes' if a['equals_raw'] else 'NO'} |")
        out.append("")
        for name, a in aware.items():
            if a["aware_ms"] > a["raw_ms"]:
                out.append(f"- `{name}` through the rollups is slower than raw here ({_ms(a['aware_ms'])} vs "
                           f"{_ms(a['raw_ms'])} ms): {notes.AWARE_WHY.get(name, '')}")
                out.append("")
    e = r.get("export")
    if e:
        out.append("### Streaming CSV export")
        out.append("")
        out.append(f"`opsbench query {e['query']} --format csv > file` over {e['params']['start']}..{e['params']['end']}: "
                   f"{e['rows']:,} rows, {e['csv_mb']} MB of CSV in {e['seconds']} s, peak RSS of the exporting "
                   f"process **{e['peak_rss_mb']} MB** (goal < {e['goal_mb']:.0f} MB: "
                   f"{'met' if e['goal_met'] else 'missed'}).")
        out.append("")
    out += _prepare_section(r.get("prepare"))
    return out


def _prepare_section(p: dict | None) -> list[str]:
    """bench/prepare.py: what pooler-safe connections (no prepared statements, settings per transaction) cost
    on a direct connection."""
    if not p:
        return []
    out = ["### Pooler-safe connections on a direct connection", "",
           f"Median ms per transaction ({p['transactions_per_sample']} transactions per sample, {p['runs']} samples, "
           "interleaved): *bare* lets psycopg prepare (after 5 executions), *unprepared* is "
           "`prepare_threshold=None`, *opsbench* adds `tools/session.apply_local` at each transaction start.", "",
           "| workload | bare | unprepared | opsbench | unprepared extra | apply_local extra |",
           "|---|---:|---:|---:|---:|---:|"]
    for name in ("small", "series"):
        w = p.get(name)
        if w:
            t = w["ms_per_transaction"]
            out.append(f"| {name} | {t['bare']} | {t['unprepared']} | {t['opsbench']} | "
                       f"{w['unprepared_extra_ms']} | {w['apply_local_extra_ms']} |")
    out.append("")
    return out


def current(r: dict | None) -> bool:
    """Whether a scale's results come from the current harness (the rollup-aware readers measured)."""
    return bool(r and r.get("rollups", {}).get("aware_30_days"))


def _goals(results: dict) -> list[str]:
    out = ["## Goals", ""]
    for name in ("large", "medium"):
        r = results["scales"].get(name)
        if not current(r):
            continue
        out.append(f"Measured at `{name}`" + ("" if name == "large" else f" ({notes.LARGE_NOT_RUN})") + ":")
        out.append("")
        out += _experience_goals(r)
        missed = [q for q in r["queries"] if "error" not in q and q["ratio"] is not None and q["ratio"] > RATIO_GOAL]
        timed = [q for q in r["queries"] if "error" not in q and q["ratio"] is not None]
        out.append(f"- **Each named query within 2× its floor**: {len(timed) - len(missed)} of {len(timed)} "
                   f"are; missed by:")
        for q in sorted(missed, key=lambda q: -q["ratio"]):
            why = notes.WHY.get(q["query"], notes.default_why(q))
            out.append(f"  - `{q['query']}` {q['ratio']}× ({_ms(q['median_ms'])} ms vs {_ms(q['floor_ms'])} ms "
                       f"floor on {q['floor_table']}): {why}")
        rec = next((s for s in r["seeds"] if s["analysis"] == "credit reconciliation"), None)
        if rec:
            met = rec["speedup"] is not None and rec["speedup"] >= RECON_GOAL
            out.append(f"- **Reconciliation ≥ 5× faster than the seeds' SQL**: {rec['speedup']}× "
                       f"({'met' if met else 'missed'}). " + ("" if met else notes.RECON_WHY))
        for sname, s in r["rollups"]["series"].items():
            over = _ms(round(s["series_ms"] - SERIES_GOAL_MS, 1))
            state = "met" if s["goal_met_with_today"] else (
                f"missed by {over} ms: the 364 closed days take {_ms(s['closed_days_from_rollups_ms'])} ms from "
                f"the rollups, today's row from the raw tables the rest" if s["goal_met_closed_days"]
                else f"missed by {over} ms")
            out.append(f"- **365-day {sname} series < 50 ms**: {_ms(s['series_ms'])} ms ({state}). "
                       + ("" if s["goal_met_with_today"] else notes.SERIES_WHY.get(sname, "")))
        e = r.get("export")
        if e:
            out.append(f"- **Export < 200 MB peak RSS**: {e['peak_rss_mb']} MB for {e['rows']:,} rows "
                       f"({'met' if e['goal_met'] else 'missed'}).")
        out.append("")
        break
    return out


def _experience_goals(r: dict) -> list[str]:
    """The issue's goals for what the founder waits for, met or missed by how much."""
    out = []
    e = r.get("experience") or {}
    pieces = e.get("pieces", {})

    def goal(label: str, ms: float | None, limit: float, why: str) -> None:
        if ms is None:
            return
        met = ms <= limit
        state = "met" if met else f"missed by {_ms(round(ms - limit, 1))} ms ({round(ms / limit, 2)}× the goal)"
        out.append(f"- **{label} ≤ {_ms(limit)} ms**: {_ms(ms)} ms ({state})." + ("" if met else f" {why}"))

    goal("Daily digest build", pieces.get("daily digest", {}).get("median_ms"), 1000.0, notes.DIGEST_WHY)
    act = r["rollups"]["series"].get("activity (with WAU/MAU)")
    goal("365-day activity series with today's WAU/MAU", act and act["series_ms"], 500.0, notes.ACTIVITY_WHY)
    rec = pieces.get("reconcile job")
    if rec and rec.get("plain_checks_ms"):
        x = round(rec["median_ms"] / rec["plain_checks_ms"], 2)
        out.append(f"- **Reconcile job ≤ 2× its checks as plain statements**: {x}× "
                   f"({'met' if x <= 2 else 'missed'}); ≤ 10× the floors of the tables it reads: {rec['ratio']}× "
                   f"({'met' if rec['ratio'] and rec['ratio'] <= 10 else 'missed'})." +
                   ("" if rec["ratio"] and rec["ratio"] <= 10 else f" {notes.RECONCILE_FLOOR_WHY}"))
    slower = [s for s in r["seeds"]
              if min(v for v in (s["opsbench_ms"], s.get("opsbench_rollups_ms")) if v is not None) > s["seeds_ms"]]
    out.append("- **Every opsbench query at least as fast as the founder's SQL for the same figure** (fastest "
               "opsbench path, raw or via rollups): " + ("met" if not slower else "missed for " + "; ".join(
                   f"{s['opsbench_query']} ({_ms(min(v for v in (s['opsbench_ms'], s.get('opsbench_rollups_ms')) if v is not None))} "
                   f"vs {_ms(s['seeds_ms'])} ms): {notes.SEEDS_SLOWER_WHY.get(s['analysis'], '').rstrip('.')}" for s in slower)) + ".")
    aware = r["rollups"].get("aware_30_days", {})
    over = {n: a for n, a in aware.items() if a["ratio"] is not None and a["ratio"] > RATIO_GOAL}
    out.append(f"- **Every 30-day series query ≤ 2× its floor through the rollup-aware path**: "
               f"{len(aware) - len(over)} of {len(aware)}" + ("" if not over else "; missed by " + "; ".join(
                   f"`{n}` {a['ratio']}× ({_ms(a['aware_ms'])} vs {_ms(a['floor_ms'])} ms): "
                   f"{notes.AWARE_WHY.get(n, '').rstrip('.')}" for n, a in over.items())) + ".")
    cli = e.get("cli", {}).get("opsbench --help")
    goal("`opsbench --help`", cli and cli["median_ms"], 300.0, notes.CLI_WHY)
    return out


def _experience(results: dict) -> list[str]:
    """The table docs/performance.md leads with: what the founder waits for, per scale, against floors."""
    scales = [(n, results["scales"][n].get("experience")) for n in ("small", "medium", "large")
              if n in results["scales"] and results["scales"][n].get("experience")]
    if not scales:
        return []
    out = ["## What the founder waits for", "",
           "Median ms of the whole thing as the founder meets it, measured side by side in one run with its "
           "floor: the CLI against a bare `python -c pass`; reports and jobs against the sum of one sequential "
           "pass over each table they read; the reconcile job also against its checks run as plain statements.",
           "", "| scale | what | ms | floor ms | × floor | note |", "|---|---|---:|---:|---:|---|"]
    for name, e in scales:
        for label, t in e.get("cli", {}).items():
            out.append(f"| {name} | `{label}` | {_ms(t['median_ms'])} | {_ms(t['floor_ms'])} | {t['ratio']} | |")
        for label, t in e.get("pieces", {}).items():
            note = ""
            if "plain_checks_ms" in t:
                plain = t["plain_checks_ms"]
                note = f"checks as plain statements {_ms(plain)} ms (× {round(t['median_ms'] / plain, 2)})" \
                    if plain else ""
            if t.get("status") and t["status"] != "ok":
                note = (note + "; " if note else "") + f"status {t['status']}"
            out.append(f"| {name} | {label} | {_ms(t['median_ms'])} | {_ms(t['floor_ms'])} | {t['ratio']} | {note} |")
        d = e.get("digest_data")
        if d:
            out.append(f"| {name} | digest's 30-day series + failure codes | {_ms(d['rollups_ms'])} | | | "
                       f"read raw as before: {_ms(d['raw_ms'])} ms (same run, interleaved) |")
        r = results["scales"][name]
        act = r.get("rollups", {}).get("series", {}).get("activity (with WAU/MAU)")
        if current(r) and act:
            out.append(f"| {name} | 365-day activity series with today's WAU/MAU | {_ms(act['series_ms'])} | | | "
                       f"today's row {_ms(act['today_from_raw_ms'])} ms; with 29 days of raw look-back "
                       f"{_ms(r['rollups'].get('activity_today_raw_lookback_ms'))} ms |")
    stale = [n for n, _ in scales if not current(results["scales"][n])]
    out.append("")
    if stale:
        out.append(f"Rows of {', '.join(stale)} are from an earlier run, before the rollup-aware readers (not "
                   "re-run with this change set" + ("; " + notes.LARGE_NOT_RUN if "large" in stale else "") + ").")
        out.append("")
    return out


def _daemon(d: dict | None) -> list[str]:
    """Failover and probe-cycle timings (bench/failover.py, bench/probe_cycle.py): the real figures behind
    the bounds tests/test_leader.py and tests/test_probes.py assert with room."""
    if not d:
        return []
    f, p = d["failover"], d["probe_cycle"]
    return ["## Daemon", "",
            f"- **Leader failover** (kill -9 of the leader to the standby's first job run, two daemon processes, "
            f"default poll 1 s, lease 5 s, fence grace 4 s): median **{f['median_s']:.1f} s**, worst "
            f"{f['max_s']:.1f} s over {len(f['trials'])} trials ({', '.join(f'{t:.1f}' for t in f['trials'])} s).",
            f"- **HTTP probe cycle**: {p['endpoints']} endpoints answering in 200-497 ms took {_ms(p['cycle_ms'])} ms "
            f"against a slowest request of {_ms(p['slowest_ms'])} ms: **x{p['ratio']}** (worst x{p['max_ratio']} "
            f"over {p['runs']} cycles); one after another they would take ~35 s.", ""]


def write(results: dict) -> Path:
    m = results.get("machine", {})
    lines = ["# Performance", "",
             "Written by `python -m bench` (`make bench`) from `bench/results.json`; do not edit by hand "
             "(explanations live in `bench/notes.py`).", "",
             f"Machine: **{m.get('cores')} cores** ({m.get('physical_cores')} physical), **{m.get('memory_gb')} GB** "
             f"memory, {m.get('platform')}, Python {m.get('python')}. The box is shared with other work, so "
             "timings carry noise; medians of 5 runs."]
    any_scale = next(iter(results["scales"].values()), None)
    if any_scale:
        s = any_scale["server"]
        lines.append(f"PostgreSQL {s['server_version']} (embedded, default settings: shared_buffers "
                     f"{s['shared_buffers']}, work_mem {s['work_mem']}, {s['max_parallel_workers_per_gather']} "
                     f"parallel workers per gather, jit {s['jit']}, TimeZone {s['timezone']}).")
    lines += [""] + goals.section(results) + _experience(results)
    lines += [notes.METHOD, "", notes.SCALE_NOTE, ""]
    lines += _goals(results)
    for name in ("small", "medium", "large"):
        if name in results["scales"]:
            section = _scale_section(name, results["scales"][name])
            if not current(results["scales"][name]):
                section[0] += " (earlier run, before the rollup-aware readers)"
                why = notes.LARGE_NOT_RUN if name == "large" else f"{name} was not re-run with this change set"
                section.insert(2, f"{why[0].upper()}{why[1:]}; the figures below are that earlier run's and show "
                               "the state before this change set.\n")
            lines += section
    lines += _daemon(results.get("daemon"))
    lines += ["## Changes made from these measurements", "", notes.CHANGES, ""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return DOC
