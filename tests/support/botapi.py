"""A small Telegram Bot API server on 127.0.0.1 for the tests.

It behaves like the real one where the client depends on it: the token in
the path (401 otherwise), JSON and multipart bodies, HTML parse mode checked
strictly (unknown or unbalanced tags, bare `<` or `&` -> 400 "can't parse
entities"), 4,096 / 1,024 character limits, migrated chats (400 with
`parameters.migrate_to_chat_id`), blocked chats (403) and unknown chats
(400 chat not found). On top, scripted failures for the next requests:
429 with retry_after, 5xx, hang, or dropped connections; and it can be taken
down (connection refused) and brought back on the same port.
Every request is recorded; successful sends are kept in `delivered`.
"""

from __future__ import annotations

import email.parser
import email.policy
import html
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "123456789:AAHfakeTOKENforTESTSonly_0123456789-abcdef"
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code",
                "pre", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def parse_html(text: str) -> str:
    """Visible text of Telegram HTML, or ValueError with Telegram's kind of description."""
    out, stack, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if not m or m.group(2).lower() not in ALLOWED_TAGS:
                raise ValueError(f"Unsupported start tag at byte offset {i}")
            name = m.group(2).lower()
            if m.group(1):
                if not stack or stack[-1] != name:
                    raise ValueError(f"Can't find end tag corresponding to start tag \"{name}\"")
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if not m:
                raise ValueError(f"Character entity expected at byte offset {i}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        elif ch == ">":
            raise ValueError(f"Unmatched end of tag at byte offset {i}")
        else:
            out.append(ch)
            i += 1
    if stack:
        raise ValueError(f"Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


@dataclass
class Request:
    method: str
    token: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    answered: int | None = None  # HTTP status sent back (None: hung or dropped)


class FakeBotApi:
    def __init__(self, token: str = TOKEN):
        self.token = token
        self.requests: list[Request] = []
        self.delivered: list[Request] = []
        self.plan: deque[tuple[str, dict]] = deque()
        self.migrations: dict[str, int] = {}
        self.blocked: set[str] = set()
        self.unknown: set[str] = set()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._message_id = 0

    # -- control -----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, kind: str, times: int = 1, **kw) -> None:
        """Answer the next `times` requests with a failure: 429, 500, 502, parse, 400, hang, drop."""
        for _ in range(times):
            self.plan.append((kind, kw))

    def start(self) -> "FakeBotApi":
        self.up()
        return self

    def up(self) -> None:
        handler = _handler_for(self)
        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        """Stop listening: clients get connection refused."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        self.release.set()
        self.down()

    def texts(self, method: str = "sendMessage") -> list[str]:
        return [r.params.get("text", r.params.get("caption", "")) for r in self.delivered if r.method == method]

    # -- behaviour ---------------------------------------------------------
    def answer(self, req: Request) -> tuple[int, dict] | str:
        with self.lock:
            self.requests.append(req)
            planned = self.plan.popleft() if self.plan else None
        if req.token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if planned:
            kind, kw = planned
            if kind == "429":
                ra = kw.get("retry_after", 3)
                return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {ra}",
                             "parameters": {"retry_after": ra}}
            if kind in ("500", "502", "503"):
                return int(kind), {"ok": False, "error_code": int(kind), "description": "Internal Server Error"}
            if kind == "parse":
                return 400, {"ok": False, "error_code": 400,
                             "description": "Bad Request: can't parse entities: Unsupported start tag \"x\""}
            if kind == "400":  # any other bad request, e.g. a rejected message
                return 400, {"ok": False, "error_code": 400,
                             "description": kw.get("description", "Bad Request: message text is empty")}
            if kind in ("hang", "drop"):
                return kind
        if req.method == "getMe":
            return 200, {"ok": True, "result": {"id": 123456789, "is_bot": True, "first_name": "opsbench test",
                                                "username": "opsbench_test_bot"}}
        chat = str(req.params.get("chat_id", ""))
        if chat in self.migrations:
            return 400, {"ok": False, "error_code": 400,
                         "description": "Bad Request: group chat was upgraded to a supergroup chat",
                         "parameters": {"migrate_to_chat_id": self.migrations[chat]}}
        if chat in self.blocked:
            return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        if chat in self.unknown or not chat:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        field_name, limit = ("text", 4096) if req.method == "sendMessage" else ("caption", 1024)
        value = str(req.params.get(field_name, ""))
        if req.params.get("parse_mode") == "HTML":
            try:
                visible = parse_html(value)
            except ValueError as err:
                return 400, {"ok": False, "error_code": 400,
                             "description": f"Bad Request: can't parse entities: {err}"}
        else:
            visible = value
        if req.method == "sendMessage" and not visible.strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        if utf16_len(visible) > limit:
            what = "message is too long" if field_name == "text" else "message caption is too long"
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {what}"}
        with self.lock:
            self._message_id += 1
            self.delivered.append(req)
            mid = self._message_id
        return 200, {"ok": True, "result": {"message_id": mid, "chat": {"id": int(chat)}, "date": int(time.time()),
                                            "text": visible}}


def _handler_for(api: FakeBotApi):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            m = re.fullmatch(r"/bot([^/]+)/(\w+)", self.path.split("?")[0])
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not m:
                self._send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                return
            params, files = _parse_body(self.headers.get("Content-Type", ""), raw)
            req = Request(m.group(2), m.group(1), params, files)
            result = api.answer(req)
            if result == "hang":
                api.release.wait(60)
                self.close_connection = True
                return
            if result == "drop":
                self.close_connection = True
                return
            status, body = result
            req.answered = status
            self._send(status, body)

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _parse_body(content_type: str, raw: bytes) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    if content_type.startswith("application/json"):
        return json.loads(raw or b"{}"), {}
    if content_type.startswith("multipart/form-data"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if filename:
                files[name] = (filename, payload)
            else:
                value = payload.decode()
                params[name] = {"true": True, "false": False}.get(value, value)
        return params, files
    if content_type.startswith("application/x-www-form-urlencoded"):
        from urllib.parse import parse_qsl

        return dict(parse_qsl(raw.decode())), {}
    return {}, {}


class FakeClock:
    """Monotonic seconds and UTC wall time that only move when `sleep` is called (or `advance`)."""

    def __init__(self, start=None):
        import datetime as dt

        self.start = start or dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return 1000.0 + self.elapsed

    def now(self):
        import datetime as dt

        return self.start + dt.timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds
