"""The Telegram Bot API client: the only module that knows the Bot API.

What it handles, so callers don't have to:
- HTML parse mode; text over 4,096 characters split at line boundaries
  (`ops.alerting.telegram.html.split_html`), captions kept within 1,024.
- 429: waits `parameters.retry_after` (through the injectable `sleep`).
- 5xx, timeouts, connection errors: bounded exponential backoff with jitter.
- 400 "can't parse entities": the same text again as plain text.
- 400 with `parameters.migrate_to_chat_id`: follows the new chat id, tells
  `on_migrate` (which persists it) and logs a warning.
- Permanent errors (bot blocked or kicked, chat not found, bad token) raise
  at once: retrying cannot help.
- Pacing per chat: about one message a second, at most 20 a minute to a
  group (negative chat id), as Telegram asks of bots.
- An optional `deadline` (on the client's clock): no wait (pacing, retry_after,
  backoff) is taken that would end past it and no request starts after it;
  the call raises `TelegramOutOfTime` (pacing: nothing sent) or the failure it
  would have waited out, so a caller with a time budget keeps it.

The token sits in the URL path, so it is registered with `ops.core.redact`, the
httpx loggers get a redacting filter, and every exception raised here is
built from redacted text outside any `except` block (no chained httpx error
that still holds the URL).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import httpx

from ops.alerting.telegram import html as messages
from ops.core import backoff
from ops.core.errors import DeliveryError, Outcome
from ops.core.logs import RedactingFilter
from ops.core.redact import redact, register_secret

log = logging.getLogger("opsbench.telegram")

# Descriptions that mean "this chat will not take messages from us".
_CHAT_GONE = ("chat not found", "bot was blocked", "bot was kicked", "user is deactivated",
              "bot is not a member", "have no rights to send", "not enough rights", "group chat was deactivated",
              "message thread not found", "bot can't initiate conversation")


# Descriptions that mean "that message (or button press) cannot be acted on any more".
_MESSAGE_GONE = ("message to edit not found", "message can't be edited", "message to reply not found",
                 "message_id_invalid", "query is too old", "query id is invalid")
# editMessage* said "message is not modified": the message already reads so
_UNMODIFIED = object()


class TelegramError(DeliveryError):
    """A Bot API call failed. `str()` is redacted and safe to log or show; `outcome` says what next."""

    def __init__(self, message: str, *, error_code: int | None = None, description: str = "",
                 retry_after: float | None = None, attempted: bool = True):
        super().__init__(redact(message), retry_after=retry_after, attempted=attempted)
        self.error_code = error_code
        self.description = redact(description)


class TelegramTransientError(TelegramError):
    """Still failing after the bounded retries (server down, 5xx, long 429): try again later."""

    outcome = Outcome.retry_later


class TelegramPermanentError(TelegramError):
    """This request will never succeed as it is (bad request)."""

    outcome = Outcome.never


class TelegramOutOfTime(TelegramTransientError):
    """The next request would start past the caller's deadline: nothing was sent, try again later."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message, retry_after=retry_after, attempted=False)


class TelegramChatUnavailable(TelegramPermanentError):
    """The chat refuses the bot: blocked, kicked, not found, or the token is wrong."""

    outcome = Outcome.refused


class _ParseError(TelegramPermanentError):
    """400 can't parse entities (handled inside send_message)."""


class TelegramMessageGone(TelegramPermanentError):
    """The message to edit or reply to is gone (deleted, too old to edit) or the button's query
    expired: the caller falls back (a new message) or lets it go; retrying cannot help."""


@dataclass(frozen=True)
class _Failure:
    kind: str                 # transient | rate | migrate | parse | chat | gone | unmodified | permanent
    message: str
    error_code: int | None = None
    description: str = ""
    retry_after: float | None = None
    migrate_to: int | None = None


def _install_log_filters() -> None:
    """httpx logs the request URL (with the token) at INFO; scrub it even when a test turns DEBUG on."""
    for name in ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


