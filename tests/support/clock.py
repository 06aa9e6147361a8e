"""The test suite's clock: one fixed "now" that every test and its data share.

The demo data is generated relative to an anchor, and a founder's demo anchors
it to the real now. The tests never do: the same commit must check the same
data on every day of the year. `OPSBENCH_TEST_NOW` (an ISO instant) moves the
whole suite to another moment; CI runs the clock-sensitive tests (marker
`clock`) at the awkward ones listed in CLOCK_FIXTURES.
"""

from __future__ import annotations

import datetime as dt
import os

UTC = dt.timezone.utc

# A Wednesday afternoon in March: the 120-day demo window holds the US spring-forward day
# (8 March 2026), not the London one (29 March), and no month or year boundary sits near it.
DEFAULT_NOW = dt.datetime(2026, 3, 18, 14, 37, tzinfo=UTC)

# The moments CI replays the clock-sensitive tests at (.ci/run): a year boundary, the DST
# days of America/New_York and Europe/London, a Monday just before a 09:00 UTC job, a leap day.
CLOCK_FIXTURES = {
    "new-year": "2027-01-01T00:05:00+00:00",
    "ny-spring-forward": "2027-03-14T12:00:00+00:00",
    "ny-fall-back": "2026-11-01T12:00:00+00:00",
    "london-spring-forward": "2027-03-28T12:00:00+00:00",
    "london-fall-back": "2026-10-25T12:00:00+00:00",
    "monday-0859": "2026-12-07T08:59:00+00:00",
    "leap-day": "2028-02-29T12:00:00+00:00",
}


def test_now() -> dt.datetime:
    """The suite's now: OPSBENCH_TEST_NOW when set (ISO, UTC if no offset), else DEFAULT_NOW; whole minutes."""
    raw = os.environ.get("OPSBENCH_TEST_NOW", "").strip()
    if not raw:
        return DEFAULT_NOW
    if raw in CLOCK_FIXTURES:
        raw = CLOCK_FIXTURES[raw]
    try:
        at = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"OPSBENCH_TEST_NOW: expected an ISO instant such as 2027-01-01T00:05:00Z or one of "
                         f"{', '.join(CLOCK_FIXTURES)}, got {raw[:40]!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(second=0, microsecond=0)


test_now.__test__ = False  # a helper, not a test pytest should collect


def dst_changes(zone: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The local days in [start, end] on which `zone` changes its UTC offset (23- or 25-hour days)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)

    def offset(day: dt.date) -> dt.timedelta:
        return dt.datetime.combine(day, dt.time(0), tz).utcoffset()

    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)
            if offset(start + dt.timedelta(days=i)) != offset(start + dt.timedelta(days=i + 1))]


def zone_with_dst_change(start: dt.date, end: dt.date,
                         candidates=("America/Los_Angeles", "Australia/Sydney", "America/Santiago")) -> str:
    """A zone far from UTC that changes its offset between start and end: whatever the suite's date, a
    window of five months or more holds one of these zones' changes (March/November, April/October,
    April/September)."""
    for zone in candidates:
        if dst_changes(zone, start, end):
            return zone
    raise AssertionError(f"none of {candidates} changes its offset between {start} and {end}")


def clock_env() -> dict[str, str]:
    """The suite's clock for a subprocess whose environment a test builds from scratch."""
    from ops.core.clock import CLOCK_OFFSET_VAR

    return {CLOCK_OFFSET_VAR: os.environ[CLOCK_OFFSET_VAR]} if CLOCK_OFFSET_VAR in os.environ else {}


def clock_env_at(moment: dt.datetime) -> dict[str, str]:
    """An environment that runs a subprocess's clock at `moment` (then on from there), for a test whose
    own rows sit at a fixed date rather than at the suite's now."""
    from ops.core.clock import CLOCK_OFFSET_VAR

    return {CLOCK_OFFSET_VAR: str((moment - dt.datetime.now(UTC)).total_seconds())}
