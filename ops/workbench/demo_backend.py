"""A stand-in for the backend's `/health` endpoint, for the demo.

The backend answers `GET /health` with `{"status": ..., "checks": {...},
"timestamp": ...}` and 503 when any check is false. This serves
the same shape on 127.0.0.1 (a free port) with one check failing, so the
demo's HTTP probe hits a real server and has a real finding to raise.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ops.core.clock import utc_now

DEFAULT_CHECKS: dict[str, bool] = {"database": True, "externalApi": False, "memory": True}


class HealthStandIn:
    """`with HealthStandIn() as h: h.url` -> http://127.0.0.1:PORT/health."""

    def __init__(self, checks: dict[str, bool] | None = None, host: str = "127.0.0.1", port: int = 0):
        self.checks = dict(DEFAULT_CHECKS if checks is None else checks)
        self.requests = 0
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def body(self) -> tuple[int, dict[str, Any]]:
        healthy = all(self.checks.values())
        return (200 if healthy else 503), {
            "status": "healthy" if healthy else "unhealthy",
            "checks": dict(self.checks),
            "timestamp": utc_now().isoformat(timespec="milliseconds"),
        }

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the health stand-in is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/health"

    def start(self) -> "HealthStandIn":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # the demo prints its own story
                pass

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/health":
                    self._send(404, {"error": "not found"})
                    return
                stand_in.requests += 1
                self._send(*stand_in.body())

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="health-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "HealthStandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
