"""The channel interface: what the outbox needs from a medium, and nothing of any medium.

A channel plugin is one folder under ops/alerting/ (telegram/, console/, email/)
with two sides, wired together in ops/alerting/channels.py:

- a medium (`Medium`): `render(conn, notice, settings, now)` turns a neutral
  `ops.alerting.notices.Notice` into the rows to store (`Draft`s), already cut
  to the medium's limits, inside the producer's transaction (so a retry never
  resends a part already delivered); `parts(text)` and `caption(text)` do the
  same for free text;
- a channel (`Channel`, usually a `BaseChannel`): `send()` delivers one row or
  raises a `DeliveryError`; the outbox asks it what an error means
  (`outcome`), how long to wait before the next try (`retry_wait`), and whether
  it is held by a refusal (`held_until`, `refused`, `accepted`) - never which
  class it is.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Connection

import queries
from ops.alerting.notices import Notice, human_duration
from ops.core import backoff
from ops.core.errors import DeliveryError, Outcome
from ops.core.redact import redact

log = logging.getLogger("opsbench.channels")

RETRY_BASE = dt.timedelta(seconds=30)
RETRY_CAP = dt.timedelta(minutes=5)       # a long outage is probed every ~5 min, not hourly
BLOCKED_RETRY = dt.timedelta(minutes=5)   # a refusing destination is probed again this often (one request)

KINDS = ("text", "photo", "document", "media_group", "edit", "reply", "answer")


@dataclass(frozen=True)
class OutgoingMessage:
    """One outbox row as a channel sees it."""

    kind: str = "text"                 # text | photo | document | media_group | edit | reply | answer
    body: str = ""                     # the medium's text (chat: HTML), or caption (answer: the toast text)
    payload: bytes | None = None
    payload_path: str | None = None
    filename: str | None = None
    silent: bool = False
    reply_markup: dict | None = None   # inline keyboard under the message
    reply_to: int | None = None        # reply (and edit): the message id it refers to
    edit_chat_id: str | None = None    # edit: the chat of the message to edit
    callback_query_id: str | None = None   # answer: the button press

    def data(self) -> bytes:
        if self.payload is not None:
            return bytes(self.payload)
        if self.payload_path:
            return Path(self.payload_path).read_bytes()
        raise DeliveryError(f"{self.kind} message has neither payload nor file", outcome=Outcome.never)


@dataclass(frozen=True)
class Sent:
    """Where a delivered message landed (None from send() when there is nothing to point at)."""

    chat_id: str
    message_id: int


@dataclass(frozen=True)
class Draft:
    """One row a medium asks the outbox to store for a notice."""

    kind: str = "text"
    body: str = ""
    silent: bool = False
    incident_id: int | None = None     # the incident message this row sends, edits or replies to
    reply_markup: dict | None = None


def pack_album(files: list[tuple[str, bytes]]) -> bytes:
    """Several photos as one outbox payload (a media group is one row: delivered, or retried, whole)."""
    return json.dumps({"files": [{"filename": name, "data": base64.b64encode(data).decode("ascii")}
                                 for name, data in files]}).encode("utf-8")


def unpack_album(payload: bytes) -> list[tuple[str, bytes]]:
    return [(f["filename"], base64.b64decode(f["data"])) for f in json.loads(bytes(payload))["files"]]


def _q():
    return queries.load("state/outbox")


class Medium(Protocol):
    """How notices and free text look on one medium (module-level functions of a plugin's render.py)."""

    def render(self, conn: Connection, notice: Notice, settings: Any, now: dt.datetime) -> list[Draft]: ...

    def parts(self, text: str) -> list[str]: ...      # free text cut to one message each; [] shows nothing

    def caption(self, text: str) -> str: ...          # a file's caption within the medium's limit


class Channel(Protocol):
    destination: str   # the outbox rows it delivers ("main", "email")
    key: str           # names the place, e.g. "telegram:-100123", "console", "email:ops@example.com"

    def send(self, message: OutgoingMessage) -> Sent | None: ...

    def outcome(self, err: DeliveryError) -> Outcome: ...

    def retry_wait(self, err: DeliveryError, attempts: int) -> dt.timedelta: ...

    def held_until(self, conn: Connection) -> dt.datetime | None: ...

    def refused(self, conn: Connection, err: DeliveryError, now: dt.datetime) -> bool: ...

    def accepted(self, conn: Connection, now: dt.datetime) -> None: ...

    def backlog_notice(self, count: int, held: dt.timedelta) -> str: ...

    def with_notice(self, notice: str, message: OutgoingMessage) -> OutgoingMessage | None: ...

    def set_deadline(self, seconds_left: float | None) -> None: ...


class BaseChannel:
    """Defaults every channel may keep: the error's own outcome, exponential backoff (or the
    server's retry_after), a refusal remembered in opsbench.destination_holds under the
    channel's key, a plain-text backlog line."""

    destination = "main"
    key = "channel"

    def send(self, message: OutgoingMessage) -> Sent | None:  # pragma: no cover - every channel has its own
        raise NotImplementedError

    def outcome(self, err: DeliveryError) -> Outcome:
        return err.outcome

    def retry_wait(self, err: DeliveryError, attempts: int) -> dt.timedelta:
        step = dt.timedelta(seconds=backoff.delay(attempts - 1, RETRY_BASE.total_seconds(),
                                                  RETRY_CAP.total_seconds(), jitter=(0.8, 1.2)))
        if err.retry_after:
            step = max(step, dt.timedelta(seconds=err.retry_after))
        return step

    def held_until(self, conn: Connection) -> dt.datetime | None:
        """When a destination that refused everything is next probed (None: not held)."""
        row = _q().hold.execute(conn, key=self.key).first()
        return None if row is None else row.checked_at + BLOCKED_RETRY

    def refused(self, conn: Connection, err: DeliveryError, now: dt.datetime) -> bool:
        """Remember a refusal; True when it is news (the outbox reports it once)."""
        return bool(_q().hold_set.execute(conn, key=self.key, reason=redact(err)[:500], at=now).scalar_one())

    def accepted(self, conn: Connection, now: dt.datetime) -> None:
        """A message went through while the destination was held: the hold is over."""
        _q().hold_clear.execute(conn, key=self.key)

    def backlog_notice(self, count: int, held: dt.timedelta) -> str:
        noun = "message was" if count == 1 else "messages were"
        return f"⏳ Delayed delivery: {count} {noun} held for {human_duration(held)}; delivering in order."

    def with_notice(self, notice: str, message: OutgoingMessage) -> OutgoingMessage | None:
        """The message with the backlog notice on top, or None when it must go out on its own."""
        return None

    def set_deadline(self, seconds_left: float | None) -> None:
        """No wait inside send() may end more than `seconds_left` from now (None: no limit)."""
