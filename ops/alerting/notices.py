"""What the alert manager tells the founder, before any channel renders it.

The manager (and the outbox's producers) speak in `Notice`s: which alerts
changed how, with their evidence, in which incident. Each channel turns a
notice into messages for its medium (ops/alerting/telegram/render.py: HTML with
buttons, edited in place; ops/alerting/email/render.py: a plain-text email);
nothing here knows a medium's markup or limits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

from ops.core.clock import human_duration  # noqa: F401  (the channels' texts use it from here)


@dataclass
class AlertNotice:
    """What one alert contributes to a notification."""

    kind: str                    # firing | repeat | flapping | resolved | escalated
    key: str
    rule: str
    severity: str
    summary: str
    source: str = ""
    details: str = ""
    evidence: Sequence[dict[str, Any]] = field(default_factory=list)
    evidence_count: int | None = None
    command: str | None = None
    started_at: dt.datetime | None = None
    now: dt.datetime | None = None


# what a notice is about:
# opened   new FIRING (or FLAPPING) alerts announced together as one incident (`alerts`)
# update   alerts of an incident resolved or still firing (`alerts`, kind resolved | repeat);
#          `ended` when the incident's own view changed (an alert of it is over)
# state    the incident's view changed (closed by hand, acked elsewhere): no alert news
# escalated  critical alerts of an incident nobody acked (`alerts`, kind escalated): say it again, loudly
# grouped  alerts announced without an incident (from before incidents existed)
# text     free text in the message markup (reports, replies), `text`
NOTICE_KINDS = ("opened", "update", "state", "escalated", "grouped", "text")


@dataclass(frozen=True)
class Notice:
    kind: str
    alerts: tuple[AlertNotice, ...] = ()
    environment: str = ""
    incident_id: int | None = None
    silent: bool = False          # deliver without a sound where the medium can (quiet hours)
    ended: bool = False
    text: str = ""

    def __post_init__(self) -> None:
        if self.kind not in NOTICE_KINDS:
            raise ValueError(f"unknown notice kind {self.kind!r}")
        if self.kind in ("opened", "update", "state", "escalated") and self.incident_id is None:
            raise ValueError(f"an {self.kind} notice needs its incident")
