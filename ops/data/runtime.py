"""What one process works with: its settings and one pooled engine per role.

The CLI and the daemon build one `Runtime` and hand it to every job through
its `JobContext`, so engines are shared where they should be and disposed in
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
                self._engines[role] = (db.make_engine(role, self.settings, read_only=True) if self.is_read_only
                                       else db.engine(role, self.settings))
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
        """Close the read-only view's pools (the writable engines are the process's shared ones)."""
        with self._lock:
            view, self._read_only_view = self._read_only_view, None
            owned = list(self._engines.values()) if self.is_read_only else []
            if self.is_read_only:
                self._engines.clear()
        for eng in owned:
            eng.dispose()
        if view is not None:
            view.dispose()
