"""Module-scoped database fixtures that many test modules share, defined once.

A module takes one by importing it (`from support.fixtures import state`): the
import makes it that module's fixture, which is what these must be, since
`state` here (a migrated empty database) is not the alerting tests' `state`
(a fresh state database per test, support/alerting_support.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

from ops.data import rollups
from ops.data.state import migrate


@pytest.fixture(scope="module")
def state(empty_db):
    """The module's empty database with the state schema migrated."""
    migrate(empty_db.writer)
    return empty_db


@pytest.fixture(scope="module")
def db(demo_db):
    """The module's demo database with the state schema migrated."""
    migrate(demo_db.writer)
    return demo_db


@pytest.fixture(scope="module")
def anchor(demo_db) -> dt.datetime:
    """The demo data's anchor (its "now")."""
    return dt.datetime.fromisoformat(demo_db.manifest["anchor"])


@pytest.fixture(scope="module")
def today(request, anchor) -> dt.date:
    """The anchor's local day in the importing module's TZ."""
    return rollups.local_today(request.module.TZ, anchor)
