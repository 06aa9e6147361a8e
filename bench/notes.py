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

# query -> why it is slower than 2x its floor (filled in after reading the plans)
WHY: dict[str, str] = {}

RECON_WHY = ""
SERIES_WHY: dict[str, str] = {}
CHANGES = "-"


def default_why(q: dict) -> str:
    seq = ", ".join(q.get("seq_scans") or []) or "none"
    temp = f"; spills {q['temp_blocks']:,} temp blocks" if q.get("temp_blocks") else ""
    return (f"the plan reads {', '.join(q.get('tables') or [])} (sequential scans: {seq}){temp}; "
            f"outer nodes {' > '.join((q.get('plan_nodes') or [])[:5])}.")
