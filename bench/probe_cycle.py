"""One HTTP probe cycle of 100 endpoints, measured against its slowest request.

The endpoints answer after 200 ... 497 ms (a local threaded server); probed one
after another they would take ~35 s, concurrently about as long as the slowest.
tests/test_probes.py proves the concurrency (requests in flight at once); this
reports the ratio of the cycle's time to its slowest request on this machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from jobs import probes

ENDPOINTS = 100


class _Slow(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        time.sleep(float(parse_qs(urlsplit(self.path).query).get("ms", ["200"])[0]) / 1000.0)
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the whole cycle connects at once


def _cycle(base: str) -> tuple[float, float]:
    """(cycle ms, slowest request ms) of one cycle of ENDPOINTS probes."""
    targets = [{"name": f"e{i:03d}", "url": f"{base}/slow?ms={200 + 3 * i}"} for i in range(ENDPOINTS)]
    parsed = probes.parse_targets(targets, {"latency_warn_ms": 60_000, "latency_critical_ms": 120_000})
    started = time.perf_counter()
    outcomes = asyncio.run(probes.run_http_probes(parsed, dt.datetime.now(dt.timezone.utc)))
    cycle_ms = (time.perf_counter() - started) * 1000
    if not all(o.ok for o in outcomes):
        raise RuntimeError(f"{sum(not o.ok for o in outcomes)} of {ENDPOINTS} probes failed")
    return cycle_ms, max(o.latency_ms for o in outcomes)


def run(runs: int, log: Callable[[str], None]) -> dict:
    srv = _Server(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        _cycle(base)  # warm-up
        cycles = [_cycle(base) for _ in range(runs)]
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)
    ratios = [c / s for c, s in cycles]
    out = {"endpoints": ENDPOINTS, "runs": runs,
           "cycle_ms": round(statistics.median(c for c, _ in cycles), 1),
           "slowest_ms": round(statistics.median(s for _, s in cycles), 1),
           "ratio": round(statistics.median(ratios), 2), "max_ratio": round(max(ratios), 2)}
    log(f"probe cycle: {ENDPOINTS} endpoints in {out['cycle_ms']} ms, slowest {out['slowest_ms']} ms, "
        f"x{out['ratio']} (max x{out['max_ratio']})")
    return out
