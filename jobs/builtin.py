"""The daemon's own small jobs: deliver the outbox, say it is alive."""

from __future__ import annotations

from jobs import args as read
from ops.alerting import bridge as alert_bridge
from ops.alerting import heartbeat as outside_monitor
from ops.contract import JobContext, JobResult

# One drain run stops starting new sends after this many seconds (pacing, retry
# waits included), so it ends well within the job's timeout (jobs/jobs.toml:
# 120 s; one request in flight may add up to ~10-20 s). The rest goes next run.
DRAIN_BUDGET_S = 60.0


def validate_drain_args(args: dict) -> None:
    read.known_keys(args, {"budget_s", "max_messages"})
    read.number(args.get("budget_s", DRAIN_BUDGET_S), "args.budget_s", positive=True)
    if args.get("max_messages") is not None:
        read.whole(args["max_messages"], "args.max_messages", minimum=1)


def drain_outbox(ctx: JobContext) -> JobResult:
    """Send pending alert messages within a time budget; what is not sent stays for the next run.

    args: `budget_s` (default 60, keep it well under the job's timeout) and
    `max_messages` (default none) bound one run.
    """
    if ctx.dry_run:
        waiting = alert_bridge.depth(ctx.state)
        return JobResult("ok", f"dry run: {waiting if waiting is not None else 'unknown'} message(s) waiting")
    sent = alert_bridge.drain(ctx.settings, ctx.state, clock=ctx.clock,
                              budget_s=float(ctx.args.get("budget_s", DRAIN_BUDGET_S)),
                              max_messages=ctx.args.get("max_messages"), runtime=ctx.runtime)
    if sent is None:
        return JobResult("skipped", "the outbox could not be drained (see the log and Sentry)")
    waiting = alert_bridge.depth(ctx.state)
    metrics = {"sent": float(sent)}
    if waiting is not None:
        metrics["waiting"] = float(waiting)
    return JobResult("ok", f"sent {sent}, {waiting if waiting is not None else '?'} waiting", metrics)


ARG_VALIDATORS = {"drain_outbox": validate_drain_args}


def heartbeat(ctx: JobContext) -> JobResult:
    """The run itself is the heartbeat (job history + Sentry check-in); also ping HEARTBEAT_URL."""
    if ctx.dry_run or not ctx.settings.heartbeat_url:
        return JobResult("ok", "alive" + ("" if ctx.settings.heartbeat_url else " (no HEARTBEAT_URL set)"))
    ok = outside_monitor.ping(ctx.settings.heartbeat_url)
    # a failed ping is not a job failure: the outside monitor will notice the
    # missing pings itself, and a Telegram alert about it would only be noise
    return JobResult("ok", "alive, pinged HEARTBEAT_URL" if ok else "alive, HEARTBEAT_URL ping failed",
                     {"ping_ok": 1.0 if ok else 0.0})
