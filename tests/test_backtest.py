"""The backtest's goals on the demo data, for two generator seeds.

Everything expected comes from the generator's manifest: each planted
incident's start (and end), the spike's provider, the abusing address, which
reconciliation checks have planted faults. The backtest (real jobs, real alert
manager, scratch state database) only says which messages went out when; this
test matches them to the incidents itself:

- every planted incident is paged within 15 minutes of its start, except
  "purchases stopped", which is paged before its gap ends: at about two
  purchases an hour no check can tell a stopped shop from a quiet quarter hour
  (docs/backtest.md works out the floor);
- replayed stretches around the incidents and a healthy half day carry no
  critical message outside the incidents and at most one non-critical one.

Each window is replayed on its own (about 30 runs of the metric probes at 5 min
steps), so the test takes seconds per seed; the full 30 days are in the README.
"""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import Database, _create_db, _drop_db, settings_for
from ops.core.errors import UserError
from ops.daemon import backtest

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

STEP = dt.timedelta(minutes=5)
GOAL = dt.timedelta(minutes=15)
# messages about an incident's own alert still count as its own this long after it ends (its 6 h window)
AFTER = dt.timedelta(hours=8)


def _at(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


@pytest.fixture(scope="module", params=[1, 2], ids=["seed1", "seed2"])
def seeded(request, pg_server, pg_home, demo_template, seed2_template):
    template, manifest = demo_template if request.param == 1 else seed2_template
    name = f"bt_seed{request.param}"
    _create_db(pg_server.admin_url, name, template=template)
    url = pg_server.url(name)
    yield Database(url, settings_for(pg_home, url), manifest)
    _drop_db(pg_server.admin_url, name)


def _keys(incident: dict) -> set[str]:
    """The alerts that are about one planted incident (from its manifest entry)."""
    kind = incident["kind"]
    if kind == "failure_spike":
        return {f"job_error_rate{{provider={incident['provider']}}}"}
    if kind == "abuse":
        return {f"high_usage{{kind=ip,who={incident['ip']}}}",
                f"rate_limit_near{{action=video_generation,ip={incident['ip']}}}"}
    if kind == "negative_balance":
        return {"negative_balance", "reconcile_negative_balances{check=negative_balances}"}
    return {kind}  # stuck_jobs, purchases_stopped


def _explained(notice, incidents: list[dict], planted_checks: set[str], end: dt.datetime) -> bool:
    for inc in incidents:
        start, stop = _at(inc["start"]), _at(inc["end"]) or end
        if notice.key in _keys(inc) and start <= notice.at <= stop + AFTER:
            return True
    check = notice.key.removeprefix("reconcile_").split("{", 1)[0]
    return notice.rule.startswith("reconcile_") and check in planted_checks


def _replay(db: Database, start: dt.datetime, end: dt.datetime):
    return backtest.run(db.settings, days=(end - start).total_seconds() / 86400, step=STEP, end=end,
                        manifest=db.manifest)


def _noise(report, manifest) -> tuple[int, int]:
    """(critical, non-critical) messages carrying an alert no planted incident or fault explains."""
    planted = {c for c, n in manifest["checks"].items() if n}
    worst: dict[int, str] = {}
    for n in report.notices:
        if _explained(n, manifest["incidents"], planted, report.end):
            continue
        sev = n.severity if n.kind != "resolved" else "resolved"
        if worst.get(n.message) != "critical":
            worst[n.message] = sev
    return (sum(v == "critical" for v in worst.values()), sum(v != "critical" for v in worst.values()))


@pytest.fixture(scope="module")
def replays(seeded):
    """Each planted incident replayed from 1 h before its start to 30 min after (purchases stopped: from
    4 h into its gap to its end; the check reads the gap from the data, so it needs no run-up)."""
    anchor = _at(seeded.manifest["anchor"])
    out = {}
    for inc in seeded.manifest["incidents"]:
        start = _at(inc["start"])
        if inc["kind"] == "purchases_stopped":
            window = (start + dt.timedelta(hours=4), _at(inc["end"]))
        else:
            window = (start - dt.timedelta(hours=1), min(start + dt.timedelta(minutes=30), anchor))
        out[inc["kind"]] = (inc, _replay(seeded, *window))
    return out


def test_the_manifest_plants_every_incident_inside_30_days(seeded):
    anchor = _at(seeded.manifest["anchor"])
    kinds = [i["kind"] for i in seeded.manifest["incidents"]]
    assert kinds == ["failure_spike", "stuck_jobs", "negative_balance", "purchases_stopped", "abuse"]
    for inc in seeded.manifest["incidents"]:
        assert anchor - dt.timedelta(days=30) < _at(inc["start"]) < anchor, inc
    assert seeded.manifest["incidents"][0]["provider"] == seeded.manifest["spike"]["provider"]


# Where the goal is missed today, on the suite's fixed anchors: (anchor, seed, incident) -> why. Each is a
# strict xfail, so it fails the suite the day the rules are retuned and the entry must go (the alert-signal
# issue retunes them against a sweep over many anchors; measured over the CLOCK_FIXTURES anchors and the
# default one with seeds 1 and 2, this is the only miss: every other spike paged in 10-15 minutes).
KNOWN_MISSES = {
    ("2026-03-18T14:37:00+00:00", 1, "failure_spike"):
        "the spike starts at Sunday 00:00 UTC, the quietest hour: 2 of its 12 failing jobs have finished "
        "by 00:30, fewer than the 3 failures the error-rate check needs",
}


@pytest.mark.parametrize("kind", ["failure_spike", "stuck_jobs", "negative_balance", "abuse"])
def test_incident_paged_within_15_minutes(request, seeded, replays, kind):
    why = KNOWN_MISSES.get((_at(seeded.manifest["anchor"]).isoformat(), seeded.manifest["seed"], kind))
    if why:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"known miss: {why}"))
    inc, report = replays[kind]
    start = _at(inc["start"])
    pages = [n for n in report.notices if n.key in _keys(inc) and n.kind in ("firing", "flapping")]
    assert pages, f"{kind} never paged; messages: {[(str(n.at), n.key, n.kind) for n in report.notices]}"
    assert start <= pages[0].at <= start + GOAL, (kind, start, pages[0])
    # nothing about it before it began
    assert not [n for n in report.notices if n.key in _keys(inc) and n.at < start]


