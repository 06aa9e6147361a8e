"""OPSBENCH_HEALTH_URLS: the one job with a setting of its own outside the jobs file.

Each (name, url) it names is appended to `args.targets` of every job that runs the
HTTP probe, after the override file is merged, and remembered as coming from the
environment (`opsbench jobs --explain`).
"""

from __future__ import annotations

from typing import Any

from ops.core.errors import JobSpecError
from ops.core.settings import Settings

HTTP_PROBES_CALLABLE = "jobs.probes:http_probes"
ORIGIN_ENV = "env OPSBENCH_HEALTH_URLS"


def add_health_urls(data: dict[str, Any], settings: Settings, origins: dict[str, str]) -> None:
    """OPSBENCH_HEALTH_URLS: each (name, url) appended to `args.targets` of every http_probes job."""
    extra = settings.health_targets
    if not extra:
        return
    for job_id, body in data.get("jobs", {}).items():
        if not isinstance(body, dict) or body.get("callable") != HTTP_PROBES_CALLABLE:
            continue
        args = body.setdefault("args", {})
        if not isinstance(args, dict):
            continue
        targets = list(args.get("targets") or [])
        have = {str(t.get("name")) for t in targets if isinstance(t, dict) and t.get("name")}
        for name, url in extra:
            if name in have:
                raise JobSpecError(f"OPSBENCH_HEALTH_URLS: target {name!r} is also in job {job_id!r}'s "
                                   "args.targets; give it another name")
            targets.append({"name": name, "url": url})
            origins[f"{job_id}.args.targets[{name}]"] = ORIGIN_ENV
        args["targets"] = targets
