"""`opsbench backtest [--days 30] [--step 5m] [--end ISO] [--format table|json]`."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from enum import Enum
from pathlib import Path

import typer

from ops.cli import current_settings as get_settings
from ops.cli import fail
from ops.core.clock import utc_now


class Format(str, Enum):
    table = "table"
    json = "json"


def _step(text: str | None) -> dt.timedelta | None:
    if text is None:
        return None
    from ops.daemon.cron import parse_duration

    seconds = parse_duration(text.strip())
    if seconds is None or not math.isfinite(seconds) or not 30 <= seconds <= 6 * 3600:
        fail(f"--step: expected a duration from 30s to 6h such as 5m, got {text!r}")
    return dt.timedelta(seconds=seconds)


def _end(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        end = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"--end: expected a date or time such as 2026-11-30 or 2026-11-30T12:00+00:00, got {text!r}")
    if end.tzinfo is None:
        end = end.replace(tzinfo=get_settings().tz)
    if end > utc_now():
        fail(f"--end: {end.isoformat()} is in the future; a backtest replays the past")
    return end


def _manifest(path: Path | None, settings) -> dict | None:
    from ops.data.seed import load_manifest

    if path is None:
        return load_manifest(settings) if settings.uses_embedded else None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"--manifest: cannot read {path}: {getattr(e, 'strerror', None) or e}")
    if not isinstance(data, dict) or not isinstance(data.get("incidents", []), list):
        fail(f"--manifest: {path} is not a demo manifest (expected a JSON object with a list of incidents)")
    return data


def _minutes(td: dt.timedelta | None) -> str:
    if td is None:
        return "never paged"
    m = td.total_seconds() / 60
    return f"{m:.0f} min" if m < 120 else f"{m / 60:.1f} h"


def render(report, zone) -> str:
    """The report as the terminal shows it."""
    noise = report.noise_counts()
    lines = [
        f"backtest {report.start.astimezone(zone):%Y-%m-%d %H:%M} .. {report.end.astimezone(zone):%Y-%m-%d %H:%M} "
        f"{zone.key}: {report.days:g} days, step {int(report.step.total_seconds() // 60)} min, "
        + ", ".join(f"{n} {j} run{'' if n == 1 else 's'}" for j, n in sorted(report.jobs.items()))
        + (f" ({sum(report.failed_runs.values())} failed)" if report.failed_runs else "")
        + f", {report.seconds:.0f} s",
        f"{len(report.messages)} messages would have been sent, "
        f"{sum(m.critical for m in report.messages)} of them with a critical alert",
        "",
        "messages per rule and severity (an alert counts once per message it is in)",
    ]
    rows = report.per_rule()
    if rows:
        width = max(len(r) for r, *_ in rows)
        lines.append(f"  {'rule':<{width}}  {'severity':<8}  {'messages':>8}  {'outside incidents':>17}")
        for rule, sev, n, outside in rows:
            lines.append(f"  {rule:<{width}}  {sev:<8}  {n:>8}  {outside:>17}")
    else:
        lines.append("  none")
    lines += ["", "pages per day (messages / with a critical alert)"]
    per_day = report.per_day(zone)
    for i in range(0, len(per_day), 7):
        lines.append("  " + "   ".join(f"{d:%m-%d} {a}/{b}" for d, a, b in per_day[i:i + 7]))
    if report.has_manifest:
        lines += ["", "planted incidents (the generator's manifest): time from start to first page"]
        for inc in report.incidents:
            if not inc.in_window:
                lines.append(f"  {inc.kind:<18} started {inc.start.astimezone(zone):%m-%d %H:%M}  outside the window")
                continue
            verdict = "ok" if inc.latency is not None and inc.latency <= dt.timedelta(minutes=15) else "MISSED 15 min"
            lines.append(f"  {inc.kind:<18} started {inc.start.astimezone(zone):%m-%d %H:%M}  "
                         f"first page after {_minutes(inc.latency):>12}"
                         + (f" ({inc.first_page_rule})" if inc.first_page_rule else "")
                         + f"  {inc.messages} messages  {verdict}")
        weeks = max(report.days / 7, 1e-9)
        lines += ["", f"outside the planted incidents and faults: {noise['critical']} critical messages, "
                      f"{noise['non_critical']} non-critical ({noise['non_critical'] / weeks:.2f} a week)"]
        for msg, sev in report.noise_messages()[:20]:
            keys = ", ".join(msg.keys[:3]) + (f" and {len(msg.keys) - 3} more" if len(msg.keys) > 3 else "")
            lines.append(f"  {msg.at.astimezone(zone):%m-%d %H:%M}  {sev:<8}  {keys}")
    else:
        lines += ["", "no demo manifest: no planted incidents to match (pass --manifest FILE for a seeded copy)"]
    return "\n".join(lines)


def backtest(
    days: float = typer.Option(30.0, "--days", help="length of the window to replay, in days, ending at --end"),
    step: str = typer.Option(None, "--step", help="how often the metric probes run, e.g. 5m (default: their "
                                                  "interval in the jobs file)"),
    end: str = typer.Option(None, "--end", help="end of the window (default: now; on the demo data, when it was "
                                                "generated)"),
    job: list[str] = typer.Option(None, "--job", help="replay only this job (repeatable; default: the metric "
                                                      "probes and reconcile)"),
    manifest: Path = typer.Option(None, "--manifest", help="a demo manifest whose planted incidents to match "
                                                           "(default: the embedded demo's)"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Replay the metric probes and reconciliation checks over a past window, through the real alert
    manager in a scratch database, and print what the founder would have received."""
    from ops.daemon import backtest as engine

    if not math.isfinite(days) or not 0 < days <= 400:
        fail(f"--days: expected a number of days in (0, 400], got {days:g}")
    step_td, end_at = _step(step), _end(end)
    settings = get_settings()
    data = _manifest(manifest, settings)
    progress = None
    if sys.stderr.isatty() and fmt is Format.table:
        def progress(done: int, total: int) -> None:
            if done == total or done % 50 == 0:
                sys.stderr.write(f"\rreplaying {done}/{total} runs" + ("\n" if done == total else ""))
                sys.stderr.flush()
    report = engine.run(settings, days=days, step=step_td, end=end_at, manifest=data, only=job or None,
                        progress=progress)
    if fmt is Format.json:
        typer.echo(json.dumps(report.as_dict(settings.tz), indent=2))
    else:
        typer.echo(render(report, settings.tz))


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
