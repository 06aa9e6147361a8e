"""What the daemon runs. A job is `def job(ctx: JobContext) -> JobResult`.

Jobs read through `ctx` (settings, connections, clock, logger, arguments) and
return findings; they never talk to Telegram. See `ops.contract`.
"""
