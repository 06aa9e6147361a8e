"""`opsbench alerts`, `silence`, `unsilence` and `telegram test|drain`."""

from __future__ import annotations

import datetime as dt
import getpass
from enum import Enum

import typer

from ops.cli import current_settings as get_settings
from ops.cli import fail
from ops.core.clock import utc_now

telegram_app = typer.Typer(help="Telegram delivery: check the bot, send what is waiting.", no_args_is_help=True)

def parse_duration(text: str) -> dt.timedelta:
    """--for as a timedelta; ValueError naming the option."""
    from ops.core.clock import parse_duration as parse

    try:
        return parse(text)
    except ValueError as err:
        raise ValueError(f"--for: {err}") from None


def _state_engine():
    from ops.data.state import state_engine

    return state_engine(get_settings())


def _local(ts: dt.datetime | None) -> str:
    if ts is None:
        return "-"
    return ts.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M")


class Format(str, Enum):
    table = "table"
    json = "json"


def _iso(ts: dt.datetime | None) -> str | None:
    return ts.isoformat(timespec="seconds") if ts else None


alerts_app = typer.Typer(help="Firing alerts, active silences, outbox backlog and recent alert history.",
                         invoke_without_command=True)


@alerts_app.callback()
def alerts_cmd(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="recent events to show"),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Firing alerts, active silences, outbox backlog and recent alert history.

    Exit code: 0 nothing critical, 1 critical alerts firing or messages undeliverable, 2 usage error.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ops.alerting import maintenance_store, outbox
    from ops.alerting import manager as alerts
    from ops.alerting.telegram import html as messages

    from ops.cli.backend_binding import bind_backend

    engine = _state_engine()
    bind_backend(get_settings(), engine)   # no alert of a backend DATABASE_URL no longer names
    now = utc_now()
    rows = alerts.firing(engine)
    silences = alerts.active_silences(engine, now)
    depth = outbox.depth(engine)
    delivery = outbox.delivery_problems(engine)
    events = alerts.recent(engine, limit)
    actions = _recent_actions(engine, min(limit, 10))
    from ops.alerting import tally

    count = tally.tally(rows)    # the one count every surface prints
    problems = []
    if count.critical:
        problems.append(f"{count.critical} critical alert{'' if count.critical == 1 else 's'} open")
    if delivery.blocked:
        problems.append(f"{len(delivery.blocked)} Telegram chat(s) refuse messages")
    if delivery.failed:
        problems.append(f"{delivery.failed} message(s) undeliverable")
    code = 1 if problems else 0
    if fmt is Format.json:
        import json

        typer.echo(json.dumps({
            "firing": [{"key": r.key, "severity": r.severity, "summary": r.summary, "since": _iso(r.started_at),
                        "held_reason": r.held_reason, "command": r.command, "acked_by": r.acked_by,
                        "acked_at": _iso(r.acked_at)} for r in rows],
            "count": {"open": count.open, "critical": count.critical, "warning": count.warning,
                      "notes": len(count.notes), "echoes": count.echoes, "headline": count.headline()},
            "silences": [{"id": s.id, "pattern": s.pattern, "until": _iso(s.ends_at), "reason": s.reason}
                         for s in silences],
            "maintenance": [{"id": w.id, "schedule": w.schedule.describe(get_settings().tz), "holds": w.scope,
                             "reason": w.reason, "in_force": w.schedule.occurrence_at(now, get_settings().tz)
                             is not None} for w in maintenance_store.active(engine)],
            "outbox_depth": depth,
            "delivery": {"blocked": [{"chat": b.configured_chat_id, "chat_id": b.chat_id,
                                      "reason": b.blocked_reason, "since": _iso(b.blocked_at)}
                                     for b in delivery.blocked],
                         "failed": delivery.failed},
            "recent": [{"at": _iso(e.at), "kind": e.kind, "severity": e.severity, "key": e.key,
                        "summary": e.summary, "note": e.note} for e in events],
            "telegram_actions": [{"at": _iso(a.at), "user_id": a.user_id, "user": a.user_name, "action": a.action,
                                  "target": a.target, "outcome": a.outcome, "detail": a.detail,
                                  "message_id": a.message_id} for a in actions],
            "problems": problems,
        }, indent=2))
        raise typer.Exit(code)
    from ops.cli.tables import Col, print_table

    def row(r, label: str) -> list[str]:
        flags = f" [held: {r.held_reason}]" if r.held_reason else ""
        if r.acked_by:
            flags += f" [acked by {r.acked_by} {_local(r.acked_at)}]"
        since = messages.human_duration(now - r.started_at) if r.started_at else "?"
        repro = f"\nreproduce: {r.command}" if r.command else ""
        return [label, r.key, since, f"{r.summary}{flags}{repro}"]

    typer.echo(f"Alerts: {count.headline()}")
    rows_out = []
    for f in count.faults:
        rows_out.append(row(f.alert, f.severity))
        for e in f.echoes:   # the same fault, seen by another job: its own row, said in words
            rows_out.append(["", e.key, "", f"{f.echo_words()}: the same fault as {f.alert.key}"])
    rows_out += [row(r, "note") for r in count.notes]
    if rows_out:
        print_table([Col("severity", "fixed", 1), Col("key", "name", 0), Col("for", "fixed", 2),
                     Col("summary", "text", 3)], rows_out, stack=True)
    typer.echo(f"Silences ({len(silences)}):")
    if silences:
        print_table([Col("id", "number", 0), Col("pattern", "name", 0), Col("until", "fixed", 1),
                     Col("reason", "text", 2)],
                    [[f"#{s.id}", s.pattern, _local(s.ends_at), s.reason] for s in silences])
    windows = maintenance_store.active(engine)
    if windows:
        typer.echo(f"Maintenance windows ({len(windows)}):")
        for w in windows:
            occ = w.schedule.occurrence_at(now, get_settings().tz)
            state = f"in force until {_local(occ[1])}" if occ else "planned"
            typer.echo(f"  #{w.id} {w.schedule.describe(get_settings().tz)} ({state}): {w.scope}, {w.reason}")
    typer.echo(f"Outbox: {depth} pending")
    width = _width()
    for line in delivery_lines(delivery, now, _local):
        typer.echo(_wrap(f"  {line}", width))
    typer.echo(f"Recent ({len(events)}):")
    if events:
        print_table([Col("at", "fixed", 1), Col("event", "fixed", 1), Col("severity", "fixed", 3),
                     Col("key", "name", 0), Col("summary", "text", 2)],
                    [[_local(e.at), e.kind, e.severity, e.key, e.summary + (f" ({e.note})" if e.note else "")]
                     for e in events], stack=True)
    if actions:
        typer.echo(f"From Telegram ({len(actions)}):")
        print_table([Col("at", "fixed", 1), Col("outcome", "fixed", 2), Col("action", "name", 0),
                     Col("by", "fixed", 3), Col("detail", "text", 4)],
                    [[_local(a.at), a.outcome, a.action + (f" {a.target}" if a.target else ""),
                      f"{a.user_name or '?'} ({a.user_id})" if a.user_id is not None else (a.user_name or "?"),
                      (f"message {a.message_id} " if a.message_id else "") + (a.detail or "")]
                     for a in actions], stack=True)
    raise typer.Exit(code)


