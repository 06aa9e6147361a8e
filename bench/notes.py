"""Hand-written explanations for docs/performance.md, from reading the plans in bench/results.json.

The numbers are never written here: report.py takes them from the last run.
"""

from __future__ import annotations

METHOD = (
    "**Method.** Each named query runs through the loader as a user calls it (execute, fetch every row into a "
    "DataFrame): one warm-up, then the median of 5. Its *floor* is one sequential `SELECT count(*)` pass over "
    "the largest backend table its plan reads, timed the same way in the same run; `× floor` is the ratio. "
    "Buffers are from one `EXPLAIN (ANALYZE, BUFFERS)` run (8 kB pages, hit = from shared buffers, read = from "
    "the OS). Parameters: the last 30 days ending on the data's anchor day, the last hour for probes, defaults "
    "elsewhere (`ops/index_doctor.sample_params`)."
)

_SMALL = ("a small table (a few hundred thousand rows at large, a floor of ~20 ms), so any work beyond one "
          "sequential pass shows as a large ratio; the loader's fixed cost per call (~1-2 ms) is not the cause")
_REVENUE = (_SMALL + ". The duplicate rule (NOT EXISTS an earlier copy of the transaction_id) is planned as a hash "
            "anti-join over every purchase - a full sequential scan of purchases plus a hash of all its "
            "transaction ids - on top of the window's index scan, and count(DISTINCT user_id) per day sorts, "
            "spilling to temp files with 4 MB work_mem (see the temp blocks). For series, the rollups answer "
            "closed days in milliseconds (below).")
_JOBS_WINDOW = ("the last 30 days are about 40 % of video_jobs (activity grows toward the anchor day); they are read "
                "through the created_at index in index order (random heap pages where the floor reads sequentially "
                "with two parallel workers), then grouped per day.")
_ETL = ("an extraction query of the rollup refresh, timed here over 30 days; the hourly refresh reads 3 days with it "
        "and only the one-off backfill reads everything.")
_SPILL = "With the embedded server's default work_mem (4 MB) its sorts and hashes spill to temp files."

# query -> why it is slower than 2x its floor (from the plans in results.json)
WHY: dict[str, str] = {
    "export.jobs": ("returns every row of the window to Python (millions of rows into a DataFrame here); the time "
                    "is row transfer and object creation in the client, against a floor that returns one row. An "
                    "export's goal is flat memory, measured separately below."),
    "export.ledger": ("returns every ledger row of the window to Python; as export.jobs, the time is the client "
                      "building rows, not the server."),
    "activity.daily": ("reads 59 days of jobs and purchases (the 29 days before the window make the first day's "
                       "MAU whole), de-duplicates user-days with UNION (a sort) and runs the spans window function (users are "
                       "read only through the window's signups). " + _SPILL + " This is the raw reference; "
                       "`activity.daily` through the rollup-aware path (the 30-day table below) reads only today "
                       "raw."),
    "activity.summary": ("distinct users over 30+ days of jobs and purchases (UNION, then count(DISTINCT) four "
                         "ways): sorts of millions of user-days. " + _SPILL),
    "activity.retention_weekly": ("joins every cohort user to all their active days in the window and counts "
                                  "distinct users per cohort-week: sorts of the user-days. " + _SPILL),
    "rollups.user_days": _ETL + " " + _SPILL,
    "rollups.durations_days": _ETL + " percentile_cont sorts each day's durations. " + _SPILL,
    "rollups.failure_codes_days": _ETL,
    "rollups.jobs_days": _ETL + " " + _JOBS_WINDOW,
    "rollups.revenue_days": _ETL + " " + _REVENUE,
    "rollups.dau_days": ("meant for one day (today's row of a DAU series, ~5 ms); timed here over 30 days it "
                         "de-duplicates a month of user-days with UNION. " + _SPILL),
    "reconciliation.summary": ("every shipped check in one statement: quota_log is read once per aggregate (sum by "
                               "user, credits and App Store debits by transaction, refunds by job) plus users, "
                               "purchases and video_jobs whole; "
                               "one pass over the largest table cannot be its floor - the sum of its checks is. "
                               + _SPILL),
    "reconciliation.balance_vs_ledger": ("aggregates every ledger row by user (a hash with one entry per user: a "
                                         "million at large) and joins every user; the floor only counts. " + _SPILL),
    "reconciliation.ledger_missing_jobs": ("anti-joins every ledger row with a job_id against every job id: a hash "
                                           "of all video_jobs ids. " + _SPILL),
    "reconciliation.purchase_credit_mismatch": ("aggregates purchases by transaction_id (array_agg) and the "
                                                "iap_purchase ledger rows by transaction_id, then a full join."),
    "reconciliation.failed_jobs_without_refund": ("collects the distinct job_ids of every generation_refund "
                                                  "ledger row (a large share of quota_log) before the anti-join."),
    "reconciliation.duplicate_transactions": (_SMALL + ": GROUP BY transaction_id reads every purchase through "
                                              "idx_purchases_transaction_id in key order, one heap visit per row "
                                              "(~320 k buffer hits where the floor reads a few thousand pages)."),
    "errors.durations": ("percentile_cont sorts each day's durations; " + _JOBS_WINDOW + " " + _SPILL),
    "errors.daily": _JOBS_WINDOW,
    "errors.by_provider": _JOBS_WINDOW,
    "errors.by_model": _JOBS_WINDOW,
    "errors.log_top_codes": _SMALL + ": two count(DISTINCT) per code sort the window's rows, spilling to temp files.",
    "errors.log_top_endpoints": (_SMALL + ": three count(DISTINCT) and mode() per endpoint sort the window's rows, "
                                 "spilling to temp files."),
    "revenue.daily": _REVENUE,
    "revenue.summary": _REVENUE,
    "revenue.by_product": _REVENUE,
    "revenue.currencies": _REVENUE,
}

