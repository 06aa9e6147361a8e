"""Fixtures shared by the alerting tests: a fresh state database per test,
the fake Bot API server and a fake clock."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from conftest import _create_db, _drop_db, settings_for

from ops.core.settings import Settings
from ops.data import db as ops_db
from ops.data.state import migrate
from support.botapi import TOKEN, FakeBotApi, FakeClock

_ids = itertools.count()


@dataclass
class StateDb:
    url: str
    home: str
    engine: sa.Engine

    def settings(self, **env) -> Settings:
        return settings_for(self.home, self.url, **env)

    def telegram_settings(self, api: FakeBotApi, chat: str = "-100500", **env) -> Settings:
        return self.settings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID=chat, TELEGRAM_API_BASE=api.url, **env)


@pytest.fixture
def state(pg_server, pg_home, state_template) -> StateDb:
    """A new database with the opsbench state schema (a copy of the session's migrated template), for one test."""
    name = f"alerting_{next(_ids)}"
    _create_db(pg_server.admin_url, name, template=state_template)
    url = pg_server.url(name)
    engine = ops_db.make_engine("state", settings_for(pg_home, url))
    assert migrate(engine) == []  # the template is up to date: nothing left to apply
    yield StateDb(url, pg_home, engine)
    engine.dispose()
    _drop_db(pg_server.admin_url, name)


@pytest.fixture
def api():
    server = FakeBotApi().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
