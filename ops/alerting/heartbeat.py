"""Healthchecks-style dead-man's switch: ping HEARTBEAT_URL while the daemon works.

An outside service (healthchecks.io, Uptime Kuma push monitors, Better Stack
heartbeats) expects a request every minute and alerts when they stop, which
is the one failure the daemon cannot report itself: being dead. The ping is
sent by the `heartbeat` job (see jobs/jobs.toml), so only the leading daemon
pings and a dead or stuck scheduler stops the pings.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx

from ops.core.redact import redact, register_secret

log = logging.getLogger("opsbench.heartbeat")
TIMEOUT_S = 10.0


def ping(url: str | None, *, timeout_s: float = TIMEOUT_S, transport: httpx.BaseTransport | None = None) -> bool | None:
    """GET the heartbeat URL. True on a 2xx, False on any failure, None when no URL is set.

    Never raises: a monitoring service being down must not fail the daemon.
    """
    if not url:
        return None
    secret_path = urlsplit(url).path.strip("/")
    register_secret(secret_path)  # the ping path is the check's secret: never in a log line
    try:
        with httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=True) as client:
            response = client.get(url, headers={"User-Agent": "opsbench-heartbeat"})
        if response.is_success:
            return True
        log.warning("heartbeat ping answered HTTP %s", response.status_code)
        return False
    except httpx.HTTPError as e:
        log.warning("heartbeat ping failed: %s: %s", type(e).__name__, redact(e))
        return False