def test_purchases_stopped_paged_before_the_gap_ends(replays):
    inc, report = replays["purchases_stopped"]
    start, end = _at(inc["start"]), _at(inc["end"])
    pages = [n for n in report.notices if n.key == "purchases_stopped" and n.kind in ("firing", "flapping")]
    assert pages and pages[0].at < end, pages


def _unexplained(report, manifest) -> list[tuple[str, str, str, str]]:
    planted = {c for c, n in manifest["checks"].items() if n}
    return [(str(n.at), n.key, n.severity, n.kind) for n in report.notices
            if not _explained(n, manifest["incidents"], planted, report.end)]


def test_no_noise_around_the_incidents(seeded, replays):
    seen = [u for _, r in replays.values() for u in _unexplained(r, seeded.manifest)]
    assert sum(_noise(r, seeded.manifest)[0] for _, r in replays.values()) == 0, seen
    assert sum(_noise(r, seeded.manifest)[1] for _, r in replays.values()) <= 1, seen


def test_a_healthy_half_day_is_quiet(seeded):
    # the 12 hours that end 8 h before the earliest incident start of the last 10 days
    anchor = _at(seeded.manifest["anchor"])
    busy = [(_at(i["start"]), _at(i["end"]) or anchor) for i in seeded.manifest["incidents"]]
    end = anchor - dt.timedelta(days=1)
    while any(s - AFTER < end and end - dt.timedelta(hours=12) < e + AFTER for s, e in busy):
        end -= dt.timedelta(hours=1)
    report = _replay(seeded, end - dt.timedelta(hours=12), end)
    assert report.jobs["metric_probes"] == 144
    critical, other = _noise(report, seeded.manifest)
    assert (critical, other) == (0, 0), [(str(n.at), n.key, n.kind) for n in report.notices]


def _told(report) -> list[tuple]:
    return [(n.at, n.key, n.severity, n.kind, n.message, n.explained_by) for n in report.notices]


def test_the_daemons_path_and_the_fast_path_send_the_same_notices(seeded):
    """The same window (the spike and the stuck jobs, from an hour before the first to an hour after the
    second began) replayed through the alert manager on a scratch state store, as the daemon records
    results, and through the in-memory lifecycle: notice by notice the same."""
    incidents = {i["kind"]: i for i in seeded.manifest["incidents"]}
    starts = sorted(_at(incidents[k]["start"]) for k in ("failure_spike", "negative_balance"))
    anchor = _at(seeded.manifest["anchor"])
    start, end = starts[0] - dt.timedelta(hours=1), min(starts[0] + dt.timedelta(hours=5), anchor)
    days = (end - start).total_seconds() / 86400
    fast = backtest.run(seeded.settings, days=days, step=STEP, end=end, manifest=seeded.manifest)
    store = backtest.run(seeded.settings, days=days, step=STEP, end=end, manifest=seeded.manifest,
                         through_store=True)
    assert fast.jobs == store.jobs and fast.jobs["metric_probes"] == 72
    assert _told(store), "the window must carry messages for the comparison to mean something"
    assert _told(fast) == _told(store)
    assert [(m.at, m.critical, m.keys) for m in fast.messages] == [(m.at, m.critical, m.keys) for m in store.messages]


def test_scratch_state_is_dropped_and_real_state_untouched(seeded):
    import sqlalchemy as sa

    anchor = _at(seeded.manifest["anchor"])
    with seeded.writer.connect() as conn:
        before = conn.execute(sa.text("SELECT to_regclass('opsbench.alerts') IS NOT NULL")).scalar_one()
    _replay(seeded, anchor - dt.timedelta(minutes=30), anchor)
    backtest.run(seeded.settings, days=1 / 48, step=STEP, end=anchor, manifest=seeded.manifest, through_store=True)
    with seeded.writer.connect() as conn:
        after = conn.execute(sa.text("SELECT to_regclass('opsbench.alerts') IS NOT NULL")).scalar_one()
        names = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE 'opsbench_backtest_%'"))
        assert names.scalars().all() == []
    assert before == after  # the backtest never migrated (nor wrote to) the real state store


def test_bad_arguments_are_one_line(seeded):
    with pytest.raises(UserError, match="--days"):
        backtest.run(seeded.settings, days=0)
    with pytest.raises(UserError, match="--job: no enabled job 'nope'"):
        backtest.run(seeded.settings, days=1, only=["nope"])
