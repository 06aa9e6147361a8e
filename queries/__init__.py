"""SQL query modules: `queries.<subject>.<name>(conn, **params) -> DataFrame`.

The founder's SQL lives in `queries/<subject>.sql`, opsbench's own (state store, rollups,
seeding, bench, doctor) in `queries/internal/`; see `queries.loader` for the format.
"""

from __future__ import annotations

from queries.loader import (NamedQuery, QueryError, Subject, all_queries, get, internal_subjects, load, script,
                            subjects)

__all__ = ["NamedQuery", "QueryError", "Subject", "all_queries", "get", "internal_subjects", "load", "script",
           "subjects"]


def __getattr__(name: str) -> Subject:
    if name in subjects(internal=True):   # queries.rollups too: opsbench's own subjects load by name
        return load(name)
    raise AttributeError(f"module 'queries' has no attribute {name!r}")
