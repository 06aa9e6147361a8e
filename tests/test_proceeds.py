"""Proceeds (issue 28): what the founder keeps after the store's commission and the tax share.

The commission file (OPSBENCH_COMMISSION, ops/core/commission.py) is checked at
the door; revenue.daily / summary / by_currency gain `proceeds`, NULL when no
file is configured. Expected figures come from a pandas computation over the
raw rows with the rates written in this test (not read through the module),
in two time zones; the same refund and duplicate rules as revenue.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from support.clock import clock_env
from support.recompute import canonical_purchases, days, insert_rows, read_table, yesterday

import queries
from ops.core.errors import SettingsError
from ops.core.settings import load_settings

UTC = dt.timezone.utc
D = dt.date
USER = uuid.UUID(int=0xE)
PYTHON = Path(sys.executable)

# The test's own rates: written to a file below, and used by `expected_proceeds` directly.
DEFAULT = Decimal("0.15")
PRODUCT = {"credits_500": Decimal("0.30")}                        # every day
PERIOD = (D(2026, 3, 10), D(2026, 3, 12), Decimal("0.20"))      # [from, until) for every other product
TAX = {"EUR": Decimal("0.20")}
TOML = """\
default = 0.15
[[rate]]
product = "credits_500"
rate = 0.30
[[rate]]
from = 2026-03-10
until = 2026-03-12
rate = 0.20
[tax]
EUR = 0.20
"""
CSV = """\
kind,key,from,until,rate
default,,,,0.15
product,credits_500,,,0.30
product,,2026-03-10,2026-03-12,0.20
tax,EUR,,,0.20
"""


def rate_of(product: str, day: dt.date) -> Decimal:
    if product in PRODUCT:
        return PRODUCT[product]
    if PERIOD[0] <= day < PERIOD[1]:
        return PERIOD[2]
    return DEFAULT


def expected_proceeds(raw: pd.DataFrame, start: dt.date, end: dt.date, tz: str, currency: str) -> dict:
    """day -> proceeds: each first copy's price less tax share less commission on the rest, on its purchase
    day, minus the same for refunds on the refund day (the earliest refund of any copy)."""
    zone = ZoneInfo(tz)
    out = {d: Decimal(0) for d in days(start, end)}
    for r in canonical_purchases(raw).itertuples():
        if r.environment != "Production" or r.currency != currency:
            continue
        bought = r.purchased_at.astimezone(zone).date()
        kept = Decimal(str(r.price)) * (1 - TAX.get(r.currency, Decimal(0))) * (1 - rate_of(r.product_id, bought))
        if bought in out:
            out[bought] += kept
        if pd.notna(r.refunded_at):
            back = r.refunded_at.astimezone(zone).date()
            if back in out:
                out[back] -= kept
    return out


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def _p(tid, product, price, currency, when, refunded_at=None, env="Production"):
    return dict(transaction_id=tid, user_id=USER, product_id=product, credits=100, price=price, currency=currency,
                environment=env, purchased_at=when, refunded_at=refunded_at)


ROWS = [
    _p("A", "credits_100", 9.99, "USD", at(9, 12)),                  # default rate
    _p("B", "credits_100", 9.99, "USD", at(9, 20)),                  # the 9th in UTC, the 10th in Tokyo: period rate
    _p("C", "credits_100", 9.99, "USD", at(10, 12), at(13, 12)),     # period rate, refunded later at that rate
    _p("D", "credits_500", 39.99, "USD", at(11, 12)),                # product rate beats the period
    _p("E", "credits_100", 8.99, "EUR", at(11, 12)),                 # EUR: tax share, then the period rate
    _p("F", "credits_100", 9.99, "USD", at(12, 12)),                 # duplicate; refund only on the later copy
    _p("F", "credits_100", 9.99, "USD", at(12, 12), at(13, 15)),
    _p("G", "credits_100", 9.99, "USD", at(12, 13), env="Sandbox"),  # no money
]


@pytest.fixture(scope="module")
def hand_db(empty_db):
    insert_rows(empty_db.writer, "users", [dict(id=USER, email="e@example.com", created_at=at(1, 0))])
    insert_rows(empty_db.writer, "products", [
        dict(id="credits_100", name="100 credits", credits=100, price=9.99, currency="USD"),
        dict(id="credits_500", name="500 credits", credits=500, price=39.99, currency="USD"),
    ])
    insert_rows(empty_db.writer, "purchases", ROWS)
    return empty_db


@pytest.fixture(scope="module")
def toml_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("commission") / "commission.toml"
    path.write_text(TOML, encoding="utf-8")
    return path


# -- at the door -----------------------------------------------------------------------

@pytest.mark.parametrize("name, text, expected", [
    ("c.toml", "default = 1.0\n", "c.toml line 1: default must be a number in [0, 1)"),
    ("c.toml", "default = -0.1\n", "c.toml line 1: default must be a number in [0, 1)"),
    ("c.toml", "default = 0.15\n[[rate]]\nproduct = \"x\"\nrate = 1.5\n", "c.toml line 4: rate must be"),
    ("c.toml", "default = 0.15\nvat = 0.2\n", "c.toml line 2: unknown key 'vat'"),
    ("c.toml", "default = 0.15\n[[rate]]\nproduct = \"x\"\nprice = 1\nrate = 0.3\n",
     "c.toml line 4: unknown key 'price' in [[rate]]"),
    ("c.toml", "default = 0.15\n[[rate]]\nfrom = 2026-01-01\nuntil = 2026-03-01\nrate = 0.3\n"
               "[[rate]]\nfrom = 2026-02-01\nrate = 0.2\n", "c.toml line 6: its period overlaps the rule at line 2"),
    ("c.toml", "default = 0.15\n[[rate]]\nproduct = \"x\"\nrate = 0.3\n[[rate]]\nproduct = \"x\"\n"
               "from = 2026-02-01\nrate = 0.2\n", "overlaps the rule at line 2 for product 'x'"),
    ("c.toml", "default = 0.15\n[tax]\nEUR = 1\n", "c.toml line 3: tax share of EUR must be a number in [0, 1)"),
    ("c.toml", "[[rate]]\nproduct = \"x\"\nrate = 0.3\n", "c.toml: no default rate"),
    ("c.toml", "default = 0.15\n[[rate\n", "c.toml: not valid TOML"),
    ("c.csv", "kind,rate\ndefault,0.15\n", "c.csv line 1: the header must be kind,key,from,until,rate"),
    ("c.csv", "kind,key,from,until,rate\ndefault,,,,0.15\nproduct,,2026-01-01,,0.2\nproduct,,2026-02-01,,0.3\n",
     "c.csv line 4: its period overlaps the rule at line 3"),
    ("c.csv", "kind,key,from,until,rate\ndefault,,,,30\n", "c.csv line 2: rate must be a number in [0, 1)"),
    ("missing.toml", None, "missing.toml: no such file"),
])
def test_a_bad_commission_file_stops_at_the_door_naming_file_line_and_key(tmp_path, name, text, expected):
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_COMMISSION=str(path))
    msg = str(err.value)
    assert msg.startswith("OPSBENCH_COMMISSION: ") and expected in msg and "\n" not in msg, msg


def test_toml_and_csv_give_the_same_rates(tmp_path):
    (tmp_path / "c.toml").write_text(TOML, encoding="utf-8")
    (tmp_path / "c.csv").write_text(CSV, encoding="utf-8")
    a = load_settings(OPSBENCH_COMMISSION=str(tmp_path / "c.toml")).commission
    b = load_settings(OPSBENCH_COMMISSION=str(tmp_path / "c.csv")).commission
    for product in ("credits_100", "credits_500"):
        for d in days(D(2026, 3, 8), D(2026, 3, 13)):
            assert a.rate(product, d) == b.rate(product, d) == rate_of(product, d)
    assert a.tax == b.tax == TAX


# -- the queries ---------------------------------------------------------------------

@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo"])
@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_daily_proceeds_equal_the_independent_computation(hand_db, toml_file, tz, currency):
    start, end = D(2026, 3, 8), D(2026, 3, 14)
    df = queries.revenue.daily(hand_db.analytics, start=start, end=end, tz=tz, currency=currency,
                               commission=toml_file)
    expected = expected_proceeds(read_table(hand_db.writer, "purchases"), start, end, tz, currency)
    got = {r["day"]: r["proceeds"] for r in df.to_dict("records")}
    for d, value in expected.items():
        assert Decimal(str(got[d])).quantize(Decimal("0.000001")) == value.quantize(Decimal("0.000001")), (d, got[d])
    assert any(v != 0 for v in expected.values())
    if currency == "USD":
        # the refund on the later copy of F takes back its proceeds, on the 13th (both zones)
        assert expected[D(2026, 3, 13)] < 0


def test_summary_and_by_currency_agree_with_the_daily_sum(hand_db, toml_file):
    start, end = D(2026, 3, 8), D(2026, 3, 14)
    raw = read_table(hand_db.writer, "purchases")
    s = queries.revenue.summary(hand_db.analytics, start=start, end=end, tz="UTC", commission=toml_file).iloc[0]
    usd = sum(expected_proceeds(raw, start, end, "UTC", "USD").values())
    assert float(s["proceeds"]) == pytest.approx(float(usd), abs=1e-9)
    bc = queries.revenue.by_currency(hand_db.analytics, start=start, end=end, tz="UTC",
                                     commission=toml_file).set_index("currency")
    assert float(bc.loc["USD", "proceeds"]) == pytest.approx(float(usd), abs=1e-9)
    eur = sum(expected_proceeds(raw, start, end, "UTC", "EUR").values())
    # 8.99 x (1 - 0.20 tax) x (1 - 0.20 period rate), written out
    assert float(bc.loc["EUR", "proceeds"]) == pytest.approx(float(eur)) == pytest.approx(8.99 * 0.8 * 0.8)


def test_without_a_file_proceeds_are_null_never_net(hand_db):
    df = queries.revenue.daily(hand_db.analytics, start=D(2026, 3, 9), end=D(2026, 3, 12), tz="UTC")
    assert df["proceeds"].isna().all() and (df["net"] > 0).any()
    assert queries.revenue.summary(hand_db.analytics, start=D(2026, 3, 9), end=D(2026, 3, 12),
                                   tz="UTC")["proceeds"].isna().all()
    assert queries.revenue.by_currency(hand_db.analytics, start=D(2026, 3, 9), end=D(2026, 3, 12),
                                       tz="UTC")["proceeds"].isna().all()


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_demo_proceeds_over_30_days_equal_the_independent_computation(demo_db, toml_file, tz):
    end = yesterday(tz)
    start = end - dt.timedelta(days=29)
    df = queries.revenue.daily(demo_db.analytics, start=start, end=end, tz=tz, commission=toml_file)
    expected = expected_proceeds(read_table(demo_db.writer, "purchases"), start, end, tz, "USD")
    for r in df.to_dict("records"):
        assert float(r["proceeds"]) == pytest.approx(float(expected[r["day"]]), abs=1e-6), r["day"]
    assert sum(expected.values()) > 0


# -- the CLI -------------------------------------------------------------------------

def run(db, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
               "DATABASE_URL": db.url, "PYTHONWARNINGS": "ignore",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **clock_env(), **env}
    return subprocess.run([str(PYTHON), "-m", "ops", "query", *args], capture_output=True, text=True,
                          env=environ, timeout=120)


def test_cli_shows_proceeds_with_the_file_and_says_not_configured_without(hand_db, toml_file, tmp_path):
    args = ("revenue.daily", "-p", "start=2026-03-09", "-p", "end=2026-03-13", "-f", "csv", "--raw")
    with_file = run(hand_db, *args, REPORT_TZ="UTC", OPSBENCH_COMMISSION=str(toml_file))
    assert with_file.returncode == 0, with_file.stderr
    got = pd.read_csv(io.StringIO(with_file.stdout))
    expected = expected_proceeds(read_table(hand_db.writer, "purchases"), D(2026, 3, 9), D(2026, 3, 13), "UTC", "USD")
    assert [round(float(expected[D.fromisoformat(d)]), 2) for d in got["day"]] == \
        [round(float(v), 2) for v in got["proceeds"]]

    without = run(hand_db, *args, REPORT_TZ="UTC")
    assert without.returncode == 0, without.stderr
    assert pd.read_csv(io.StringIO(without.stdout))["proceeds"].isna().all()
    assert "proceeds not configured" in without.stderr and "OPSBENCH_COMMISSION" in without.stderr

    bad = tmp_path / "bad.toml"
    bad.write_text("default = 0.15\n[[rate]]\nproduct = \"credits_100\"\nrate = 1.2\n", encoding="utf-8")
    proc = run(hand_db, *args, REPORT_TZ="UTC", OPSBENCH_COMMISSION=str(bad))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "OPSBENCH_COMMISSION" in lines[0] and "bad.toml line 4" in lines[0] and "rate" in lines[0]


# -- the daily digest ----------------------------------------------------------------

def _digest(db, pg_home, day, tz, **env):
    from conftest import settings_for

    from ops.reports import figures as report

    settings = settings_for(pg_home, db.url, REPORT_TZ=tz, **env)
    return report.build(db.analytics, settings, "daily", window=report.Window(day, day, ZoneInfo(tz)),
                        state=db.writer)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_the_digest_shows_proceeds_with_the_file_and_not_configured_without(demo_db, pg_home, toml_file, tz):
    from ops.reports import formatting as fmt
    from ops.reports import message

    day = yesterday(tz)
    expected = expected_proceeds(read_table(demo_db.writer, "purchases"), day - dt.timedelta(days=7), day, tz, "USD")
    rep = _digest(demo_db, pg_home, day, tz, OPSBENCH_COMMISSION=str(toml_file))
    fig = rep.figures["proceeds"]
    assert fig.value == pytest.approx(float(expected[day]), abs=1e-6)
    prior = [float(expected[day - dt.timedelta(days=i)]) for i in range(1, 8)]
    assert fig.base["avg7"] == pytest.approx(sum(prior) / 7, abs=1e-6)
    text = message.telegram_message(rep)
    row = next(line for line in text.splitlines() if line.startswith("proceeds "))
    assert fmt.money(fig.value) in row and row.count(message.BETTER) + row.count(message.WORSE) \
        + row.count(message.NEUTRAL) >= 1
    assert "commission from commission.toml" in text

    bare = _digest(demo_db, pg_home, day, tz)
    assert bare.figures["proceeds"].value is None
    text = message.telegram_message(bare)
    assert "proceeds: not configured" in text
    assert not any(line.startswith("proceeds ") for line in text.splitlines())


# -- through the rollups ---------------------------------------------------------------

def test_rollup_reader_gives_the_raw_proceeds_and_none_without_a_file(demo_db, toml_file):
    from ops.data import rollups
    from ops.data.state import migrate

    tz = "UTC"
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    migrate(demo_db.writer)
    rollups.refresh(demo_db.analytics, demo_db.writer, tz, now=anchor)
    end = rollups.local_today(tz, anchor) - dt.timedelta(days=1)
    start = end - dt.timedelta(days=29)
    today = end + dt.timedelta(days=1)
    with_file = rollups.revenue_series(demo_db.analytics, demo_db.writer, start, end, tz=tz, today=today,
                                       commission=str(toml_file))
    raw = queries.revenue.daily.raw(demo_db.analytics, start=start, end=end, tz=tz, commission=toml_file)
    pd.testing.assert_frame_equal(with_file.reset_index(drop=True), raw.reset_index(drop=True))
    expected = expected_proceeds(read_table(demo_db.writer, "purchases"), start, end, tz, "USD")
    assert [round(float(v), 6) for v in with_file["proceeds"]] == [round(float(expected[d]), 6)
                                                                  for d in with_file["day"]]
    # without a file the closed days come from the rollups, gross/net as raw, proceeds NULL
    bare = rollups.revenue_series(demo_db.analytics, demo_db.writer, start, end, tz=tz, today=today,
                                  commission="none")
    assert bare["proceeds"].isna().all()
    assert [float(v) for v in bare["net"]] == [float(v) for v in raw["net"]]


@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo"])
def test_by_product_proceeds_add_up_to_the_daily_proceeds(hand_db, toml_file, tz):
    start, end = D(2026, 3, 8), D(2026, 3, 14)
    bp = queries.revenue.by_product(hand_db.analytics, start=start, end=end, tz=tz, commission=toml_file)
    expected = expected_proceeds(read_table(hand_db.writer, "purchases"), start, end, tz, "USD")
    per_day = bp.groupby("day")["proceeds"].sum()
    for d, value in expected.items():
        assert float(per_day[d]) == pytest.approx(float(value), abs=1e-9), d
    # D (credits_500, the 11th at noon UTC: the 11th in both zones) at its product rate
    d500 = bp[(bp["day"] == D(2026, 3, 11)) & (bp["product_id"] == "credits_500")].iloc[0]
    assert float(d500["proceeds"]) == pytest.approx(39.99 * 0.70)
    assert queries.revenue.by_product(hand_db.analytics, start=start, end=end, tz=tz,
                                      commission="none")["proceeds"].isna().all()
