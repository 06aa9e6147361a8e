"""Money per currency, converted only at the founder's own rates (OPSBENCH_FX_RATES), checked at the door.

The converted totals are checked against a recomputation from the raw purchases
(tests/support/recompute.py: pandas over the whole table) and the rates written
in this file, never against the report code's own arithmetic.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pytest
from support.botapi import parse_html
from support.recompute import insert_rows, read_table, revenue_summary
from support.fixtures import db  # noqa: F401 - the shared module fixture

from ops.core.errors import SettingsError
from ops.core.settings import load_settings
from ops.reports import figures as report
from ops.reports import message as report_message
from ops.reports import page as report_page

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

TZ = "Europe/Istanbul"
RATES = {"EUR": Decimal("1.0825"), "TRY": Decimal("0.0291")}   # what the founder wrote; JPY has none
FX_TOML = """# kept by hand
base = "USD"
as_of = 2026-11-30
[rates]
EUR = 1.0825
TRY = 0.0291
"""


# -- at the door -----------------------------------------------------------------------

@pytest.mark.parametrize("name, text, expected", [
    ("fx.toml", 'base = "USD"\n[rates]\nEUR = -1\n', "the rate of EUR must be a positive number"),
    ("fx.toml", 'base = "USD"\n[rates]\nEURO = 1.1\n', "must be a three-letter currency code"),
    ("fx.toml", 'base = "USD"\nEUR = 1.1\n', "unknown key 'EUR'"),
    ("fx.toml", "[rates]\nEUR = 1.1\n", "base must be a three-letter currency code"),
    ("fx.toml", 'base = "USD"\n[rates\n', "not valid TOML"),
    ("fx.toml", 'base = "USD"\n[rates]\n', "no rates in the file"),
    ("fx.csv", "currency,rate\nEUR,1.1\n", "the first line must be currency,base,rate"),
    ("fx.csv", "currency,base,rate\nEUR,USD,1.1\nTRY,EUR,30\n", "the same base, found EUR, USD"),
    ("fx.csv", "currency,base,rate\nEUR,USD,abc\n", "the rate of EUR must be a positive number"),
    ("missing.toml", None, "no such file"),
])
def test_a_bad_rates_file_stops_at_the_door_naming_the_variable(tmp_path, name, text, expected):
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_FX_RATES=str(path))
    msg = str(err.value)
    assert msg.startswith("OPSBENCH_FX_RATES: ") and expected in msg and "\n" not in msg
    assert 'expected a TOML file with base = "USD"' in msg


def test_toml_and_csv_rates_read_the_same(tmp_path):
    (tmp_path / "fx.toml").write_text(FX_TOML, encoding="utf-8")
    (tmp_path / "fx.csv").write_text("currency,base,rate\nEUR,USD,1.0825\nTRY,USD,0.0291\n", encoding="utf-8")
    toml = load_settings(OPSBENCH_FX_RATES=str(tmp_path / "fx.toml")).fx
    csv = load_settings(OPSBENCH_FX_RATES=str(tmp_path / "fx.csv")).fx
    assert toml.base == csv.base == "USD" and toml.rates == csv.rates == RATES
    assert toml.as_of == dt.date(2026, 11, 30) and toml.describe() == "rates from fx.toml as of 2026-11-30"
    assert load_settings().fx is None


# -- in the reports ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def day(db) -> dt.date:
    return pd.Timestamp(db.manifest["anchor"]).tz_convert(TZ).date() - dt.timedelta(days=2)


@pytest.fixture(scope="module")
def foreign(db, day):
    """Purchases in EUR, TRY and JPY on the day (one EUR refunded that day too), written as plain rows."""
    users = read_table(db.analytics, "users")["id"].tolist()
    noon = pd.Timestamp(dt.datetime.combine(day, dt.time(12))).tz_localize(TZ).to_pydatetime()
    rows = [("FX-EUR-1", "EUR", "7.49", None), ("FX-EUR-2", "EUR", "12.25", noon + dt.timedelta(hours=3)),
            ("FX-EUR-3", "EUR", "3.33", None), ("FX-TRY-1", "TRY", "199.99", None),
            ("FX-TRY-2", "TRY", "349.90", None), ("FX-JPY-1", "JPY", "980", None)]
    insert_rows(db.writer, "purchases", [
        {"transaction_id": t, "user_id": users[i], "product_id": "credits_100", "credits": 100, "price": Decimal(p),
         "currency": c, "environment": "Production", "purchased_at": noon + dt.timedelta(minutes=i),
         "refunded_at": r}
        for i, (t, c, p, r) in enumerate(rows)])
    return rows


def expected_totals(db, day, rates: dict[str, Decimal]) -> dict[str, Decimal]:
    """All currencies in USD, from the raw purchases: each currency's sum times its rate, to the cent."""
    purchases = read_table(db.analytics, "purchases")
    out = {"gross": Decimal(0), "refunds": Decimal(0), "net": Decimal(0)}
    for cur in sorted(set(purchases["currency"])):
        rate = Decimal(1) if cur == "USD" else rates.get(cur)
        if rate is None:
            continue
        s = revenue_summary(purchases, day, day, TZ, currency=cur)
        for k in out:
            out[k] += (Decimal(str(s[k])) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return out


def visible(page: str) -> str:
    """A page's text: tags dropped, entities decoded, runs of space as one."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split()).replace(" ,", ",").replace(" :", ":")


def money(d: Decimal) -> str:
    return f"{d:,.2f}"


def build(db, pg_home, day, kind="daily", **env):
    from conftest import settings_for

    settings = settings_for(pg_home, db.url, REPORT_TZ=TZ, **env)
    window = report.Window(day, day, TZ) if kind == "daily" else report.window_for("weekly", day, TZ)
    return report.build(db.analytics, settings, kind, window=window, state=db.writer)


def test_without_rates_every_currency_has_its_own_line_and_nothing_is_converted(db, pg_home, day, foreign):
    text = parse_html(report_message.telegram_message(build(db, pg_home, day)))
    revenue = text.split("Revenue (USD)")[1].split("Users")[0]
    purchases = read_table(db.analytics, "purchases")
    for cur in ("EUR", "TRY", "JPY"):
        s = revenue_summary(purchases, day, day, TZ, currency=cur)
        assert f"{cur} gross {s['gross']:,.2f}, net {s['net']:,.2f}, {s['purchases']} purchases" in revenue
    assert "not converted" in revenue and "All currencies" not in text


@pytest.mark.parametrize("kind", ["daily", "weekly"])
def test_with_rates_the_report_converts_and_says_at_what_rate(db, pg_home, day, foreign, tmp_path, kind):
    (tmp_path / "fx.toml").write_text(FX_TOML, encoding="utf-8")
    rep = build(db, pg_home, day, kind, OPSBENCH_FX_RATES=str(tmp_path / "fx.toml"))
    text = parse_html(report_message.telegram_message(rep))
    if kind == "daily":
        want = expected_totals(db, day, RATES)
    else:   # the week: every day of it, recomputed the same way
        want = {"gross": Decimal(0), "refunds": Decimal(0), "net": Decimal(0)}
        purchases = read_table(db.analytics, "purchases")
        for cur in sorted(set(purchases["currency"])):
            rate = Decimal(1) if cur == "USD" else RATES.get(cur)
            if rate is None:
                continue
            s = revenue_summary(purchases, rep.window.start, rep.window.end, TZ, currency=cur)
            for k in want:
                want[k] += (Decimal(str(s[k])) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert want["gross"] > 0 and want["refunds"] > 0
    line = (f"All currencies in USD: gross {money(want['gross'])}, refunds {money(want['refunds'])}, "
            f"net {money(want['net'])}")
    assert line in text
    assert "converted EUR at 1.0825, TRY at 0.0291 USD; rates from fx.toml as of 2026-11-30" in text
    assert "left out, no rate: JPY" in text
    # the HTML report says the same
    page = visible(report_page.render(rep))
    assert line in page and "converted EUR at 1.0825, TRY at 0.0291 USD" in page
    assert "gross refunds net sales" in page
    purchases = read_table(db.analytics, "purchases")
    for cur in ("EUR", "JPY", "USD"):      # each row in its own money
        s = revenue_summary(purchases, rep.window.start, rep.window.end, TZ, currency=cur)
        assert f"{cur} {s['gross']:,.2f} {s['refunds']:,.2f} {s['net']:,.2f} {s['purchases']:,}" in page


def test_a_window_with_only_the_base_currency_converts_nothing(db, pg_home, day, tmp_path):
    (tmp_path / "fx.toml").write_text(FX_TOML, encoding="utf-8")
    earlier = day - dt.timedelta(days=20)
    rep = build(db, pg_home, earlier, OPSBENCH_FX_RATES=str(tmp_path / "fx.toml"))
    assert [c.currency for c in rep.currencies] == ["USD"] and rep.converted is None
    assert "All currencies" not in parse_html(report_message.telegram_message(rep))


def test_the_overview_notebook_lists_every_currency_and_converts_at_the_founders_rates(
        db, pg_home, day, foreign, tmp_path, monkeypatch):
    """`nb.by_currency`, what the overview's "Revenue in every currency" shows, against the raw purchases."""
    import ops.notebook as nb

    (tmp_path / "fx.csv").write_text("currency,base,rate\nEUR,USD,1.0825\nTRY,USD,0.0291\n", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("OPSBENCH_HOME", str(pg_home))
    monkeypatch.setattr(nb, "_settings", None)
    shown, line = nb.by_currency(day, day, TZ, engine=db.analytics)
    assert set(shown["currency"]) == {"USD", "EUR", "TRY", "JPY"} and "net in USD" not in shown
    assert line.startswith("Each currency on its own: nothing converted")

    monkeypatch.setenv("OPSBENCH_FX_RATES", str(tmp_path / "fx.csv"))
    monkeypatch.setattr(nb, "_settings", None)
    shown, line = nb.by_currency(day, day, TZ, engine=db.analytics)
    purchases = read_table(db.analytics, "purchases")
    for row in shown.itertuples(index=False):
        s = revenue_summary(purchases, day, day, TZ, currency=row.currency)
        rate = Decimal(1) if row.currency == "USD" else RATES.get(row.currency)
        converted = getattr(row, "_6")          # "net in USD"
        if rate is None:
            assert converted is None or pd.isna(converted)
        else:
            assert converted == (Decimal(str(s["net"])) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    want = expected_totals(db, day, RATES)
    assert line.startswith(f"All currencies in USD: gross {money(want['gross'])} USD, net {money(want['net'])} USD; "
                           "converted EUR at 1.0825, TRY at 0.0291 USD (rates from fx.csv)")
    assert line.endswith("left out, no rate: JPY")
    table = nb.table(shown).to_html()
    eur = revenue_summary(purchases, day, day, TZ, currency="EUR")
    assert "980.00 JPY" in table and f">{eur['net']:,.2f} EUR<" in table   # each row in its own money
    assert f">{money((Decimal(str(eur['net'])) * RATES['EUR']).quantize(Decimal('0.01'), ROUND_HALF_UP))} USD<" in table
