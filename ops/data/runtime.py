"""What one process works with: its settings and one pooled engine per role.

`for_settings()` gives the process's runtime for a set of settings (the
only engine cache); the runner hands it to every job through its `JobContext`, so engines are shared where they should be and disposed in
one place. `Runtime.read_only()` is the dry-run view of the same settings:
every engine it gives opens read-only transactions, so a job run with
`--dry-run` cannot write to any database, whatever it forgets to check.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from ops.core.settings import Settings
from ops.data import db


class Runtime:
    def __init__(self, settings: Settings, *, read_only: bool = False):
        self.settings = settings
        self.is_read_only = read_only
        self._engines: dict[db.Role, Engine] = {}
        self._lock = threading.Lock()
        self._read_only_view: Runtime | None = None

    def engine(self, role: db.Role | str) -> Engine:
        """The pooled engine of `role` (analytics, maintenance, state), built on first use."""
        role = db.Role(role)
        with self._lock:
            if role not in self._engines:
                self._engines[role] = db.make_engine(role, self.settings, read_only=self.is_read_only)
            return self._engines[role]

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
        for eng in owned:
            eng.dispose()
        if view is not None:
            view.dispose()


# The process's runtimes, one per settings: what `ops.data.db.engine()` and the
# notebooks use when no runtime is handed to them. The CLI and the daemon build
# theirs through here too, so a command and the jobs it runs share one pool.
_runtimes: dict[Settings, Runtime] = {}
_runtimes_lock = threading.Lock()


def for_settings(settings: Settings) -> Runtime:
    from ops.data import series

    series.install()      # the series queries become rollup-aware for this process's engines
    with _runtimes_lock:
        if settings not in _runtimes:
            _runtimes[settings] = Runtime(settings)
        return _runtimes[settings]


def owner_of(engine: Engine) -> Runtime | None:
    """The runtime whose analytics engine `engine` is (also a read-only view's), None for an engine made elsewhere."""
    with _runtimes_lock:
        found = list(_runtimes.values())
    for rt in found:
        for candidate in (rt, rt._read_only_view):
            if candidate is not None and candidate._engines.get(db.Role.analytics) is engine:
                return candidate
    return None


def dispose_all() -> None:
    with _runtimes_lock:
        found = list(_runtimes.values())
        _runtimes.clear()
    for rt in found:
        rt.dispose()