RECON_WHY = ("The seeds' query runs two correlated subqueries per user, each an index range scan of that user's "
             "ledger rows; with the (user_id, created_at) index that is cheaper than it looks, and opsbench's "
             "aggregate-then-join spills with 4 MB work_mem. Raising work_mem for the analytics role "
             "(`ALTER ROLE ... SET work_mem = '64MB'`) keeps the aggregate in memory.")
SERIES_WHY: dict[str, str] = {
    "revenue": ("The closed days are read from the rollups in a few ms; the rest is today's row from the raw "
                "tables (revenue.daily for one day), which at `large` still probes the purchases table for "
                "duplicate transaction ids. After the NOT MATERIALIZED change below today's part fell from 57 to "
                "34 ms at large (measured separately), which brings the whole read to roughly 50 ms."),
    "dau": ("The closed days take 1.5 ms from the rollups; today's row (rollups.dau_days: one day of jobs and "
            "purchases, ~45 000 job rows at large read through the created_at index) is the rest. Missed by a "
            "few ms at large; an index on video_jobs (created_at, user_id) would make today's read index-only."),
    "activity (with WAU/MAU)": ("The closed days come from the rollups in milliseconds; today's row reads today's "
                                "user-days from the raw tables and hands them to the state store, which adds the "
                                "stored user-days of the 29 days before (no raw look-back any more); what is left "
                                "is today's raw read and the spans pass over a month of stored user-days."),
    "durations": ("The closed days come from the rollups; today's row is errors.durations of one day from the raw "
                  "tables (a sort of the day's completed jobs)."),
}

LARGE_NOT_RUN = (
    "large was not re-run: seeding it took 1046 s in the earlier run and medium took 131 s on this shared "
    "2-core box today (3× its earlier 43 s under the other sessions' load), so large would need well over "
    "15 minutes to generate, before a bench run of about 1.5 hours at that scale")
DIGEST_WHY = ("What is left after the rollups is the digest's fixed work: the reconcile result and the alert, "
              "run and cleanup sections from the state store, today's raw rows for the 30-day charts, the "
              "error_log codes of the day (raw: their distinct users and endpoints do not add up across days), "
              "and building the message.")
