"""Which channels are on, and where each outbox destination goes.

A destination is a named route for outbox rows, stored on every row:

- "main": the chat. Telegram when TELEGRAM_BOT_TOKEN is set, else the console
  (which prints the chat's rows, so the demo shows what would be sent). Both
  take the chat's medium (ops/alerting/telegram/render.py). Incident messages
  with buttons, bot replies and reports go here.
- "email": emails over SMTP when OPSBENCH_EMAIL_TO is set
  (ops/alerting/email/).

Several destinations are on at once: a notice is rendered once per
destination (`MEDIA`) and each destination is drained on its own, so a
channel that is down holds only its own rows, retried later, and never the
others'. To add a channel: a folder beside telegram/ and email/ with
`render.py` (the medium, ops.alerting.channel.Medium) and `channel.py` (a
BaseChannel with `send`, and `connect(settings, engine, ...)`), then one line
in `MEDIA`, `destinations()` and `connect()` below, and its settings in
ops/core/settings.py.
"""

from __future__ import annotations

from typing import Callable, TextIO

from sqlalchemy.engine import Engine

from ops.alerting.channel import Channel, Medium
from ops.alerting.console.channel import ConsoleChannel
from ops.alerting.email import render as email_render
from ops.alerting.telegram import render as telegram_render
from ops.core.settings import Settings

# destination -> how a notice looks there (settings-free: rows are rendered in the producer's transaction)
MEDIA: dict[str, Medium] = {"main": telegram_render, "email": email_render}


def medium(destination: str) -> Medium:
    try:
        return MEDIA[destination]
    except KeyError:
        raise ValueError(f"unknown outbox destination {destination!r} (known: {', '.join(MEDIA)})") from None


def destinations(settings: Settings) -> list[str]:
    """The destinations that are on: the chat always (Telegram or the console), email when configured."""
    return ["main"] + (["email"] if settings.email_to else [])


def connect(destination: str, settings: Settings, engine: Engine | None = None, *,
            clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None,
            stream: TextIO | None = None) -> Channel:
    """The channel that delivers `destination`'s rows (built from settings; nothing is sent)."""
    if destination == "main":
        if settings.telegram_bot_token is None:
            return ConsoleChannel(stream)
        from ops.alerting.telegram import channel as telegram   # the HTTP client, only when it is used

        return telegram.connect(settings, engine, clock=clock, sleep=sleep)
    if destination == "email":
        from ops.alerting.email import channel as email

        return email.connect(settings, engine, clock=clock)
    raise ValueError(f"unknown outbox destination {destination!r} (known: {', '.join(MEDIA)})")


def from_settings(settings: Settings, engine: Engine | None = None, *, clock: Callable[[], float] | None = None,
                  sleep: Callable[[float], None] | None = None, stream: TextIO | None = None) -> Channel:
    """The chat's channel: Telegram when a bot token is configured, else the console."""
    return connect("main", settings, engine, clock=clock, sleep=sleep, stream=stream)


def active(settings: Settings, engine: Engine | None = None, *, clock: Callable[[], float] | None = None,
           sleep: Callable[[float], None] | None = None, stream: TextIO | None = None) -> list[Channel]:
    """One channel per destination that is on."""
    return [connect(d, settings, engine, clock=clock, sleep=sleep, stream=stream) for d in destinations(settings)]
