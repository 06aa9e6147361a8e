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

Two-way, as the real one: `getUpdates` long polling (`offset` confirms and
drops what is before it, `timeout` waits for the next update), callback
queries and commands injected with `press()` and `say()`, `editMessageText`
and `editMessageReplyMarkup` on the messages it keeps (400 "message is not
modified" for the same text and keyboard, 400 "message to edit not found"
for an unknown or `delete()`d message), `answerCallbackQuery` (kept in
`answers`; 400 "query is too old" once `expire_queries` is set),
`setMyCommands` / `getMyCommands`. The bot's own bookkeeping calls (getMe,
getUpdates, setMyCommands, getMyCommands) go to `control`, not `requests`,
and scripted failures skip them unless `fail(..., method=...)` names one, so
a test that counts what reaches the chat counts sends only.
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


CONTROL = {"getMe", "getUpdates", "setMyCommands", "getMyCommands", "deleteWebhook", "getWebhookInfo"}


@dataclass
class Kept:
    """A message the bot sent, as the chat shows it now."""

    chat_id: str
    text: str
    reply_markup: dict | None
    reply_to: int | None = None
    edits: int = 0


class FakeBotApi:
    def __init__(self, token: str = TOKEN):
        self.token = token
        self.control: list[Request] = []
        self.messages: dict[int, Kept] = {}
        self.updates: list[dict] = []
        self.answers: list[dict] = []
        self.commands: list[dict] = []
        self.expire_queries = False
        self.served: list[int] = []   # update ids handed out by getUpdates, in order (repeats included)
        self._update_id = 1000
        self._updates_cond = threading.Condition()
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
        """Answer the next `times` requests with a failure: 429, 500, 502, parse, 400, hang, drop.
        `method=` limits it to that method (the only way to fail a control call such as getUpdates)."""
        for _ in range(times):
            self.plan.append((kind, kw))

    # -- the other side of the chat ------------------------------------------------
    def _push(self, update: dict) -> int:
        with self._updates_cond:
            self._update_id += 1
            update = {"update_id": self._update_id, **update}
            self.updates.append(update)
            self._updates_cond.notify_all()
            return self._update_id

    def press(self, message_id: int, text: str, user_id: int = 42, username: str = "founder",
              chat_id: str | None = None, data: str | None = None) -> int:
        """Press the button labelled `text` (or send `data`) under one of our messages; returns the update id."""
        kept = self.messages[message_id]
        if data is None:
            buttons = [b for row in (kept.reply_markup or {}).get("inline_keyboard", []) for b in row]
            (button,) = [b for b in buttons if b["text"] == text] or [None]
            if button is None:
                raise AssertionError(f"no button {text!r} under message {message_id}: "
                                     f"{[b['text'] for b in buttons]}")
            data = button["callback_data"]
        chat = chat_id or kept.chat_id
        return self._push({"callback_query": {
            "id": f"cq{self._update_id + 1}", "from": {"id": user_id, "is_bot": False, "first_name": username,
                                                      "username": username},
            "message": {"message_id": message_id, "chat": {"id": int(chat), "type": "supergroup"},
                        "text": kept.text},
            "chat_instance": "1", "data": data}})

    def say(self, text: str, chat_id: str, user_id: int = 42, username: str = "founder",
            thread_id: int | None = None) -> int:
        """Someone writes `text` in `chat_id` (a command when it starts with /); returns the update id."""
        with self.lock:
            self._message_id += 1
            mid = self._message_id
        msg = {"message_id": mid, "from": {"id": user_id, "is_bot": False, "first_name": username,
                                           "username": username},
               "chat": {"id": int(chat_id), "type": "supergroup", "title": "ops"}, "date": int(time.time()),
               "text": text}
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self._push({"message": msg})

    def delete(self, message_id: int) -> None:
        """The founder deleted one of our messages: edits of it fail from now on."""
        self.messages.pop(message_id, None)

    def replies_to(self, message_id: int) -> list[str]:
        return [k.text for k in self.messages.values() if k.reply_to == message_id]

    def confirmed_offset(self) -> int:
        """The highest offset a getUpdates call passed (what Telegram considers confirmed)."""
        offsets = [int(r.params["offset"]) for r in self.control if r.method == "getUpdates" and
                   r.params.get("offset") is not None]
        return max(offsets, default=0)

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
        control = req.method in CONTROL
        with self.lock:
            (self.control if control else self.requests).append(req)
            planned = None
            if self.plan:
                wanted = self.plan[0][1].get("method")
                if (wanted is None and not control) or wanted == req.method:
                    planned = self.plan.popleft()
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
        if req.method == "getUpdates":
            return 200, {"ok": True, "result": _get_updates_impl(self, req.params)}
        if req.method == "setMyCommands":
            self.commands = list(req.params.get("commands") or [])
            return 200, {"ok": True, "result": True}
        if req.method == "getMyCommands":
            return 200, {"ok": True, "result": self.commands}
        if req.method == "answerCallbackQuery":
            if self.expire_queries:
                return 400, {"ok": False, "error_code": 400, "description":
                             "Bad Request: query is too old and response timeout expired or query ID is invalid"}
            self.answers.append(dict(req.params))
            return 200, {"ok": True, "result": True}
        if req.method in ("editMessageText", "editMessageReplyMarkup"):
            return _edit_impl(self, req)
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
        visible, refused = _visible(req.params, field_name)
        if refused:
            return refused
        if req.method == "sendMessage" and not visible.strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        if utf16_len(visible) > limit:
            what = "message is too long" if field_name == "text" else "message caption is too long"
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {what}"}
        try:
            markup = _markup(req.params.get("reply_markup"))
        except ValueError as err:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {err}"}
        with self.lock:
            self._message_id += 1
            self.delivered.append(req)
            mid = self._message_id
            reply = (req.params.get("reply_parameters") or {}).get("message_id")
            self.messages[mid] = Kept(chat, visible, markup, int(reply) if reply is not None else None)
        return 200, {"ok": True, "result": {"message_id": mid, "chat": {"id": int(chat)}, "date": int(time.time()),
                                            "text": visible}}


