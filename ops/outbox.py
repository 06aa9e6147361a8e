"""The durable outbox: messages are rows first, deliveries second.

Producers (`ops.alerts`, scheduled reports) call `enqueue(conn, ...)` inside
the transaction that made the state change, so a message exists exactly when
its cause does. `drain()` sends pending rows strictly in id order:

- one sender at a time (a transaction-scoped advisory lock), and the head row
  locked `FOR UPDATE SKIP LOCKED` while it is sent; it is marked sent in the
  same transaction, so a committed row is never sent again;
- a process killed mid-send rolls back: the row is still pending and goes
  out on the next drain (at-least-once; the only duplicate possible is the
  one message that was in flight);
- a failed head stays pending with a next-attempt time (exponential backoff,
  or the server's retry_after) and blocks the rows behind it, so order holds;
- a destination that refuses everything (bot blocked, chat not found) is
  reported once, marked in `opsbench.telegram_chats`, and probed again only
  after `BLOCKED_RETRY`: messages wait, none are dropped;
- after a long outage the first message delivered says how many were held
  and for how long.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import random
import time
from typing import Callable

from sqlalchemy.engine import Connection, Engine

import queries
from ops import messages
from ops.channels import (Channel, ChannelUnavailable, DeliveryDeferred, DeliveryRejected, OutgoingMessage,
                          TelegramChannel)
from ops.redact import redact
from ops.settings import Settings

log = logging.getLogger("opsbench.outbox")

BACKLOG_NOTICE_AFTER = dt.timedelta(minutes=15)   # older head than this = "long outage"
RETRY_BASE = dt.timedelta(seconds=30)
RETRY_CAP = dt.timedelta(hours=1)
BLOCKED_RETRY = dt.timedelta(hours=1)


def _q():
    return queries.load("state/outbox")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def enqueue(conn: Connection, text: str, *, kind: str = "text", payload: bytes | None = None,
            payload_path: str | None = None, filename: str | None = None, silent: bool = False,
            source: str | None = None, now: dt.datetime | None = None) -> list[int]:
    """Queue a message inside the caller's transaction. Returns the outbox ids.

    Text longer than one Telegram message becomes several rows (split at line
    boundaries, tags whole), so a retry never resends a part already delivered.
    For photo/document `text` is the caption (kept within 1,024).
    """
    if kind not in ("text", "photo", "document"):
        raise ValueError(f"unknown outbox kind {kind!r}")
    now = now or utc_now()
    if kind == "text":
        bodies = messages.split_html(text) or [""]
    else:
        if payload is None and not payload_path:
            raise ValueError(f"a {kind} needs payload bytes or a payload_path")
        bodies = [messages.caption(text)]
    b64 = base64.b64encode(payload).decode("ascii") if payload is not None else None
    ids = []
    for body in bodies:
        row = _q().enqueue.execute(conn, created_at=now, kind=kind, body=body, payload_b64=b64,
                                   payload_path=payload_path, filename=filename, silent=silent,
                                   source=source).one()
        ids.append(int(row.id))
    return ids


def depth(engine: Engine) -> int:
    """How many messages wait for delivery."""
    with engine.connect() as conn:
        return int(_q().depth.execute(conn).scalar_one())


def recent(engine: Engine, limit: int = 50) -> list:
    with engine.connect() as conn:
        return list(_q().messages.execute(conn, limit=limit))


def _retry_delay(attempts: int, retry_after: float | None) -> dt.timedelta:
    step = min(RETRY_CAP, RETRY_BASE * (2 ** max(0, attempts - 1)))
    step = step * (0.8 + 0.4 * random.random())
    if retry_after:
        step = max(step, dt.timedelta(seconds=retry_after))
    return step


def _blocked_until(engine: Engine, channel: Channel) -> dt.datetime | None:
    if not isinstance(channel, TelegramChannel):
        return None
    with engine.connect() as conn:
        row = _q().chat.execute(conn, configured_chat_id=channel.configured_chat_id).first()
    if row is None or row.blocked_at is None:
        return None
    return row.blocked_at + BLOCKED_RETRY


# One channel per (settings, engine) for the process, so per-chat pacing and the
# HTTP connection pool carry over from one drain to the next.
_channels: dict[tuple, Channel] = {}


def _channel_for(settings: Settings, engine: Engine, sleep: Callable[[float], None]) -> Channel:
    from ops import channels

    key = (settings, engine, sleep)
    if key not in _channels:
        _channels[key] = channels.from_settings(settings, engine, sleep=sleep)
    return _channels[key]


def drain(settings: Settings, engine: Engine, channel: Channel | None = None,
          clock: Callable[[], dt.datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
          max_messages: int | None = None) -> int:
    """Send pending messages in order until none is due. Returns how many were delivered."""
    if channel is None:
        channel = _channel_for(settings, engine, sleep)
    blocked_until = _blocked_until(engine, channel)
    if blocked_until is not None and clock() < blocked_until:
        return 0
    delivered = 0
    noticed = False
    while max_messages is None or delivered < max_messages:
        with engine.begin() as conn:
            if not _q().try_sender_lock.execute(conn).scalar_one():
                break  # another drain is sending; it keeps the order
            row = _q().head.execute(conn).first()
            now = clock()
            if row is None or row.next_attempt_at > now:
                break
            body = row.body
            notice = None
            if not noticed:
                noticed = True
                backlog = _q().backlog.execute(conn).one()
                held = now - backlog.oldest
                if held >= BACKLOG_NOTICE_AFTER:
                    notice = messages.backlog_notice(int(backlog.pending), held)
            outgoing = OutgoingMessage(row.kind, body, row.payload, row.payload_path, row.filename, row.silent)
            try:
                if notice and row.kind == "text" and messages.utf16_len(notice + "\n\n" + body) <= messages.MESSAGE_LIMIT:
                    outgoing = OutgoingMessage("text", notice + "\n\n" + body, silent=row.silent)
                elif notice:
                    channel.send(OutgoingMessage("text", notice, silent=row.silent))
                channel.send(outgoing)
            except DeliveryDeferred as err:
                delay = _retry_delay(row.attempts + 1, err.retry_after)
                _q().mark_retry.execute(conn, id=row.id, next_attempt_at=now + delay, error=redact(err)[:1000])
                log.warning("outbox: message %s not delivered (%s); next try in %s", row.id, redact(err),
                            messages.human_duration(delay))
                break
            except ChannelUnavailable as err:
                _q().mark_retry.execute(conn, id=row.id, next_attempt_at=now + BLOCKED_RETRY,
                                        error=redact(err)[:1000])
                _mark_blocked(conn, channel, err, now)
                break
            except DeliveryRejected as err:
                _q().mark_failed.execute(conn, id=row.id, error=redact(err)[:1000])
                log.error("outbox: message %s rejected for good: %s", row.id, redact(err))
                continue
            _q().mark_sent.execute(conn, id=row.id, sent_at=now, channel=channel.key)
            if blocked_until is not None and isinstance(channel, TelegramChannel):
                _q().chat_unblocked.execute(conn, configured_chat_id=channel.configured_chat_id, at=now)
                blocked_until = None
        delivered += 1
    return delivered


def _mark_blocked(conn: Connection, channel: Channel, err: Exception, now: dt.datetime) -> None:
    """Remember the refusal; log it only the first time (reported once)."""
    if isinstance(channel, TelegramChannel):
        newly = _q().chat_blocked.execute(conn, configured_chat_id=channel.configured_chat_id,
                                          chat_id=str(channel.client.chat_id), reason=redact(err)[:500],
                                          at=now).scalar_one()
    else:
        newly = True
    if newly:
        log.error("outbox: %s refuses messages (%s); holding them and retrying every %s",
                  channel.key, redact(err), messages.human_duration(BLOCKED_RETRY))
