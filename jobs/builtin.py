"""The daemon's own small jobs: deliver the outbox, say it is alive."""

from __future__ import annotations

from jobs.base import JobContext, JobResult
from ops import alert_bridge
from ops import heartbeat as outside_monitor


def drain_outbox(ctx: JobContext) -> JobResult:
    """Send pending alert messages; what cannot be sent stays for the next run."""
    if ctx.dry_run:
        waiting = alert_bridge.depth(ctx.state)
        return JobResult("ok", f"dry run: {waiting if waiting is not None else 'unknown'} message(s) waiting")
    sent = alert_bridge.drain(ctx.settings, ctx.state)
    if sent is None:
        return JobResult("skipped", "outbox not available (alert manager not installed or failing)")
    waiting = alert_bridge.depth(ctx.state)
    metrics = {"sent": float(sent)}
    if waiting is not None:
        metrics["waiting"] = float(waiting)
    return JobResult("ok", f"sent {sent}, {waiting if waiting is not None else '?'} waiting", metrics)


def heartbeat(ctx: JobContext) -> JobResult:
    """The run itself is the heartbeat (job history + Sentry check-in); also ping HEARTBEAT_URL."""
    if ctx.dry_run or not ctx.settings.heartbeat_url:
        return JobResult("ok", "alive" + ("" if ctx.settings.heartbeat_url else " (no HEARTBEAT_URL set)"))
    ok = outside_monitor.ping(ctx.settings.heartbeat_url)
    # a failed ping is not a job failure: the outside monitor will notice the
    # missing pings itself, and a Telegram alert about it would only be noise
    return JobResult("ok", "alive, pinged HEARTBEAT_URL" if ok else "alive, HEARTBEAT_URL ping failed",
                     {"ping_ok": 1.0 if ok else 0.0})
