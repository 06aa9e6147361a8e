"""What one process works with: its settings and one pooled engine per role.

`for_settings()` gives the process's runtime for a set of settings (the
only engine cache); the runner hands it to every job through its `JobContext`, so engines are shared where they should be and disposed in
one place. `Runtime.read_only()` is the dry-run view of the same settings:
every engine it gives opens read-only transactions, so a job run with
`--dry-run` cannot write to any database, whatever it forgets to check.

What else lives as long as the process's engines lives here too, not in
module caches: `shared()` objects (the outbox's channel, the PostgreSQL
probe's engine, the live backend identity the series read path compares) and
`state_down`, the series read path's "state store down, retry after a while"
memo (a `StateDown`). Each analytics engine made here carries the runtime's
series read path (ops/data/series.py `Reader`), so `queries.<series>(engine)`
reads as `series.read(runtime, ...)` does.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Hashable

from sqlalchemy.engine import Engine

from ops.core.settings import Settings
from ops.data import engines, series, visibility


class StateDown:
    """The state store could not be reached: do not try it again for RETRY_S seconds.

    The one such memo: ops/data/series.py keeps one per runtime (a notebook may hand in its own)."""

    RETRY_S = 300.0

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._failed_at: float | None = None

    def recent(self) -> bool:
        """True while the last failure is younger than RETRY_S: read raw, skip the connect timeout."""
        failed_at = self._failed_at
        return failed_at is not None and self._clock() - failed_at < self.RETRY_S

    @property
    def marked(self) -> bool:
        """A failure is on record (however old) and no success since."""
        return self._failed_at is not None

    def failed(self) -> None:
        self._failed_at = self._clock()

    def reached(self) -> None:
        self._failed_at = None


class Runtime:
    def __init__(self, settings: Settings, *, read_only: bool = False):
        self.settings = settings
        self.is_read_only = read_only
        self._engines: dict[engines.Role, Engine] = {}
        self._shared: dict[Hashable, Any] = {}
        self._lock = threading.RLock()
        self._read_only_view: Runtime | None = None
        self.state_down = StateDown()   # the series read path's memo for this runtime's state store

    def engine(self, role: engines.Role | str) -> Engine:
        """The pooled engine of `role` (analytics, maintenance, state), built on first use."""
        role = engines.Role(role)
        with self._lock:
            if role not in self._engines:
                # the analytics and maintenance engines refuse while row level security hides rows
                # of the tables they read (ops/data/visibility.py): one catalog query per engine
                eng = visibility.guard(engines.make_engine(role, self.settings, read_only=self.is_read_only),
                                       role.value)
                if role is engines.Role.analytics:
                    series.attach(self, eng)   # `queries.<series>(eng)` reads through the one read path
                self._engines[role] = eng
            return self._engines[role]

    def shared(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The one object for `key` in this runtime, made by `make()` on first use.

        For what must carry over from one run to the next (a channel's per-chat
        pacing and HTTP pool) or be built once (a probe's engine); engines among
        them are disposed with the runtime.
        """
        with self._lock:
            if key not in self._shared:
                self._shared[key] = make()
            return self._shared[key]

    def read_only(self) -> "Runtime":
        """The same settings with read-only engines: what a dry run works with."""
        if self.is_read_only:
            return self
        with self._lock:
            if self._read_only_view is None:
                self._read_only_view = Runtime(self.settings, read_only=True)
            return self._read_only_view

    def dispose(self) -> None:
        """Close this runtime's pools, and its read-only view's."""
        with self._lock:
            view, self._read_only_view = self._read_only_view, None
            owned, self._engines = list(self._engines.values()), {}
            shared, self._shared = list(self._shared.values()), {}
        for eng in owned + [x for x in shared if isinstance(x, Engine)]:
            eng.dispose()
        if view is not None:
            view.dispose()


# The process's runtimes, one per settings: what `ops.data.db.engine()` and the
# notebooks use when no runtime is handed to them. The CLI and the daemon build
# theirs through here too, so a command and the jobs it runs share one pool.
_runtimes: dict[Settings, Runtime] = {}
_runtimes_lock = threading.Lock()


def for_settings(settings: Settings) -> Runtime:
    with _runtimes_lock:
        if settings not in _runtimes:
            _runtimes[settings] = Runtime(settings)
        return _runtimes[settings]


def dispose_all() -> None:
    with _runtimes_lock:
        found = list(_runtimes.values())
        _runtimes.clear()
    for rt in found:
        rt.dispose()