def _visible(params: dict, field_name: str) -> tuple[str, tuple[int, dict] | None]:
    """The text a chat shows for a text or caption field, or the 400 Telegram gives for bad HTML."""
    value = str(params.get(field_name, ""))
    if params.get("parse_mode") != "HTML":
        return value, None
    try:
        return parse_html(value), None
    except ValueError as err:
        return "", (400, {"ok": False, "error_code": 400, "description": f"Bad Request: can't parse entities: {err}"})


def _markup(value: Any) -> dict | None:
    if isinstance(value, str):  # multipart bodies carry JSON fields as strings
        value = json.loads(value)
    if not value or not value.get("inline_keyboard"):
        return None
    for row in value["inline_keyboard"]:
        for button in row:
            if len(button.get("callback_data", "").encode()) > 64:
                raise ValueError("BUTTON_DATA_INVALID")
    return value


def _get_updates_impl(api: "FakeBotApi", params: dict) -> list[dict]:
    offset = params.get("offset")
    timeout = float(params.get("timeout") or 0)
    deadline = time.monotonic() + timeout
    with api._updates_cond:
        if offset is not None:
            # an offset confirms every update before it: Telegram forgets them
            api.updates = [u for u in api.updates if u["update_id"] >= int(offset)]
        while not api.updates and time.monotonic() < deadline and not api.release.is_set():
            api._updates_cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            if offset is not None:
                api.updates = [u for u in api.updates if u["update_id"] >= int(offset)]
        batch = [dict(u) for u in api.updates[: int(params.get("limit") or 100)]]
        api.served.extend(u["update_id"] for u in batch)
        return batch



def _edit_impl(api: "FakeBotApi", req: Request) -> tuple[int, dict]:
    try:
        mid = int(req.params.get("message_id"))
    except (TypeError, ValueError):
        return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message identifier is not specified"}
    with api.lock:
        kept = api.messages.get(mid)
        if kept is None or kept.chat_id != str(req.params.get("chat_id")):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"}
        try:
            markup = _markup(req.params.get("reply_markup"))
        except ValueError as err:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {err}"}
        text = kept.text
        if req.method == "editMessageText":
            value, refused = _visible(req.params, "text")
            if refused:
                return refused
            if not value.strip():
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
            if utf16_len(value) > 4096:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: MESSAGE_TOO_LONG"}
            text = value
        if text == kept.text and markup == kept.reply_markup:
            return 400, {"ok": False, "error_code": 400, "description":
                         "Bad Request: message is not modified: specified new message content and reply markup "
                         "are exactly the same as a current content and reply markup of the message"}
        kept.text, kept.reply_markup = text, markup
        kept.edits += 1
        api.delivered.append(req)
    return 200, {"ok": True, "result": {"message_id": mid, "chat": {"id": int(kept.chat_id)}, "text": text}}



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
