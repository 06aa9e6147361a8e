"""Telegram, as one channel plugin (ops/alerting/channel.py is the interface it fills):

client.py     the Bot API client (the only code that knows the Bot API)
html.py       the chat's markup: escaping, splitting at Telegram's limits, alert blocks
render.py     notices -> outbox rows (incident message with buttons, edits, replies)
incidents.py  one message per incident, edited in place; its buttons and Details
channel.py    TelegramChannel: sends rows, knows refusals, migrations and its backlog line
bot.py        the other direction: updates (buttons, commands) in, effects out
"""
