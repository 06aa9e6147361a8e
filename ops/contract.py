"""The contract between jobs, the runner and the alert manager."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Callable, TypeVar

from sqlalchemy.engine import Connection, Engine

from ops.core.clock import utc_now
from ops.core.settings import Settings

T = TypeVar("T")


class Severity(str, Enum):
    """critical = P1 (page the founder), warning = P2 (look today), info = P3 (a note for the weekly read)."""

    critical = "critical"
    warning = "warning"
    info = "info"

    @property
    def rank(self) -> int:
        return {"critical": 0, "warning": 1, "info": 2}[self.value]


class RunStatus(StrEnum):
    """How one run of a job ended."""

    ok = "ok"
    failed = "failed"      # the job raised, or returned failed
    skipped = "skipped"    # nothing to do, or a dependency was not there
    timeout = "timeout"    # the runner gave up waiting (set by the runner, never by a job)


class AlertState(StrEnum):
    """Where one alert is in its lifecycle: inactive -> pending -> firing -> resolved."""

    inactive = "inactive"
    pending = "pending"
    firing = "firing"
    resolved = "resolved"


@dataclass
class Finding:
    """A condition that is bad right now, as one job saw it.

    The alert key is the rule plus its labels, so the same rule can fire
    separately for two providers or two endpoints.
    """

    rule: str
    severity: Severity
    summary: str
    labels: dict[str, str] = field(default_factory=dict)
    details: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)  # first offending rows
    evidence_count: int | None = None                              # all offending rows
    command: str | None = None                                     # `opsbench ...` that reproduces it
    # what the check depends on; while a root-cause alert on one of these fires
    # (e.g. "backend_db" unreachable), this finding is held back
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)

    @property
    def key(self) -> str:
        if not self.labels:
            return self.rule
        inner = ",".join(f"{k}={self.labels[k]}" for k in sorted(self.labels))
        return f"{self.rule}{{{inner}}}"


@dataclass
class JobResult:
    status: RunStatus = RunStatus.ok
    summary: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    # rules this run evaluated: a rule evaluated with no finding counts as a
    # good evaluation for the alerts of that rule (towards resolving them)
    rules: set[str] = field(default_factory=set)
    # parts of the job that could not run (a check that errored): the run still
    # counts as ok for the daemon, but it vouches for nothing about these
    not_run: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)


@dataclass
class JobContext:
    settings: Settings
    job_id: str
    run_id: str
    args: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], dt.datetime] = utc_now
    logger: logging.Logger | logging.LoggerAdapter = field(default_factory=lambda: logging.getLogger("opsbench.job"))
    dry_run: bool = False
    # the process's engines (ops.data.runtime.Runtime); the runner passes its own,
    # read-only for a dry run. None: a runtime of `settings` is made on first use.
    runtime: Any = None

    def __post_init__(self) -> None:
        if self.runtime is None:
            from ops.data import runtime

            self.runtime = runtime.for_settings(self.settings)
        if self.dry_run:
            # a dry run is a capability, not a convention: no engine it gets can write
            self.runtime = self.runtime.read_only()

    def now(self) -> dt.datetime:
        return self.clock()

    def engine(self, role: str) -> Engine:
        return self.runtime.engine(role)

    @property
    def analytics(self) -> Engine:
        return self.engine("analytics")

    @property
    def maintenance(self) -> Engine:
        return self.engine("maintenance")

    @property
    def state(self) -> Engine:
        return self.engine("state")

    # What a job writes goes through these two: in a dry run they do nothing and
    # answer None, so no job can write by forgetting to check `dry_run`.

    def record(self, write: Callable[[Engine], T]) -> T | None:
        """`write(state engine)`: history the job keeps in the state store (probe samples). None in a dry run."""
        if self.dry_run:
            return None
        return write(self.state)

    def enqueue(self, put: Callable[[Connection], T]) -> T | None:
        """`put(conn)` in one state transaction: messages for the outbox (reports). None in a dry run."""
        if self.dry_run:
            return None
        with self.state.begin() as conn:
            return put(conn)
