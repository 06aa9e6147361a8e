"""A Sentry envelope receiver on 127.0.0.1 for tests with the real sentry-sdk.

`SentryReceiver()` serves `POST /api/<project>/envelope/`, decompresses
(gzip/deflate) and parses each envelope (header line, then items: item header
line and a payload of `length` bytes or up to the next newline), and keeps
both the raw decompressed bytes and the parsed items. Use `.dsn(...)` to get a
DSN pointing at it.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Envelope:
    headers: dict[str, Any]
    items: list[tuple[dict[str, Any], Any]]   # (item header, parsed JSON payload or bytes)
    raw: bytes
    http_headers: dict[str, str] = field(default_factory=dict)


def parse_envelope(data: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Any]]]:
    """The envelope format: https://develop.sentry.dev/sdk/data-model/envelopes/"""
    header_line, _, rest = data.partition(b"\n")
    headers = json.loads(header_line)
    items = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        if not item_line.strip():
            continue
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is not None:
            payload, rest = rest[:length], rest[length:]
            if rest.startswith(b"\n"):
                rest = rest[1:]
        else:
            payload, _, rest = rest.partition(b"\n")
        try:
            parsed: Any = json.loads(payload)
        except ValueError:
            parsed = payload
        items.append((item_header, parsed))
    return headers, items


class SentryReceiver:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding:
                    raise AssertionError(f"unexpected Content-Encoding {encoding}")
                headers, items = parse_envelope(body)
                with receiver._lock:
                    receiver.envelopes.append(Envelope(headers, items, body, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def dsn(self, public: str = "publickey123", secret: str | None = None, project: int = 42) -> str:
        auth = f"{public}:{secret}" if secret else public
        return f"http://{auth}@127.0.0.1:{self.port}/{project}"

    def items(self, item_type: str) -> list[Any]:
        with self._lock:
            return [payload for env in self.envelopes for (h, payload) in env.items if h.get("type") == item_type]

    def events(self) -> list[dict[str, Any]]:
        return self.items("event")

    def checkins(self) -> list[dict[str, Any]]:
        return self.items("check_in")

    def raw_everything(self) -> bytes:
        """Every envelope byte received (not the HTTP auth header, which carries the key by design)."""
        with self._lock:
            return b"\n".join(e.raw for e in self.envelopes)

    def wait_for(self, predicate, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def clear(self) -> None:
        with self._lock:
            self.envelopes.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    """A receiver for one test; Sentry is closed before the receiver goes away."""
    from ops.core import sentry as ops_sentry

    r = SentryReceiver()
    yield r
    ops_sentry.close()
    r.close()