ACTIVITY_WHY = ("The 364 closed days take milliseconds from the rollups; today's row is the rest: today's "
                "user-days read raw, then the distinct users of the 7 and 30 days ending today counted over "
                "a month of stored user-days on the state side (~140 000 at medium, a sort of them under "
                "today's load). Counting incrementally (yesterday's stored WAU/MAU, minus the users of the day "
                "leaving the range who were not active since, plus today's users not active before: index "
                "probes on an extra (tz, user_id, day) index of the stored user-days) would read only two days' "
                "users; not built.")
RECONCILE_FLOOR_WHY = ("Its six checks each read whole tables (the ledger three times) with hashes and sorts; "
                       "their sum, not one pass, is what any runner of them pays.")
SEEDS_SLOWER_WHY: dict[str, str] = {
    "daily active users": ("activity.daily does more than the seeds' DAU: 59 days of jobs and purchases (the first "
                           "day's MAU), WAU, MAU, stickiness, new vs returning users."),
    "error rate": ("errors.daily also counts unfinished jobs apart and computes the Wilson interval; through the "
                   "rollups only today is read raw."),
    "daily revenue": "revenue.daily applies the duplicate-transaction rule and refunds, which the seeds skip.",
}
AWARE_WHY: dict[str, str] = {
    "activity.daily": ("the 29 closed days come from the rollups; today's row counts the distinct users of the "
                       "29 stored days before it plus today's (see the 365-day goal above for the incremental "
                       "count that would make it cheap)."),
    "errors.durations": "today's percentiles sort today's completed jobs from the raw tables.",
    "errors.by_code": ("the raw query reads only the window's failed jobs (a few thousand "
                       "at medium), so the rollup path's fixed cost (backend identity, watermark, the stored rows "
                       "and today's raw failures, summed in Python) dominates; it pays off where the failed "
                       "jobs are many (30 days at large: 149 ms raw in the earlier run)."),
    "revenue.daily": ("purchases is a small table (a floor of a few ms), and today's raw row still probes it for "
                      "duplicate transaction ids."),
    "errors.daily": "today's jobs are read raw through the created_at index.",
    "activity.summary": ("distinct users over 30 days of stored user-days (count(DISTINCT) four ways) on the "
                         "state side."),
}
CLI_WHY = ("Measured under the other sessions' heavy load: a bare `python -c pass` (the floor column above) took "
           "about 90 ms here against 19 ms in the earlier, quieter run, where `--help` took 137 ms (7.2× a bare "
           "start); at that load's ratio the goal is not met either. What `--help` pays is Python's start and "
           "the CLI's imports (typer, rich); the test suite checks that it loads none of pandas, plotly, "
           "sqlalchemy, psycopg.")
SEEDS_EXTRA: dict[str, str] = {
    "daily active users": ("Speed: opsbench's raw activity.daily does more - it reads purchases too, 59 days "
                           "instead of 30 (the first day's MAU), and computes WAU, MAU, stickiness and new vs "
                           "returning users; through the rollups (what `opsbench query` and the notebooks run) "
                           "only today is read raw."),
    "error rate": ("Agreement: the rounded percentages agree on these days because pending jobs are a handful "
                   "among thousands; on a quiet day, or today while jobs are still running, they do not."),
}

