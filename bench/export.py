"""Streaming CSV export as a user runs it: `opsbench query export.jobs --format csv > file`.

The CLI runs in a child process (bench/rss.py) so its peak RSS is its own,
not the harness's. The window is the whole generated history, so at `large`
the export is the 10 M video jobs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
GOAL_MB = 200.0


def export(db_url: str, start: str, end: str, query: str = "export.jobs") -> dict:
    out = BENCH_DIR / "export.csv.tmp"      # git-ignored
    env = {**os.environ, "DATABASE_URL": db_url, "OPSBENCH_STATE_URL": db_url, "REPORT_TZ": "UTC",
           "OPSBENCH_STATEMENT_TIMEOUT": "3600"}
    cmd = [sys.executable, "-m", "bench.rss", str(out), "--", sys.executable, "-m", "ops", "query", query,
           "-p", f"start={start}", "-p", f"end={end}", "-p", "tz=UTC", "--format", "csv"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    try:
        size = out.stat().st_size
        with out.open("rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    finally:
        out.unlink(missing_ok=True)
    return {"query": query, "params": {"start": start, "end": end, "tz": "UTC"}, "rows": max(lines - 1, 0),
            "csv_mb": round(size / 2**20, 1), "peak_rss_mb": measured["maxrss_mb"], "seconds": measured["seconds"],
            "returncode": measured["returncode"], "goal_mb": GOAL_MB, "goal_met": measured["maxrss_mb"] < GOAL_MB}