def _width() -> int:
    from ops.cli.tables import console_width

    return console_width()


def _wrap(text: str, width: int) -> str:
    """A long line wrapped to the terminal at spaces, continuation lines indented."""
    import textwrap

    from ops.cli.tables import UNLIMITED

    if width >= UNLIMITED:
        return text
    return "\n".join(textwrap.wrap(text, width, subsequent_indent="    ", break_long_words=False,
                                    break_on_hyphens=False)) or text


def _recent_actions(engine, limit: int) -> list:
    """Actions (and refusals) from Telegram buttons and commands, newest first."""
    import queries

    with engine.connect() as conn:
        return list(queries.load("state/incidents").recent_actions.execute(conn, limit=limit))


def delivery_lines(problems, now: dt.datetime, when) -> list[str]:
    """What keeps messages from reaching Telegram, in plain words (also used by `opsbench status`)."""
    from ops.alerting import outbox
    from ops.alerting.telegram import html as messages

    lines = []
    for b in problems.blocked:
        if ":" in b.configured_chat_id:   # another channel's destination (email:...), not a chat id
            lines.append(f"BLOCKED: {b.configured_chat_id} refuses messages since {when(b.blocked_at)} "
                         f"({messages.human_duration(now - b.blocked_at)}): {b.blocked_reason}")
            lines.append(f"  messages are held, none dropped; tried again every "
                         f"{messages.human_duration(outbox.BLOCKED_RETRY)} (last {when(b.blocked_checked_at)}). "
                         "Check that channel's settings (email: OPSBENCH_EMAIL_TO, OPSBENCH_SMTP_*)")
            continue
        moved = f" (now chat {b.chat_id})" if b.chat_id and b.chat_id != b.configured_chat_id else ""
        lines.append(f"BLOCKED: Telegram chat {b.configured_chat_id}{moved} refuses messages since "
                     f"{when(b.blocked_at)} ({messages.human_duration(now - b.blocked_at)}): {b.blocked_reason}")
        lines.append(f"  messages are held, none dropped; tried again every "
                     f"{messages.human_duration(outbox.BLOCKED_RETRY)} (last {when(b.blocked_checked_at)}). "
                     "Unblock the bot or add it back to the chat, or fix TELEGRAM_CHAT_ID; "
                     "`opsbench telegram test` checks it")
    if problems.failed:
        lines.append(f"FAILED: {problems.failed} message(s) rejected by Telegram for good "
                     "(kept in the outbox, not retried)")
        for f in problems.recent_failed:
            lines.append(f"  #{f.id} {when(f.failed_at or f.created_at)} {f.source or '-'}: {f.last_error or '?'}")
    return lines


