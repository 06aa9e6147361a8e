"""The durable outbox: messages are rows first, deliveries second.

Producers call `publish(conn, notice, settings)` (the alert manager: a neutral
`ops.alerting.notices.Notice`, rendered by every destination that is on) or
`enqueue(conn, text, ...)` (scheduled reports, bot replies: free text for one
destination, the chat by default) inside the transaction that made the state
change, so a message exists exactly when its cause does. Every row names its
destination (ops/alerting/channels.py); `drain()` sends each destination's
pending rows strictly in id order, one destination after the other, so one
that is down holds back only its own rows:

- one sender at a time (a transaction-scoped advisory lock), and the head row
  locked `FOR UPDATE SKIP LOCKED` while it is sent; it is marked sent in the
  same transaction, so a committed row is never sent again;
- a process killed mid-send rolls back: the row is still pending and goes
  out on the next drain (at-least-once; the only duplicate possible is the
  one message that was in flight);
- a failed head stays pending with a next-attempt time (exponential backoff,
  or the server's retry_after) and blocks the rows behind it, so order holds;
- a destination that refuses everything (bot blocked, chat not found, SMTP
  login refused) is reported once (an ERROR log line and one Sentry event),
  remembered by its channel (Telegram: `opsbench.telegram_chats`), and probed
  again every `BLOCKED_RETRY`: messages wait, none are dropped, and delivery
  resumes within minutes of the destination taking messages again;
- what an error means and how long to wait is the channel's to say
  (`channel.outcome(err)`, `channel.retry_wait(err, attempts)`);
- a message the destination rejects for good (a permanent 400) is marked
  `failed`, kept for inspection, logged and sent to Sentry once, and the
  queue moves on; `delivery_problems()` tells the CLI about both;
- after a long outage the first message delivered says how many were held
  and for how long, once: a later drain of the same backlog does not repeat it;
- `drain(budget_s=...)` stops starting new sends once its time budget is
  spent (no wait inside a send crosses it either), so the daemon's drain job
  ends well within its timeout; the rest goes out on the next run.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.engine import Connection, Engine

import queries
from ops.alerting import channels
from ops.alerting.channel import (  # noqa: F401  (pack_album: reports build albums with it)
    BLOCKED_RETRY,
    KINDS,
    RETRY_BASE,
    RETRY_CAP,
    Channel,
    Draft,
    OutgoingMessage,
    Sent,
    pack_album,
    unpack_album,
)
from ops.alerting.notices import Notice, human_duration
from ops.core.clock import utc_now
from ops.core.errors import DeliveryError, Outcome
from ops.core.redact import redact
from ops.core.settings import Settings

log = logging.getLogger("opsbench.outbox")

BACKLOG_NOTICE_AFTER = dt.timedelta(minutes=15)   # older head than this = "long outage"


def _q():
    return queries.load("state/outbox")


def enqueue(conn: Connection, text: str, *, kind: str = "text", payload: bytes | None = None,
            payload_path: str | None = None, filename: str | None = None, silent: bool = False,
            source: str | None = None, now: dt.datetime | None = None, incident_id: int | None = None,
            reply_to: int | None = None, reply_markup: dict | None = None,
            callback_query_id: str | None = None, destination: str = "main") -> list[int]:
    """Queue a message for one destination (the chat unless told) inside the caller's transaction.
    Returns the outbox ids.

    Text longer than one message of the destination's medium becomes several rows (split at line
    boundaries, tags whole), so a retry never resends a part already delivered;
    a text that shows nothing (empty, whitespace) stores no row and returns [].
    For photo/document `text` is the caption (kept within 1,024); a media_group's payload
    is `pack_album(...)`, its text the album's caption.

    Two-way Telegram (ops.alerting.telegram.incidents, ops.alerting.telegram.bot): `incident_id`
    ties a text (the incident's message, with `reply_markup` buttons), an
    `edit` of it or a `reply` to it to the incident, whose Telegram message id
    is looked up when the row is sent; `reply_to` replies to a command's
    message; an `answer` (to `callback_query_id`) goes in its own lane, so a
    button press is answered even while the chat's queue waits on a 429.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    medium = channels.medium(destination)
    now = now or utc_now()
    markup = json.dumps(reply_markup) if reply_markup is not None else None
    if kind == "answer":
        row = _q().enqueue.execute(conn, created_at=now, kind=kind, body=text[:200], source=source,
                                   callback_query_id=callback_query_id, lane="answer",
                                   destination=destination).one()
        return [int(row.id)]
    if kind in ("edit", "reply"):
        if incident_id is None:
            raise ValueError(f"an {kind} needs the incident it refers to")
        bodies = [text] if kind == "edit" else medium.parts(text)
    elif kind == "text":
        bodies = medium.parts(text)  # nothing for a text that shows nothing: Telegram would refuse it
    else:
        if payload is None and not payload_path:
            raise ValueError(f"a {kind} needs payload bytes or a payload_path")
        bodies = [medium.caption(text)]
    b64 = base64.b64encode(payload).decode("ascii") if payload is not None else None
    ids = []
    for i, body in enumerate(bodies):
        last = i == len(bodies) - 1
        row = _q().enqueue.execute(conn, created_at=now, kind=kind, body=body, payload_b64=b64,
                                   payload_path=payload_path, filename=filename, silent=silent,
                                   source=source, incident_id=incident_id if (i == 0 or kind == "reply") else None,
                                   reply_to=reply_to if i == 0 else None,
                                   reply_markup=markup if last else None, destination=destination).one()
        ids.append(int(row.id))
    return ids


def publish(conn: Connection, notice: Notice, settings: Settings, *, now: dt.datetime | None = None,
            source: str | None = None) -> list[int]:
    """Queue a notice on every destination that is on, each rendered for its medium, inside the
    caller's transaction. Returns the outbox ids (the chat's first)."""
    now = now or utc_now()
    ids: list[int] = []
    for destination in channels.destinations(settings):
        for d in channels.medium(destination).render(conn, notice, settings, now):
            ids.append(_store(conn, d, destination, now, source))
    return ids


def _store(conn: Connection, d: Draft, destination: str, now: dt.datetime, source: str | None) -> int:
    markup = json.dumps(d.reply_markup) if d.reply_markup is not None else None
    return int(_q().enqueue.execute(conn, created_at=now, kind=d.kind, body=d.body, payload_b64=None,
                                    payload_path=None, filename=None, silent=d.silent, source=source,
                                    incident_id=d.incident_id, reply_to=None, reply_markup=markup,
                                    destination=destination).one().id)


def depth(engine: Engine) -> int:
    """How many messages wait for delivery."""
    with engine.connect() as conn:
        return int(_q().depth.execute(conn).scalar_one())


def recent(engine: Engine, limit: int = 50) -> list:
    with engine.connect() as conn:
        return list(_q().messages.execute(conn, limit=limit))


def channel_for(settings: Settings, engine: Engine, sleep: Callable[[float], None] = time.sleep,
                runtime: Any = None) -> list[Channel]:
    """The channels of (settings, engine), one set per runtime (the process's for `settings` when none is
    given), so per-chat pacing and the HTTP connection pool carry over from one drain to the next."""
    from ops.data import runtime as runtimes

    rt = runtime if runtime is not None else runtimes.for_settings(settings)
    return rt.shared(("outbox.channels", settings, engine, sleep),
                     lambda: channels.active(settings, engine, sleep=sleep))


def drain(settings: Settings, engine: Engine, channel: Channel | None = None,
          clock: Callable[[], dt.datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
          max_messages: int | None = None, budget_s: float | None = None, runtime: Any = None) -> int:
    """Send pending messages in order until none is due. Returns how many were delivered.

    `max_messages` and `budget_s` (seconds on `clock`) bound one call: no new
    message is started once the budget is spent, and waits inside a send
    (pacing, retry_after, backoff) that would end past it are not taken. What
    is left stays pending, in order, for the next call. With `channel`, only
    its destination's rows; without, every destination that is on, each with
    the channel of `runtime` (a job's `ctx.runtime`), one after the other (a
    destination that fails gives way to the next at once).
    """
    targets = [channel] if channel is not None else channel_for(settings, engine, sleep, runtime)
    deadline = None if budget_s is None else clock() + dt.timedelta(seconds=budget_s)
    delivered = 0
    for target in targets:
        left = None if max_messages is None else max_messages - delivered
        if left is not None and left <= 0:
            break
        spent = None if deadline is None else max(0.0, (deadline - clock()).total_seconds())
        delivered += _drain_one(engine, target, clock, left, spent)
    return delivered


def _drain_one(engine: Engine, channel: Channel, clock: Callable[[], dt.datetime], max_messages: int | None,
               budget_s: float | None) -> int:
    """Send one destination's pending rows in order (see `drain`)."""
    destination = channel.destination
    delivered = _drain_answers(engine, channel, clock)
    with engine.connect() as conn:
        held_until = channel.held_until(conn)
    if held_until is not None and clock() < held_until:
        return delivered
    deadline = None if budget_s is None else clock() + dt.timedelta(seconds=budget_s)
    first = True
    try:
        while max_messages is None or delivered < max_messages:
            if deadline is not None and clock() >= deadline:
                break
            with engine.begin() as conn:
                if not _q().try_sender_lock.execute(conn, destination=destination).scalar_one():
                    break  # another drain is sending; it keeps the order
                row = _q().head.execute(conn, destination=destination).first()
                now = clock()
                if row is None or row.next_attempt_at > now:
                    break
                notice = _backlog_notice(conn, channel, row, now) if first else None
                first = False
                channel.set_deadline(None if deadline is None else (deadline - now).total_seconds())
                outgoing = _outgoing(row)
                try:
                    merged = channel.with_notice(notice, outgoing) if notice else None
                    if merged is not None:
                        outgoing = merged
                    elif notice:
                        channel.send(OutgoingMessage("text", notice, silent=row.silent))
                        # told: whatever happens to the head now, no later drain repeats it
                        _q().mark_noticed.execute(conn, destination=destination)
                        notice = None
                    landed = channel.send(outgoing)
                except DeliveryError as err:
                    if not _failed(conn, channel, row, err, clock()):
                        break
                    continue
                if notice:
                    _q().mark_noticed.execute(conn, destination=destination)
                _remember_incident_message(conn, row, landed)
                _q().mark_sent.execute(conn, id=row.id, sent_at=now, channel=channel.key)
                if held_until is not None:
                    channel.accepted(conn, now)
                    held_until = None
            delivered += 1
    finally:
        channel.set_deadline(None)  # the channel outlives this call
    return delivered


def _outgoing(row: Any) -> OutgoingMessage:
    """The head row as the channel sees it: edits and replies point at the incident's message."""
    kind, target = row.kind, row.reply_to
    if row.incident_id is not None and kind in ("edit", "reply"):
        target = row.incident_message_id
        if target is None:
            kind = "text"  # the incident's message never went out: this one stands in for it
    return OutgoingMessage(kind, row.body, row.payload, row.payload_path, row.filename, row.silent,
                           reply_markup=row.reply_markup, reply_to=target, edit_chat_id=row.incident_chat_id)


def _remember_incident_message(conn: Connection, row: Any, landed: Sent | None) -> None:
    """The incident's message (or the new message an edit had to become) is where later edits go."""
    if landed is None or row.incident_id is None or row.kind == "reply":
        return
    if row.kind == "text" and row.incident_message_id is not None:
        return  # a later part of a long text: the first part is the incident's message
    _q().incident_delivered.execute(conn, id=row.incident_id, chat_id=landed.chat_id, message_id=landed.message_id)


def _drain_answers(engine: Engine, channel: Channel, clock: Callable[[], dt.datetime]) -> int:
    """Answer button presses first: Telegram shows a spinner until then, and they do not wait
    behind the chat's queue (a 429 for the chat says nothing about answerCallbackQuery)."""
    done = 0
    with engine.begin() as conn:
        for row in _q().due_answers.execute(conn, now=clock(), destination=channel.destination).fetchall():
            try:
                channel.send(OutgoingMessage("answer", row.body, callback_query_id=row.callback_query_id))
            except DeliveryError as err:
                answered = clock()
                if channel.outcome(err) is Outcome.never or not err.attempted or row.attempts >= 5:
                    # too old now, or refused: the press's effect shows in the edited message anyway
                    _q().mark_failed.execute(conn, id=row.id, error=redact(err)[:1000], failed_at=answered)
                    log.info("outbox: button answer %s not delivered: %s", row.id, redact(err))
                    continue
                # a short wait: an answer is worth nothing a minute after the press
                _q().mark_retry.execute(conn, id=row.id, error=redact(err)[:1000],
                                        next_attempt_at=answered + dt.timedelta(seconds=err.retry_after or 2))
                continue
            _q().mark_sent.execute(conn, id=row.id, sent_at=clock(), channel=channel.key)
            done += 1
    return done


def _failed(conn: Connection, channel: Channel, row: Any, err: DeliveryError, answered: dt.datetime) -> bool:
    """Record a failed send of the head. True when the drain may go on with the next message.

    Every wait counts from `answered`, when the failure came back, not from
    when the message was picked: a send that waited inside the client (pacing,
    retry_after) would otherwise end with a retry time already in the past.
    """
    if not err.attempted:
        return False  # out of this call's time budget before sending: the row waits as it is
    outcome = channel.outcome(err)
    if outcome is Outcome.never:
        _q().mark_failed.execute(conn, id=row.id, error=redact(err)[:1000], failed_at=answered)
        log.error("outbox: message %s rejected for good: %s", row.id, redact(err))
        _sentry_event(f"{_medium_name(channel)} rejected outbox message {row.id} for good: {err}",
                      fingerprint=["opsbench-outbox-rejected"], channel=channel.key, source=row.source or "-")
        return True
    if outcome is Outcome.refused:
        _q().mark_retry.execute(conn, id=row.id, next_attempt_at=answered + BLOCKED_RETRY, error=redact(err)[:1000])
        _mark_blocked(conn, channel, err, answered)
        return False
    # retry_later / retry_after
    delay = channel.retry_wait(err, row.attempts + 1)
    _q().mark_retry.execute(conn, id=row.id, next_attempt_at=answered + delay, error=redact(err)[:1000])
    log.warning("outbox: message %s not delivered (%s); next try in %s", row.id, redact(err),
                human_duration(delay))
    return False


def _medium_name(channel: Channel) -> str:
    """How a Sentry event names the channel ("Telegram", "Email"), from its key (telegram:-100123)."""
    return channel.key.split(":", 1)[0].capitalize()


def _backlog_notice(conn: Connection, channel: Channel, row: Any, now: dt.datetime) -> str | None:
    """The "N messages were held for X" line, when the head waited long and nobody was told yet."""
    if row.backlog_noticed:
        return None
    backlog = _q().backlog.execute(conn, destination=channel.destination).one()
    held = now - backlog.oldest
    if held < BACKLOG_NOTICE_AFTER:
        return None
    return channel.backlog_notice(int(backlog.pending), held)


def _sentry_event(text: str, fingerprint: list[str], **tags: str) -> None:
    """One Sentry event (level error), redacted; nothing when Sentry is off.

    The logging integration turns log lines into breadcrumbs only, so a
    delivery problem that no exception carries is sent here explicitly.
    """
    from ops.core import sentry

    if not sentry.enabled():
        return
    import sentry_sdk

    try:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("component", "outbox")
            for k, v in tags.items():
                scope.set_tag(k, redact(v))
            scope.fingerprint = fingerprint
            sentry_sdk.capture_message(redact(text), level="error")
    except Exception as e:  # monitoring must never stop delivery
        log.warning("outbox: could not report to Sentry: %s", redact(e))


def _mark_blocked(conn: Connection, channel: Channel, err: DeliveryError, now: dt.datetime) -> None:
    """Remember the refusal (the channel knows where); log it only the first time (reported once)."""
    if channel.refused(conn, err, now):
        log.error("outbox: %s refuses messages (%s); holding them and retrying every %s",
                  channel.key, redact(err), human_duration(BLOCKED_RETRY))
        pending = int(_q().depth.execute(conn).scalar_one())
        _sentry_event(f"{_medium_name(channel)} delivery blocked: {channel.key} refuses messages ({err}); "
                      f"{pending} message(s) held, retried every {human_duration(BLOCKED_RETRY)}",
                      fingerprint=["opsbench-outbox-blocked", channel.key], channel=channel.key)


@dataclass(frozen=True)
class DeliveryProblems:
    """What keeps messages from reaching the founder, for `opsbench alerts` and `status`."""

    blocked: list[Any]        # rows: configured_chat_id, chat_id, blocked_reason, blocked_at, blocked_checked_at
    failed: int               # messages given up on (status 'failed'), kept for inspection
    recent_failed: list[Any]  # rows: id, created_at, failed_at, kind, source, last_error (newest first)

    @property
    def any(self) -> bool:
        return bool(self.blocked or self.failed)


def delivery_problems(engine: Engine, recent_failed: int = 3) -> DeliveryProblems:
    with engine.connect() as conn:
        blocked = list(_q().blocked_chats.execute(conn))
        failed = int(_q().failed_count.execute(conn).scalar_one())
        recent_rows = list(_q().failed_recent.execute(conn, limit=recent_failed)) if failed else []
    return DeliveryProblems(blocked, failed, recent_rows)