CHANGES = "\n".join([
    "- Rollups (ops/data/rollups.py, state tables in 040_rollups.sql): 365-day revenue and DAU series read closed days "
    "from the state database and only today from the raw tables.",
    "- `rollups.dau_days` (today's DAU row): users are joined through the ones who signed up inside the window "
    "(a small set by the created_at index) instead of one users lookup per active user: today's raw part at "
    "medium went from 33 ms to 5 ms.",
    "- queries/schema.sql: `idx_quota_log_created_at` (export.ledger streams in index order without a server "
    "sort of the window) and the partial `idx_users_negative_balance` (negative-balance checks stop reading "
    "every user; `opsbench doctor --indexes` asked for it).",
    "- revenue.sql and rollups.sql: the window CTE `win` is `NOT MATERIALIZED`. Materialized (it is referenced "
    "several times), its bounds were opaque to the planner, which then hashed the whole purchases table for the "
    "duplicate-transaction check even for one day. Measured at large with the same harness before the change "
    "(median of 5): one day of revenue.daily 57 -> 34 ms, of rollups.revenue_days 51 -> 31 ms; both scales' "
    "tables above were run with it. For 30-day windows the planner still chooses the whole-table anti-join "
    "(its cost estimate favours it over ~10 000 index probes), so the 30-day ratios stay high.",
    "- queries/schema.sql: the partial `idx_quota_log_iap_without_txn` (purchase credits with no transaction id, "
    "normally none): reconciliation's check for them reads an empty index, not the ledger.",
    "- The benchmark uses pooled engines like ops.data.db: a NullPool connection per call added ~40 ms per read to "
    "the series.",
    "- Series queries are rollup-aware by default (ops/data/series.py): `queries.<series>(engine)` on an engine "
    "opsbench made, `opsbench query` (`--raw` to opt out) and so the notebooks read closed days from the "
    "rollups of this backend, today raw; the 30-day table above times that path against the raw query and the "
    "floor in one run.",
    "- New rollups (090_rollup_durations_codes.sql): completed jobs' duration percentiles per day and failed "
    "jobs per day, provider and error code. The digest's 30-day series and failure codes read them: the "
    "experience table's 'digest's 30-day series + failure codes' row gives both ways in one run.",
    "- Today's WAU/MAU (activity series) from today's raw user-days plus the stored user-days of the 29 days "
    "before, counted as distinct users per range (no 29 days of raw jobs and purchases); the rollups table above "
    "gives today's row both ways in one run. A first version ran the spans window over the stored month "
    "(a sort of ~140 000 user-days by user at medium): 635 ms; distinct counts: 332 ms (same data, same load).",
    "- Rollup refresh: the staged rows and, after a backfill, the rollup tables are ANALYZEd before the next "
    "merges. A 3-day refresh right after a medium backfill took 79.2 s (merge_user_days planned as a nested-loop "
    "anti-join for tables the planner still thought empty); with the statistics 3.5 s (one-off run, same data; "
    "the rollups table above was measured before this fix: its 'daily refresh' is that slow case).",
    "- activity.summary of a closed window from the stored user-days and signups (the weekly report's WAU and "
    "MAU): see the 30-day table.",
    "- activity.daily: `win` NOT MATERIALIZED and users joined through the window's signups (as rollups.dau_days "
    "already did) instead of one users lookup per active user-day: 30 days at medium 4,459 -> 3,287 ms "
    "(interleaved, median of 5, same run, under the other sessions' load; same frame).",
    "- The seeds' SQL side by side runs interleaved in one block, both sides in sessions with TimeZone 'UTC' "
    "and opsbench with tz 'UTC' (earlier runs: separate blocks, and opsbench with 'Etc/UTC', a zone with rules, "
    "where PostgreSQL takes 'UTC' as a fixed-offset abbreviation).",
    "- Not changed: the embedded server's work_mem is 4 MB and many plans above spill to temp files, but "
    "`work_mem = 64MB` changed nothing measurable at medium (activity.daily 0.91×, retention 0.81×, issue 19): "
    "the spills are not what costs, the rows read are.",
])


def default_why(q: dict) -> str:
    seq = ", ".join(q.get("seq_scans") or []) or "none"
    temp = f"; spills {q['temp_blocks']:,} temp blocks" if q.get("temp_blocks") else ""
    return (f"the plan reads {', '.join(q.get('tables') or [])} (sequential scans: {seq}){temp}; "
            f"outer nodes {' > '.join((q.get('plan_nodes') or [])[:5])}.")

SCALE_NOTE = (
    "**Scales as generated** (ops/data/seed.py, 120 days of history): `medium` 100 k users, ~1 M ledger rows, 0.84 M "
    "jobs; `large` 1 M users, 9.7 M ledger rows, 8.3 M jobs - about half the issue's \"20 M ledger rows\" and a "
    "little under its \"10 M jobs\", so the large export below is 8.3 M rows rather than 10 M (its memory does "
    "not depend on the row count: the CLI holds one 10 000-row chunk at a time). The two targets do not fit one "
    "backend: every ledger row is a signup bonus, a purchase, a job's charge or its refund, so 10 M jobs make "
    "about 12 M ledger rows, and 20 M ledger rows would need about 17 M jobs; the generator keeps the backend's "
    "own proportions rather than padding the ledger."
)