def silence_cmd(
    pattern: str = typer.Argument(..., help="alert key pattern, fnmatch style: 'credit_drift*', 'error_rate{*}'"),
    for_: str = typer.Option("2h", "--for", help="how long: 30m, 2h, 1d, 1h30m"),
    reason: str = typer.Option(..., "--reason", help="why (shown with the silence)"),
) -> None:
    """Hold back messages for matching alerts until the silence ends."""
    from ops.alerting import manager as alerts

    try:
        length = parse_duration(for_)
    except ValueError as err:
        fail(str(err))
    if not pattern.strip():
        fail("PATTERN: expected a non-empty alert key pattern")
    if not reason.strip():
        fail("--reason: expected a short explanation")
    now = utc_now()
    try:
        user = getpass.getuser()
    except Exception:
        user = None
    sid = alerts.add_silence(_state_engine(), pattern, now + length, reason, now, created_by=user)
    typer.echo(f"silence #{sid}: {pattern} until {_local(now + length)} ({reason})")


@alerts_app.command("resolve")
def resolve_cmd(
    key: str = typer.Argument(..., help="alert key, as `opsbench alerts` shows it"),
    reason: str = typer.Option("", "--reason", help="why (recorded with your user name)"),
) -> None:
    """Close one pending or firing alert by hand. No RESOLVED message is sent: you already know."""
    from ops.alerting import manager as alerts

    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    note = f"resolved by hand by {user}" + (f": {reason.strip()}" if reason.strip() else "")
    closed = alerts.close_keys(_state_engine(), [key], note, utc_now(), get_settings())
    if not closed:
        fail(f"no pending or firing alert {key!r} (see `opsbench alerts`)")
    typer.echo(f"closed {key} ({note})")


def unsilence_cmd(silence_id: int = typer.Argument(..., help="silence id from `opsbench alerts`")) -> None:
    """End a silence now."""
    from ops.alerting import manager as alerts

    if not alerts.remove_silence(_state_engine(), silence_id, utc_now()):
        fail(f"no active silence #{silence_id} (see `opsbench alerts`)")
    typer.echo(f"silence #{silence_id} ended")


@telegram_app.command("test")
def telegram_test() -> None:
    """Check the bot token (getMe), send one test message to TELEGRAM_CHAT_ID, edit it (as alerts are edited
    when they resolve), and check that the bot's commands are registered (registering them if not)."""
    from ops.alerting.telegram import bot
    from ops.alerting.telegram.channel import telegram_client
    from ops.alerting.telegram import html as messages
    from ops.alerting.telegram.client import TelegramError

    settings = get_settings()
    engine = _state_engine()
    client = telegram_client(settings, engine, max_attempts=2)
    try:
        me = client.get_me()
        typer.echo(f"bot: @{me.get('username')} (id {me.get('id')})")
        text = (f"✅ <b>opsbench test message</b>\nenvironment <i>{messages.escape(settings.environment)}</i>, "
                f"{messages.escape(_local(utc_now()))} {messages.escape(settings.report_tz)}")
        sent = client.send_message(text)
        typer.echo(f"sent a test message to chat {client.chat_id}"
                   + (f" topic {client.thread_id}" if client.thread_id is not None else ""))
        first = sent[0] if sent else {}
        if "message_id" in first:
            client.edit_message_text(client.chat_id, first["message_id"],
                                     text + "\n<i>edited: the bot can update its alert messages in place</i>")
            typer.echo("edited it: alert messages can be updated in place")
        wanted = [{"command": c, "description": d} for c, d in bot.COMMANDS]
        have = [{"command": c.get("command"), "description": c.get("description")} for c in client.get_my_commands()]
        if have != wanted:
            client.set_my_commands(bot.COMMANDS)
            typer.echo(f"registered the bot's commands ({len(wanted)}): " + " ".join(f"/{c}" for c, _ in bot.COMMANDS))
        else:
            typer.echo(f"commands registered ({len(wanted)}): " + " ".join(f"/{c}" for c, _ in bot.COMMANDS))
        admins = settings.admin_ids
        typer.echo(f"admins (TELEGRAM_ADMIN_IDS): {', '.join(map(str, sorted(admins)))}" if admins else
                   "admins: none; buttons and commands can only read until TELEGRAM_ADMIN_IDS is set "
                   "(`opsbench telegram setup` shows the ids)")
    except TelegramError as err:
        fail(str(err))
    finally:
        client.close()
    # the chat works again: let the outbox stop waiting for it
    import queries

    with engine.begin() as conn:
        queries.load("state/outbox").chat_unblocked.execute(conn, configured_chat_id=str(settings.telegram_chat_id),
                                                             at=utc_now())


