"""Seed one scale in a child process and measure it: wall time and peak memory.

The generator is set-based SQL, so most of the work (and memory) is in the
server backend, not in Python. Both are sampled every 0.2 s with psutil: the
child Python process (RSS) and the server backend running the seed
(application_name opsbench-seed; its RSS includes the shared buffers it has
touched, so it is an upper bound of its private memory, reported as such).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import queries
from bench import server
from ops.data.db import sqlalchemy_url


def _seed_backend_pids(admin: sa.Engine) -> list[int]:
    with admin.connect() as conn:
        return [r[0] for r in queries.load("bench/bench").seed_backends.execute(conn, app="opsbench-seed")]


def _cpu_seconds(pid: int) -> float | None:
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def _rss(pid: int) -> int:
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


def seed_scale(scale: str, log=print) -> dict:
    """Seed `scale` into its bench database (dropping what was there). Returns the seed record."""
    server.drop_database(scale)
    url = server.url(scale)
    admin = sa.create_engine(sqlalchemy_url(server.admin_url()), poolclass=NullPool)
    log(f"seeding {scale} into {server.database_name(scale)} ...")
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "bench.seeding", url, scale, str(server.GENERATOR_SEED)],
                             stdout=subprocess.PIPE, text=True)
    peak_client = peak_server = 0
    cpu: dict[int, float] = {}  # seeding backend -> its CPU seconds at the last sample
    while child.poll() is None:
        peak_client = max(peak_client, _rss(child.pid))
        try:
            pids = _seed_backend_pids(admin)
            peak_server = max(peak_server, sum(_rss(p) for p in pids))
            for p in pids:
                seconds = _cpu_seconds(p)
                if seconds is not None:
                    cpu[p] = seconds
        except Exception:  # the server is busy starting the backend; sample again
            pass
        time.sleep(0.2)
    admin.dispose()
    out = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise RuntimeError(f"seeding {scale} failed (exit {child.returncode})")
    manifest = json.loads(out.strip().splitlines()[-1])
    record = {
        "scale": scale, "seed": server.GENERATOR_SEED, "seconds": round(time.monotonic() - started, 1),
        "peak_client_rss_mb": round(peak_client / 2**20, 1), "peak_server_backend_rss_mb": round(peak_server / 2**20, 1),
        # the server's CPU time for the seed (sampled every 0.2 s: the last fraction of a second is missed) and
        # the machine's load, so a wall time measured on a shared box can be read
        "server_cpu_seconds": round(sum(cpu.values()), 1) if cpu else None,
        "load_average": round(os.getloadavg()[0], 1),
        "anchor": manifest["anchor"], "window": manifest["window"],
        "rows": {k: v for k, v in manifest.items() if isinstance(v, int) and k not in ("seed",)},
    }
    server.save_record(scale, record)
    log(f"seeded {scale} in {record['seconds']} s")
    return record


def main(argv: list[str]) -> None:
    from ops.data.seed import seed_database

    url, scale, seed = argv
    manifest = seed_database(url, scale=scale, seed=int(seed))
    print(json.dumps(manifest, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
