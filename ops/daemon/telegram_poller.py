"""The leader daemon's ear: getUpdates long polling for button presses and commands.

Why long polling and not a webhook: it needs no public URL, no TLS
certificate and no open port on the founder's server, and only the leader
asks, so a second daemon on standby costs nothing. (A webhook would answer a
little faster; it can come later behind the same `ops.alerting.telegram.bot.handle`.)

Exactly once: each update is acted on in the state-store transaction that
moves the stored offset past it (opsbench.telegram_updates, row-locked), and
Telegram is asked again from the stored offset. A daemon killed between
receiving an update and committing acts on it after restart, or the other
daemon does after a failover; one that committed is never asked for it again,
and a repeated delivery is skipped because its id is below the offset.

Replies, edits and answers are outbox rows; after each batch the poller
drains the outbox at once, so a press is answered within a second or two
rather than at the next `drain_outbox` run.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

import queries
from ops.alerting import bridge
from ops.alerting.telegram import bot
from ops.core import backoff, sentry
from ops.core.clock import utc_now
from ops.core.redact import redact
from ops.core.settings import Settings

log = logging.getLogger("opsbench.telegram.updates")

ANSWER_DRAIN_BUDGET_S = 10.0
MAX_BACKOFF_S = 30.0


def bot_key(settings: Settings) -> str:
    """The bot's numeric id (the token's part before ':'), which keys the stored offset; never the secret."""
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    return token.split(":", 1)[0] if ":" in token else "bot"


def process(engine: Engine, update: dict, settings: Settings, now: dt.datetime,
            bot_username: str | None = None) -> bot.Outcome | None:
    """Act on one update exactly once. None when it was acted on before (below the stored offset).

    A bug in handling one update is recorded and the update skipped (a poison
    update must not stop every later one); a database error leaves the
    offset where it was, so the update is acted on when the database is back."""
    sql = queries.load("state/incidents")
    key = bot_key(settings)
    update_id = int(update.get("update_id", -1))
    try:
        with engine.begin() as conn:
            next_offset = int(sql.offset.execute(conn, bot=key, at=now).scalar_one())  # locks the row
            if update_id < next_offset:
                return None
            outcome = bot.handle(conn, update, settings, now, bot_username)
            sql.advance.execute(conn, bot=key, next_offset=update_id + 1, at=now)
            return outcome
    except DBAPIError:
        raise
    except Exception as e:
        log.error("Telegram update %s could not be handled (%s: %s); skipped", update_id, type(e).__name__,
                  redact(e))
        sentry.capture_exception(e, tags={"component": "telegram-updates"})
        with engine.begin() as conn:
            sql.offset.execute(conn, bot=key, at=now)
            sql.audit.execute(conn, at=now, update_id=update_id, action="update", outcome="failed",
                              detail=f"{type(e).__name__}: {redact(e)}"[:500])
            sql.advance.execute(conn, bot=key, next_offset=update_id + 1, at=now)
        return bot.Outcome("update", "failed")


class TelegramPoller:
    """Runs in a thread of the leader daemon while `leading()` is true."""

    def __init__(self, settings: Settings, engine: Engine, *, leading: Callable[[], bool],
                 run_job: Callable[[str], None], clock: Callable[[], dt.datetime] = utc_now,
                 wait: Callable[[float], bool] | None = None):
        self.settings, self.engine = settings, engine
        self.leading, self.run_job, self.clock = leading, run_job, clock
        self._wait = wait or threading.Event().wait
        self._client = None
        self._username: str | None = None
        self._registered = False

    def _connect(self):
        from ops.alerting.telegram.channel import telegram_client

        if self._client is None:
            # few retries inside a call: the loop itself retries, and a long poll must not stack waits
            self._client = telegram_client(self.settings, self.engine, max_attempts=2,
                                           backoff_cap=2.0, max_retry_after=5.0)
        if not self._registered:
            me = self._client.get_me()
            self._username = me.get("username")
            self._client.set_my_commands(bot.COMMANDS)
            self._registered = True
            log.info("Telegram: listening for buttons and commands as @%s", self._username)
        return self._client

    def poll_once(self) -> int:
        """One getUpdates round (a long poll) and its updates. Returns how many were acted on."""
        client = self._connect()
        with self.engine.connect() as conn:
            row = queries.load("state/incidents").peek_offset.execute(conn, bot=bot_key(self.settings)).first()
        offset = int(row.next_offset) if row and row.next_offset else None
        updates = client.get_updates(offset=offset, timeout=self.settings.telegram_poll_timeout_s)
        acted = 0
        for update in sorted(updates, key=lambda u: int(u.get("update_id", 0))):
            if not self.leading():
                break  # the new leader asks again from the stored offset
            outcome = process(self.engine, update, self.settings, self.clock(), self._username)
            if outcome is None:
                continue
            acted += 1
            for job in outcome.run_jobs:
                threading.Thread(target=self.run_job, args=(job,), name=f"telegram-{job}", daemon=True).start()
        if acted:
            bridge.drain(self.settings, self.engine, clock=self.clock, budget_s=ANSWER_DRAIN_BUDGET_S)
        return acted

    def run(self) -> None:
        failures = 0
        while self.leading():
            try:
                self.poll_once()
                failures = 0
            except Exception as e:
                failures += 1
                delay = backoff.delay(failures, 1.0, MAX_BACKOFF_S, jitter=(1.0, 1.0))  # 2, 4 ... 30 s, no jitter
                level = logging.WARNING if failures in (1, 5) or failures % 50 == 0 else logging.DEBUG
                log.log(level, "Telegram getUpdates failed (%s); retrying in %.0fs", redact(e).splitlines()[0],
                        delay)
                if self._wait(delay):
                    break
        if self._client is not None:
            self._client.close()
            self._client = None