class Pacer:
    """Per-chat spacing: `min_interval` between sends; groups at most `group_per_minute` a minute."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None],
                 min_interval: float = 1.0, group_per_minute: int = 20):
        self.clock, self.sleep = clock, sleep
        self.min_interval, self.group_per_minute = min_interval, group_per_minute
        self._sent: dict[str, deque[float]] = {}

    def wait(self, chat_id: str | int, deadline: float | None = None) -> None:
        """Sleep until the chat may get the next message; TelegramOutOfTime if that is past `deadline`."""
        chat = str(chat_id)
        sent = self._sent.setdefault(chat, deque())
        now = self.clock()
        delay = 0.0
        if sent:
            delay = sent[-1] + self.min_interval - now
        if chat.startswith("-"):
            while sent and sent[0] <= now - 60.0:
                sent.popleft()
            if len(sent) >= self.group_per_minute:
                delay = max(delay, sent[-self.group_per_minute] + 60.0 - now)
        if deadline is not None and now + max(0.0, delay) > deadline:
            raise TelegramOutOfTime(f"the next message to this chat may go in {max(0.0, delay):.0f}s, "
                                    "after the time budget", retry_after=max(0.0, delay))
        if delay > 0:
            self.sleep(delay)
        sent.append(self.clock())
        while len(sent) > self.group_per_minute:
            sent.popleft()


class TelegramClient:
    """A small synchronous Bot API client for one chat (and optional forum topic)."""

    def __init__(self, token: str, api_base: str = "https://api.telegram.org", chat_id: str | int | None = None,
                 thread_id: int | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, timeout: float = 10.0, max_attempts: int = 4,
                 backoff_base: float = 1.0, backoff_cap: float = 30.0, max_retry_after: float = 120.0,
                 on_migrate: Callable[[str, str], None] | None = None,
                 rng: Callable[[], float] = random.random, transport: httpx.BaseTransport | None = None):
        if not token:
            raise ValueError("a bot token is required")
        register_secret(token)
        _install_log_filters()
        self._token = token
        self.api_base = api_base.rstrip("/")
        self.chat_id = str(chat_id) if chat_id is not None else None
        self.thread_id = thread_id
        self.clock, self.sleep = clock, sleep
        self.max_attempts = max(1, max_attempts)
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_retry_after = max_retry_after
        self.on_migrate = on_migrate
        self.rng = rng
        self.pacer = Pacer(clock, sleep)
        self.deadline: float | None = None  # on `clock`; see the module docstring
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport)

    def __repr__(self) -> str:  # never the token
        return f"TelegramClient(api_base={self.api_base!r}, chat_id={self.chat_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "TelegramClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public API --------------------------------------------------------

    def get_me(self) -> dict[str, Any]:
        """The bot's own user object; proves the token works."""
        return self._call("getMe", {}, paced=False)

    def send_message(self, text: str, disable_notification: bool = False, *, reply_to: int | None = None,
                     reply_markup: dict | None = None) -> list[dict[str, Any]]:
        """Send HTML text (split when long). Returns the Message objects sent.

        `reply_to`: the first part replies to that message of ours (the phone shows the quote; one
        that is gone is sent without it). `reply_markup`: an inline keyboard under the last part."""
        parts = messages.split_html(text)
        sent = []
        for i, part in enumerate(parts):
            extra: dict[str, Any] = {}
            if reply_to is not None and i == 0:
                extra["reply_parameters"] = {"message_id": int(reply_to), "allow_sending_without_reply": True}
            if reply_markup and i == len(parts) - 1:
                extra["reply_markup"] = reply_markup
            sent.append(self._send_text_part(part, disable_notification, extra))
        return sent

    def edit_message_text(self, chat_id: str | int, message_id: int, text: str,
                          reply_markup: dict | None = None) -> bool:
        """Replace the text (and keyboard) of one of our messages. True when edited, False when it
        already read so ("message is not modified" is not an error); TelegramMessageGone when the
        message cannot be edited any more. A text over one message is cut at a line boundary."""
        part = messages.split_html(text)[0] if messages.shows_text(text) else "…"
        params: dict[str, Any] = {"chat_id": str(chat_id), "message_id": int(message_id), "text": part,
                                  "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}
        # an empty keyboard removes the buttons; Telegram wants the field present for that
        params["reply_markup"] = reply_markup or {"inline_keyboard": []}
        try:
            return self._call("editMessageText", params) is not _UNMODIFIED
        except _ParseError as err:
            log.warning("Telegram could not parse the edited HTML (%s); editing as plain text", err.description)
        plain = {k: v for k, v in params.items() if k != "parse_mode"}
        plain["text"] = messages.to_plain(part)
        return self._call("editMessageText", plain) is not _UNMODIFIED

    def answer_callback_query(self, callback_query_id: str, text: str = "", show_alert: bool = False) -> bool:
        """The visible answer to a button press (a toast, or an alert box). False when the query is too
        old to answer (Telegram takes answers only for a short while after the press)."""
        params: dict[str, Any] = {"callback_query_id": callback_query_id}
        if text:
            params["text"] = text[:200]  # Telegram shows at most 200 characters
        if show_alert:
            params["show_alert"] = True
        try:
            self._call("answerCallbackQuery", params, paced=False)
            return True
        except TelegramMessageGone:
            return False

    def get_updates(self, offset: int | None = None, timeout: int = 25, limit: int = 50,
                    allowed_updates: tuple[str, ...] = ("message", "callback_query")) -> list[dict[str, Any]]:
        """Long-poll for updates. Passing `offset` confirms every update before it to Telegram."""
        params: dict[str, Any] = {"timeout": int(timeout), "limit": int(limit),
                                  "allowed_updates": list(allowed_updates)}
        if offset is not None:
            params["offset"] = int(offset)
        result = self._call("getUpdates", params, paced=False, request_timeout=float(timeout) + 10.0, retry=False)
        return list(result or [])

    def set_my_commands(self, commands: list[tuple[str, str]]) -> None:
        self._call("setMyCommands", {"commands": [{"command": c, "description": d} for c, d in commands]},
                   paced=False)

    def get_my_commands(self) -> list[dict[str, Any]]:
        return list(self._call("getMyCommands", {}, paced=False) or [])

    def send_photo(self, data: bytes, caption: str = "", disable_notification: bool = False) -> dict[str, Any]:
        return self._send_file("sendPhoto", "photo", data, "chart.png", caption, disable_notification)

    def send_document(self, data: bytes, filename: str, caption: str = "",
                      disable_notification: bool = False) -> dict[str, Any]:
        return self._send_file("sendDocument", "document", data, filename, caption, disable_notification)

    def send_media_group(self, photos: list[tuple[str, bytes]], caption: str = "",
                         disable_notification: bool = False) -> Any:
        """Photos as one album (2 to 10; one goes as a plain photo); the caption, under the first, fits 1,024."""
        if len(photos) == 1:
            return self._send_file("sendPhoto", "photo", photos[0][1], photos[0][0], caption, disable_notification)
        if not 2 <= len(photos) <= 10:
            raise TelegramPermanentError(f"a media group holds 2 to 10 photos, not {len(photos)}")
        cap = messages.caption(caption) if caption else ""
        files = {f"photo{i}": (name, data) for i, (name, data) in enumerate(photos)}

        def media(first: dict) -> str:
            items = [{"type": "photo", "media": f"attach://photo{i}"} for i in range(len(photos))]
            items[0].update(first)
            return json.dumps(items)

        params = {**self._target(disable_notification)}
        try:
            return self._call("sendMediaGroup", {**params, "media": media(
                {"caption": cap, "parse_mode": "HTML"} if cap else {})}, files=files)
        except _ParseError as err:
            log.warning("Telegram could not parse the album caption (%s); resending it as plain text",
                        err.description)
        return self._call("sendMediaGroup", {**params, "media": media({"caption": messages.to_plain(cap)})},
                          files=files)

    # -- internals ---------------------------------------------------------

    def _target(self, disable_notification: bool) -> dict[str, Any]:
        if self.chat_id is None:
            raise TelegramPermanentError("no chat id configured (TELEGRAM_CHAT_ID)")
        params: dict[str, Any] = {"chat_id": self.chat_id}
        if self.thread_id is not None:
            params["message_thread_id"] = self.thread_id
        if disable_notification:
            params["disable_notification"] = True
        return params

    def _send_text_part(self, part: str, disable_notification: bool,
                        extra: dict[str, Any] | None = None) -> dict[str, Any]:
        params = {**self._target(disable_notification), "text": part, "parse_mode": "HTML",
                  "link_preview_options": {"is_disabled": True}, **(extra or {})}
        try:
            return self._call("sendMessage", params)
        except _ParseError as err:
            log.warning("Telegram could not parse the HTML (%s); resending as plain text", err.description)
        plain = {**self._target(disable_notification), "text": messages.to_plain(part), **(extra or {})}
        return self._call("sendMessage", plain)

    def _send_file(self, method: str, field: str, data: bytes, filename: str, caption: str,
                   disable_notification: bool) -> dict[str, Any]:
        cap = messages.caption(caption) if caption else ""
        params = {**self._target(disable_notification)}
        if cap:
            params.update(caption=cap, parse_mode="HTML")
        try:
            return self._call(method, params, files={field: (filename, data)})
        except _ParseError as err:
            log.warning("Telegram could not parse the caption (%s); resending it as plain text", err.description)
        params = {**self._target(disable_notification), "caption": messages.to_plain(cap)}
        return self._call(method, params, files={field: (filename, data)})

    def _backoff(self, attempt: int) -> float:
        return backoff.delay(attempt, self.backoff_base, self.backoff_cap, jitter=(0.5, 1.0), rng=self.rng)

    def _call(self, method: str, params: dict[str, Any], files: dict | None = None,
              paced: bool = True, request_timeout: float | None = None, retry: bool = True) -> Any:
        transient_failures = 0
        rate_waits = 0
        migrations = 0
        while True:
            if paced:
                self.pacer.wait(params.get("chat_id", ""), self.deadline)
            failure, result = self._attempt(method, params, files, request_timeout)
            if failure is None:
                return result
            if failure.kind == "unmodified":
                return _UNMODIFIED
            if not retry:
                raise self._error(method, failure)
            if failure.kind == "migrate" and migrations < 3:
                migrations += 1
                old, new = self.chat_id, str(failure.migrate_to)
                log.warning("Telegram chat %s was upgraded to a supergroup; sending to %s from now on", old, new)
                self.chat_id = new
                params = {**params, "chat_id": new}
                if self.on_migrate:
                    self.on_migrate(old or "", new)
                continue
            if failure.kind == "rate" and rate_waits < self.max_attempts:
                wait = failure.retry_after or 1.0
                if wait <= self.max_retry_after and not self._overruns(wait):
                    rate_waits += 1
                    log.info("Telegram rate limit on %s; waiting %.0fs as asked", method, wait)
                    self.sleep(wait)
                    continue
            if failure.kind == "transient":
                transient_failures += 1
                delay = self._backoff(transient_failures - 1)
                if transient_failures < self.max_attempts and not self._overruns(delay):
                    log.info("Telegram %s failed (%s); retry %d in %.1fs", method, failure.message,
                             transient_failures, delay)
                    self.sleep(delay)
                    continue
            raise self._error(method, failure)

    def _overruns(self, wait: float) -> bool:
        return self.deadline is not None and self.clock() + wait > self.deadline

    def _error(self, method: str, f: _Failure) -> TelegramError:
        text = f"Telegram {method}: {f.message}"
        kw = dict(error_code=f.error_code, description=f.description, retry_after=f.retry_after)
        if f.kind == "parse":
            return _ParseError(text, **kw)
        if f.kind == "chat":
            return TelegramChatUnavailable(text, **kw)
        if f.kind == "gone":
            return TelegramMessageGone(text, **kw)
        if f.kind in ("permanent", "migrate"):
            return TelegramPermanentError(text, **kw)
        return TelegramTransientError(text, **kw)

    def _attempt(self, method: str, params: dict[str, Any], files: dict | None,
                 request_timeout: float | None = None) -> tuple[_Failure | None, Any]:
        url = f"{self.api_base}/bot{self._token}/{method}"
        log.debug("Telegram %s to chat %s", method, params.get("chat_id", "-"))
        extra = {"timeout": httpx.Timeout(request_timeout)} if request_timeout else {}
        try:
            if files:
                form = {k: (v if isinstance(v, str) else _form_value(v)) for k, v in params.items()}
                response = self._http.post(url, data=form, files=files, **extra)
            else:
                response = self._http.post(url, json=params, **extra)
        except httpx.TimeoutException as exc:
            return _Failure("transient", f"timed out ({type(exc).__name__})"), None
        except httpx.TransportError as exc:
            # the text may hold the URL: keep only a redacted, short reason
            return _Failure("transient", f"connection failed: {redact(exc)[:200]}"), None
        return self._interpret(response)

    @staticmethod
    def _interpret(response: httpx.Response) -> tuple[_Failure | None, Any]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if status >= 500 or status == 429 or 200 <= status < 300:
                return _Failure("transient", f"HTTP {status} without a Bot API answer", status), None
            kind = "chat" if status in (401, 403, 404) else "permanent"
            return _Failure(kind, f"HTTP {status} without a Bot API answer", status), None
        if body.get("ok") is True:
            return None, body.get("result")
        code = int(body.get("error_code") or status)
        desc = str(body.get("description") or f"HTTP {status}")
        parameters = body.get("parameters") or {}
        msg = f"{code} {desc}"
        if parameters.get("migrate_to_chat_id") is not None:
            return _Failure("migrate", msg, code, desc, migrate_to=int(parameters["migrate_to_chat_id"])), None
        if code == 429:
            retry_after = float(parameters.get("retry_after") or 1)
            return _Failure("rate", msg, code, desc, retry_after=retry_after), None
        if code >= 500:
            return _Failure("transient", msg, code, desc), None
        lowered = desc.lower()
        if code == 400 and "can't parse entities" in lowered:
            return _Failure("parse", msg, code, desc), None
        if code == 400 and "message is not modified" in lowered:
            return _Failure("unmodified", msg, code, desc), None
        if code == 400 and any(s in lowered for s in _MESSAGE_GONE):
            return _Failure("gone", msg, code, desc), None
        if code in (401, 403, 404) or any(s in lowered for s in _CHAT_GONE):
            return _Failure("chat", msg, code, desc), None
        return _Failure("permanent", msg, code, desc), None


def _form_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
