"""`opsbench report daily|weekly [--date D] [--send] [--out FILE.html]`."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path

import typer

from ops.cli import fail
from ops.core.clock import utc_now
from ops.cli.backend_binding import bind_backend


class Kind(str, Enum):
    daily = "daily"
    weekly = "weekly"


def _parse_day(text: str | None, settings, kind: str = "daily") -> dt.date | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        fail(f"--date: expected a date YYYY-MM-DD, got {text!r}")
    today = utc_now().astimezone(settings.tz).date()
    if day >= today:
        fail(f"--date: {day} is not over yet in {settings.report_tz}; the latest whole day is "
             f"{today - dt.timedelta(days=1)}")
    if kind == "weekly":
        # a week still running would be labelled as a whole Monday-Sunday week
        sunday = day + dt.timedelta(days=6 - day.weekday())
        if sunday >= today:
            last_sunday = today - dt.timedelta(days=today.weekday() + 1)
            fail(f"--date: the week of {day} is not over yet in {settings.report_tz}; the latest whole week "
                 f"ends {last_sunday}")
    return day


def _check_writable(out: Path) -> None:
    """Fail now, in one line, if the page could not be written (before minutes of queries)."""
    import os
    import tempfile

    if out.exists() and out.is_dir():
        fail(f"--out: {out} is a directory; give a file name such as report.html")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        fail(f"--out: cannot write {out}: {parent} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            if not os.access(out, os.W_OK):
                raise PermissionError(13, "Permission denied")
        else:
            # a real probe: os.access says yes to root on read-only mounts and /proc
            with tempfile.NamedTemporaryFile(dir=parent, prefix=".opsbench-", suffix=".probe"):
                pass
    except OSError as e:
        fail(f"--out: cannot write {out}: {e.strerror or type(e).__name__}")


def _state_engine(settings):
    """The state store, migrated; None (with a note) when it cannot be reached."""
    from ops.core.redact import redact
    from ops.data.state import state_engine

    try:
        return state_engine(settings), None
    except Exception as e:
        return None, f"state store unavailable: {redact(str(e)).splitlines()[0][:160]}"


def report(
    kind: Kind = typer.Argument(..., help="daily (one day) or weekly (a Monday-Sunday week)"),
    date: str = typer.Option(None, "--date", help="the day to report, or a day in the week to report "
                                                  "(default: yesterday / last week in REPORT_TZ)"),
    send: bool = typer.Option(False, "--send", help="send it to Telegram now (through the outbox)"),
    out: Path = typer.Option(None, "--out", help="also write the report as an HTML page with interactive charts"),
    charts: bool = typer.Option(True, "--charts/--no-charts", help="with --send: attach the charts"),
) -> None:
    """Preview a report in the terminal, send it to Telegram, or write it as HTML."""
    from rich.console import Console

    from ops.alerting.telegram import html as messages
    from ops.core.settings import get_settings
    from ops.data import db
    from ops.reports import figures as reports
    from ops.reports import message as report_message

    settings = get_settings()
    if send and settings.telegram_bot_token is None:
        fail("--send: TELEGRAM_BOT_TOKEN is not set (without --send the report is shown here)")
    if out is not None:
        _check_writable(out)
    day = _parse_day(date, settings, kind.value)
    if settings.uses_embedded:
        from ops.data.seed import seed_embedded

        seed_embedded(settings)
    window = reports.window_for(kind.value, day, settings.tz) if day else None
    state, note = _state_engine(settings)
    if state is not None:
        bind_backend(settings, state)
    rep = reports.build(db.analytics(settings), settings, kind.value, window=window, state=state)
    if note:
        rep.notes.append(note)
    text = report_message.telegram_message(rep)
    console = Console(highlight=False)

    if out is not None:
        from ops.reports import page as report_page

        try:
            path = report_page.write(rep, out)
        except OSError as e:
            fail(f"--out: cannot write {out}: {e.strerror or type(e).__name__}")
        console.print(f"[dim]wrote {path} ({path.stat().st_size / 1e6:.1f} MB, interactive charts, opens offline)[/dim]")

    if not send:
        console.print(messages.to_plain(text), markup=False, soft_wrap=True)
        console.print(f"\n[dim]{messages.utf16_len(text):,} characters · preview only; --send delivers it with "
                      f"its charts[/dim]")
        return

    if state is None:
        fail(f"--send: {note}")
    from ops.alerting import outbox
    from ops.reports import charts as chart_maker
    from ops.reports import queue as report_queue

    chart_set = chart_maker.attachments(rep) if charts else chart_maker.ChartSet()
    for problem in chart_set.problems:
        console.print(f"[yellow]charts: {problem}[/yellow]", markup=True)
    with state.begin() as conn:
        ids = report_queue.enqueue(conn, text, chart_set, source=f"report:{kind.value}")
    sent = outbox.drain(settings, state)
    waiting = outbox.depth(state)
    console.print(f"queued {len(ids)} message(s) ({chart_set.mode} charts); delivered {sent}, {waiting} waiting")
    if waiting:
        console.print("[yellow]not everything went out now; the daemon's drain_outbox job keeps trying[/yellow]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
