"""Telegram, as one channel plugin (ops/alerting/channel.py is the interface it fills):

client.py     the Bot API client (the only code that knows the Bot API)
html.py       the chat's markup: escaping, splitting at Telegram's limits, alert blocks
render.py     notices -> outbox rows (incident message with buttons, edits, replies)
incidents.py  one message per incident, edited in place; its buttons and Details
channel.py    TelegramChannel: sends rows, knows refusals, migrations and its backlog line
bot.py        the other direction: updates (buttons, commands) in, effects out

The client's names are re-exported here (`from ops.alerting.telegram import TelegramClient`).
"""

_CLIENT_NAMES = ("Pacer", "TelegramChatUnavailable", "TelegramClient", "TelegramError", "TelegramMessageGone",
                 "TelegramOutOfTime", "TelegramPermanentError", "TelegramTransientError")


def __getattr__(name: str):
    # lazily, so that importing the chat's markup (html.py) does not load the HTTP client
    if name in _CLIENT_NAMES:
        from ops.alerting.telegram import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
