"""Real HTTP(S) servers on 127.0.0.1 for the probe tests.

One threaded server answers by path, the way a backend's health endpoint does:

    /healthy              200 {"status": "ok", "checks": {...all true}}
    /slow?ms=N            the healthy answer after N milliseconds
    /failing              503 {"status": "unhealthy", ...}
    /badjson              200 with a body that is not JSON
    /failing-check        200 {"status": "ok", "checks": {"externalApi": false, ...}}
    /slow?ms=N&tag=T      the same, counted under T: the most requests of one tag in flight at once
    /slow-peak?tag=T      {"peak": N}, that count for T (concurrency seen from the server's side)

`https_server(days)` serves the same paths over TLS with a self-signed
certificate for 127.0.0.1 made by the `openssl` CLI that expires in `days` days.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

HEALTHY = {"status": "ok", "checks": {"database": True, "externalApi": True, "memory": True}}
UNHEALTHY = {"status": "unhealthy", "checks": {"database": False, "externalApi": True, "memory": True}}
ONE_CHECK_FAILING = {"status": "ok", "checks": {"database": True, "externalApi": False, "memory": True}}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the probe gave up first (its timeout): expected, and no traceback on a later test's stderr

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        if parts.path == "/healthy":
            self._send(200, json.dumps(HEALTHY).encode())
        elif parts.path == "/slow":
            query = parse_qs(parts.query)
            ms, tag = float(query.get("ms", ["500"])[0]), query.get("tag", [""])[0]
            srv = self.server
            with srv.lock:
                srv.in_flight[tag] = srv.in_flight.get(tag, 0) + 1
                srv.peak[tag] = max(srv.peak.get(tag, 0), srv.in_flight[tag])
            try:
                time.sleep(ms / 1000.0)
            finally:
                with srv.lock:
                    srv.in_flight[tag] -= 1
            self._send(200, json.dumps(HEALTHY).encode())
        elif parts.path == "/slow-peak":
            tag = parse_qs(parts.query).get("tag", [""])[0]
            with self.server.lock:
                peak = self.server.peak.get(tag, 0)
            self._send(200, json.dumps({"peak": peak}).encode())
        elif parts.path == "/failing":
            self._send(503, json.dumps(UNHEALTHY).encode())
        elif parts.path == "/badjson":
            self._send(200, b"<html>not json{", "text/html")
        elif parts.path == "/failing-check":
            self._send(200, json.dumps(ONE_CHECK_FAILING).encode())
        else:
            self._send(404, b'{"error": "not found"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a 100-endpoint cycle connects all at once

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {}  # /slow requests being answered now, by tag
        self.peak: dict[str, int] = {}       # the most of them at once, by tag


@contextmanager
def _serving(server: _Server, scheme: str) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def http_server() -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of a running server."""
    with _serving(_Server(("127.0.0.1", 0), _Handler), "http") as base:
        yield base


def make_self_signed(directory: Path, days: int) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1 valid for `days` days, made with the openssl CLI."""
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )
    return cert, key


@contextmanager
def https_server(directory: Path, days: int) -> Iterator[tuple[str, Path]]:
    """Yield (base URL, path of the self-signed certificate) of a TLS server."""
    cert, key = make_self_signed(directory, days)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with _serving(server, "https") as base:
        yield base, cert