@telegram_app.command("setup")
def telegram_setup() -> None:
    """Find TELEGRAM_CHAT_ID, TELEGRAM_THREAD_ID and TELEGRAM_ADMIN_IDS: write to the bot (or in the group
    with it), then run this. It reads the bot's pending updates without consuming them."""
    from ops.alerting.telegram import html as messages
    from ops.alerting.telegram.client import TelegramClient, TelegramError

    settings = get_settings()
    if settings.telegram_bot_token is None:
        fail("TELEGRAM_BOT_TOKEN: not set (create a bot with @BotFather and export its token)")
    client = TelegramClient(settings.telegram_bot_token.get_secret_value(), settings.telegram_api_base,
                            max_attempts=2)
    try:
        me = client.get_me()
        updates = client.get_updates(offset=None, timeout=0, limit=100)
    except TelegramError as err:
        if getattr(err, "error_code", None) == 409:
            fail("Telegram: another getUpdates is running (the daemon polls for buttons) or a webhook is set; "
                 "stop the daemon for a moment and run this again")
        fail(str(err))
    finally:
        client.close()
    typer.echo(f"bot: @{me.get('username')} (id {me.get('id')})")
    chats: dict[str, dict] = {}
    for u in updates:
        msg = u.get("message") or u.get("edited_message") or u.get("channel_post") or \
            (u.get("callback_query") or {}).get("message") or (u.get("my_chat_member") or {})
        chat = msg.get("chat") or {}
        if "id" not in chat:
            continue
        entry = chats.setdefault(str(chat["id"]), {"chat": chat, "threads": set(), "users": {}})
        if msg.get("message_thread_id") is not None:
            entry["threads"].add(int(msg["message_thread_id"]))
        who = (u.get("message") or u.get("callback_query") or u.get("my_chat_member") or {}).get("from") or {}
        if who.get("id") is not None and not who.get("is_bot"):
            entry["users"][int(who["id"])] = f"@{who['username']}" if who.get("username") else \
                who.get("first_name", "?")
    if not chats:
        typer.echo(f"no messages yet: write something to @{me.get('username')} (or add it to your group and write "
                   "there), then run `opsbench telegram setup` again")
        return
    for chat_id, entry in chats.items():
        chat = entry["chat"]
        title = chat.get("title") or " ".join(p for p in (chat.get("first_name"), chat.get("last_name")) if p)
        typer.echo(f"\nchat {chat_id} ({chat.get('type', '?')}: {messages.to_plain(title) or '-'})")
        typer.echo(f"  TELEGRAM_CHAT_ID={chat_id}")
        for t in sorted(entry["threads"]):
            typer.echo(f"  TELEGRAM_THREAD_ID={t}    # a forum topic someone wrote in")
        if entry["users"]:
            typer.echo("  TELEGRAM_ADMIN_IDS=" + ",".join(str(u) for u in sorted(entry["users"]))
                       + "    # " + ", ".join(f"{n} ({u})" for u, n in sorted(entry["users"].items())))
    typer.echo("\nput the lines you want in .env, then `opsbench telegram test`")


@telegram_app.command("drain")
def telegram_drain(max_messages: int | None = typer.Option(None, "--max", min=1, help="stop after this many")) -> None:
    """Deliver pending outbox messages now (the daemon does this on its own)."""
    from ops.alerting import outbox

    engine = _state_engine()
    sent = outbox.drain(get_settings(), engine, max_messages=max_messages)
    typer.echo(f"delivered {sent}, {outbox.depth(engine)} pending")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
    app.command("silence")(silence_cmd)
    app.command("unsilence")(unsilence_cmd)
    app.add_typer(telegram_app, name="telegram")
