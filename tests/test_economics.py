"""Unit economics (issue 28, item 3): provider costs, margin per model and provider, the loss-maker check.

Expected figures come from the generator's manifest (priced from its own
price table, ops/data/seed.py DEMO_COSTS) and from a pandas recomputation over
the raw rows with the prices written in this test, in two time zones; never
from queries/economics.sql.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from support.recompute import canonical_purchases, days, read_table

import queries
from ops.core import costs as costs_mod
from ops.core.errors import SettingsError
from ops.core.settings import load_settings

D = dt.date
UTC = dt.timezone.utc

# The demo's prices as this test knows them (USD per generation, failed billed), written out again
PRICES = {
    ("gen3-alpha", "runway"): (Decimal("0.45"), False),
    ("dream-machine", "luma"): (Decimal("0.22"), True),
    ("ray2", "luma"): (Decimal("0.45"), True),              # 0.09 per second x 5 seconds
    ("kling-1.6", "kling"): (Decimal("0.10"), True),
    ("kling-2.0-master", "kling"): (Decimal("1.60"), True),
    ("pika-2.2", "pika"): (Decimal("0.08"), False),
    ("pika-turbo", "pika"): (Decimal("0.18"), False),
}
TURBO_BEFORE, TURBO_AFTER = Decimal("0.20"), Decimal("0.28")


def price_of(model: str, provider: str, utc_day: dt.date, change: dt.date) -> tuple[Decimal, bool]:
    if (model, provider) == ("gen3-turbo", "runway"):
        return (TURBO_BEFORE if utc_day < change else TURBO_AFTER), False
    return PRICES[(model, provider)]


@pytest.fixture(scope="module")
def econ(demo_db) -> dict:
    return demo_db.manifest["economics"]


@pytest.fixture(scope="module")
def costs_file(econ, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("economics") / "provider-costs.toml"
    path.write_text(econ["costs_toml"], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def raw(demo_db) -> dict[str, pd.DataFrame]:
    return {t: read_table(demo_db.writer, t) for t in ("purchases", "video_jobs", "models", "quota_log")}


def expected_margin(raw: dict, start: dt.date, end: dt.date, tz: str, change: dt.date) -> dict:
    """(day, model, provider) -> figures, by the most direct route over the raw rows."""
    zone = ZoneInfo(tz)
    p = canonical_purchases(raw["purchases"])
    p = p[(p["environment"] == "Production") & (p["currency"] == "USD")]
    per_credit = {}
    for d in days(start, end):
        day_end = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), zone)
        kept = p[(p["purchased_at"] < day_end) & ~(p["refunded_at"].notna() & (p["refunded_at"] < day_end))]
        per_credit[d] = sum(Decimal(str(x)) for x in kept["price"]) / int(kept["credits"].sum())
    ledger = raw["quota_log"]
    ledger = ledger[ledger["reason"].isin(["video_generation", "generation_refund"]) & ledger["job_id"].notna()]
    net = (-ledger.groupby("job_id")["change"].sum()).to_dict()
    names = dict(zip(raw["models"]["id"], raw["models"]["name"]))
    out: dict[tuple, dict] = {}
    for j in raw["video_jobs"].itertuples():
        if j.status not in ("completed", "failed"):
            continue
        created = j.created_at.to_pydatetime()
        day = created.astimezone(zone).date()
        if not start <= day <= end:
            continue
        model = names[j.model_id]
        price, billed = price_of(model, j.provider, created.astimezone(UTC).date(), change)
        row = out.setdefault((day, model, j.provider), {"jobs": 0, "failed": 0, "credits": 0, "cost": Decimal(0)})
        row["jobs"] += 1
        row["failed"] += j.status == "failed"
        row["credits"] += int(net.get(j.id, 0))
        if j.status == "completed" or billed:
            row["cost"] += price
    for (day, _, _), row in out.items():
        row["revenue"] = row["credits"] * per_credit[day]
        row["margin"] = row["revenue"] - row["cost"]
    return out


# -- at the door -----------------------------------------------------------------------

GOOD = 'currency = "USD"\n[[cost]]\nmodel = "m"\nprovider = "p"\nper_generation = 0.1\n'


@pytest.mark.parametrize("text, expected", [
    ('[[cost]]\nmodel = "m"\nprovider = "p"\nper_generation = -0.1\n',
     "c.toml line 4: per_generation must be a price of zero or more"),
    ('[[cost]]\nmodel = "m"\nprovider = "p"\nper_second = 0.1\n', "c.toml line 4: per_second needs seconds"),
    ('[[cost]]\nmodel = "m"\nprovider = "p"\nper_second = 0.1\nseconds = -5\n', "c.toml line 5: seconds must be"),
    ('[[cost]]\nmodel = "m"\nprovider = "p"\nper_generation = 0.1\nprize = 2\n',
     "c.toml line 5: unknown key 'prize' in [[cost]]"),
    ('currency = "USD"\nmargin = 2\n' + GOOD[len('currency = "USD"\n'):], "c.toml line 2: unknown key 'margin'"),
    ('[[cost]]\nprovider = "p"\nper_generation = 0.1\n', "c.toml line 1: [[cost]] needs model"),
    ('[[cost]]\nmodel = "m"\nprovider = "p"\nper_generation = 0.1\nuntil = 2026-03-01\n'
     '[[cost]]\nmodel = "m"\nprovider = "p"\nper_generation = 0.2\nfrom = 2026-02-01\n',
     "c.toml line 6: model 'm' of 'p' overlaps the row at line 1"),
    ('[[cost]]\nmodel = "m"\nprovider = "p"\nper_generation = 0.1\nfailed_billed = "yes"\n',
     "c.toml line 5: failed_billed must be true or false"),
    ('currency = "dollars"\n' + GOOD[len('currency = "USD"\n'):], "c.toml line 1: currency must be"),
    ('[[cost\n', "c.toml: not valid TOML"),
])
def test_a_bad_costs_file_stops_at_the_door_naming_file_line_and_key(tmp_path, text, expected):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_PROVIDER_COSTS=str(path))
    msg = str(err.value)
    assert msg.startswith("OPSBENCH_PROVIDER_COSTS: ") and expected in msg and "\n" not in msg, msg


def test_unknown_model_names_are_named_with_file_and_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(GOOD + '[[cost]]\nmodel = "gen9"\nprovider = "p"\nper_generation = 0.1\n', encoding="utf-8")
    c = costs_mod.load(path)
    msg = costs_mod.unknown_models(c, {("m", "p")})
    assert msg is not None and msg.startswith("c.toml line 6: unknown model 'gen9' of provider 'p'"), msg
    assert costs_mod.unknown_models(c, {("m", "p"), ("gen9", "p")}) is None


def test_the_demo_costs_file_names_only_the_demos_models(demo_db, costs_file):
    models = read_table(demo_db.writer, "models")
    c = load_settings(OPSBENCH_PROVIDER_COSTS=str(costs_file)).provider_costs
    assert costs_mod.unknown_models(c, set(zip(models["name"], models["provider"]))) is None


# -- the margin query ------------------------------------------------------------------

def test_margin_equals_the_manifest_figures(demo_db, econ, costs_file):
    chosen = [D.fromisoformat(d) for d in econ["days"]]
    change = D.fromisoformat(econ["price_change"]["from"])
    assert chosen[1] == change and econ["price_change"]["before"] != econ["price_change"]["after"]
    got = {}
    for d in chosen:
        df = queries.economics.margin(demo_db.analytics, start=d, end=d, tz="UTC", costs=costs_file)
        got.update({(r["day"], r["model"], r["provider"]): r for r in df.to_dict("records")})
    assert len(econ["margin"]) >= 3 * 6
    for m in econ["margin"]:
        r = got[(D.fromisoformat(m["day"]), m["model"], m["provider"])]
        assert (r["jobs"], r["failed"], r["credits"]) == (m["jobs"], m["failed"], m["credits"]), m
        assert r["price_per_credit"] == pytest.approx(m["price_per_credit"], rel=1e-12)
        assert r["revenue"] == pytest.approx(m["revenue"], abs=1e-9)
        assert r["provider_cost"] == pytest.approx(m["provider_cost"], abs=1e-9)
        assert r["gross_margin"] == pytest.approx(m["gross_margin"], abs=1e-9)
        assert r["margin_per_generation"] == pytest.approx(m["gross_margin"] / m["jobs"], abs=1e-9)
        assert pd.isna(r["cost_note"])
    assert len(got) == len(econ["margin"])
    # the price change keeps history: gen3-turbo's completed jobs cost 0.20 before the change day, 0.28 on it
    turbo = {m["day"]: m for m in econ["margin"] if m["model"] == "gen3-turbo"}
    before, on = turbo[chosen[0].isoformat()], turbo[chosen[1].isoformat()]
    assert before["provider_cost"] == pytest.approx(0.20 * (before["jobs"] - before["failed"]))
    assert on["provider_cost"] == pytest.approx(0.28 * (on["jobs"] - on["failed"]))
    # the loss-maker loses money on every chosen day
    loser = econ["loss_maker"]["model"]
    assert all(m["gross_margin"] < 0 for m in econ["margin"] if m["model"] == loser)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_margin_over_30_days_equals_the_independent_computation(demo_db, econ, costs_file, raw, tz):
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    end = anchor.astimezone(ZoneInfo(tz)).date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=29)
    change = D.fromisoformat(econ["price_change"]["from"])
    assert start < change <= end    # the window straddles the price change
    df = queries.economics.margin(demo_db.analytics, start=start, end=end, tz=tz, costs=costs_file)
    expected = expected_margin(raw, start, end, tz, change)
    got = {(r["day"], r["model"], r["provider"]): r for r in df.to_dict("records")}
    assert set(got) == set(expected)
    for key, e in expected.items():
        r = got[key]
        assert (r["jobs"], r["failed"], r["credits"]) == (e["jobs"], e["failed"], e["credits"]), key
        assert r["revenue"] == pytest.approx(float(e["revenue"]), abs=1e-9), key
        assert r["provider_cost"] == pytest.approx(float(e["cost"]), abs=1e-9), key
        assert r["gross_margin"] == pytest.approx(float(e["margin"]), abs=1e-9), key


def test_without_a_costs_file_the_margin_says_not_configured(demo_db, econ):
    d = D.fromisoformat(econ["days"][-1])
    df = queries.economics.margin(demo_db.analytics, start=d, end=d, tz="UTC")
    assert len(df) > 0 and (df["revenue"] > 0).all()
    assert df["provider_cost"].isna().all() and df["gross_margin"].isna().all()
    assert set(df["cost_note"]) == {"provider costs not configured"}


def test_a_model_the_file_does_not_price_has_no_cost_not_zero(demo_db, econ, tmp_path):
    path = tmp_path / "one.toml"
    path.write_text('[[cost]]\nmodel = "pika-2.2"\nprovider = "pika"\nper_generation = 0.08\n', encoding="utf-8")
    d = D.fromisoformat(econ["days"][-1])
    df = queries.economics.margin(demo_db.analytics, start=d, end=d, tz="UTC", costs=path).set_index("model")
    assert pd.isna(df.loc["pika-2.2", "cost_note"]) and df.loc["pika-2.2", "provider_cost"] > 0
    others = df.drop(index="pika-2.2")
    assert set(others["cost_note"]) == {"no price for this model"} and others["gross_margin"].isna().all()


# -- the shipped check -----------------------------------------------------------------

def test_negative_margin_check_names_the_loss_maker_with_volume_and_loss(demo_db, econ, costs_file, raw):
    from queries import checkfile

    check = next(c for c in checkfile.shipped() if c.name == "negative_model_margin")
    total, rows = check.query.count_and_head(demo_db.analytics, 10, costs=str(costs_file))
    # the independent figure: the 7 days ending at the newest finished job, one sold price per credit
    jobs = raw["video_jobs"][raw["video_jobs"]["status"].isin(["completed", "failed"])]
    hi = jobs["created_at"].max()
    lo = hi - pd.Timedelta(days=7)
    change = D.fromisoformat(econ["price_change"]["from"])
    p = canonical_purchases(raw["purchases"])
    p = p[(p["environment"] == "Production") & (p["currency"] == "USD") & (p["purchased_at"] <= hi)
          & ~(p["refunded_at"].notna() & (p["refunded_at"] <= hi))]
    per_credit = sum(Decimal(str(x)) for x in p["price"]) / int(p["credits"].sum())
    ledger = raw["quota_log"]
    ledger = ledger[ledger["reason"].isin(["video_generation", "generation_refund"]) & ledger["job_id"].notna()]
    net = (-ledger.groupby("job_id")["change"].sum()).to_dict()
    names = dict(zip(raw["models"]["id"], raw["models"]["name"]))
    per: dict[tuple, list] = {}
    for j in jobs[(jobs["created_at"] > lo) & (jobs["created_at"] <= hi)].itertuples():
        model = names[j.model_id]
        price, billed = price_of(model, j.provider, j.created_at.to_pydatetime().astimezone(UTC).date(), change)
        acc = per.setdefault((model, j.provider), [0, 0, Decimal(0)])
        acc[0] += 1
        acc[1] += int(net.get(j.id, 0))
        acc[2] += price if (j.status == "completed" or billed) else 0
    losers = {k: v for k, v in per.items() if v[1] * per_credit - v[2] < 0}
    assert ("kling-2.0-master", "kling") in losers
    assert total == len(losers) == len(rows)
    for r in rows:
        jobs_n, credits, cost = losers[(r["model"], r["provider"])]
        assert (r["jobs"], r["credits"]) == (jobs_n, credits)
        assert float(r["margin"]) == pytest.approx(float(credits * per_credit - cost), abs=0.006)
        assert float(r["margin"]) < 0


def test_negative_margin_check_is_silent_without_a_costs_file(demo_db):
    from queries import checkfile

    check = next(c for c in checkfile.shipped() if c.name == "negative_model_margin")
    assert check.query.count_and_head(demo_db.analytics, 10) == (0, [])


# -- the CLI ---------------------------------------------------------------------------

def run(db, *args: str, **env: str):
    import os
    import subprocess
    import sys

    from support.clock import clock_env

    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
               "DATABASE_URL": db.url, "PYTHONWARNINGS": "ignore", "REPORT_TZ": "UTC",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **clock_env(), **env}
    return subprocess.run([sys.executable, "-m", "ops", "query", *args], capture_output=True, text=True,
                          env=environ, timeout=120)


def test_cli_lists_the_queries_and_prints_margins_or_says_not_configured(demo_db, econ, costs_file, tmp_path):
    import io

    listed = run(demo_db, "--list")
    assert listed.returncode == 0, listed.stderr
    assert "economics.margin" in listed.stdout and "economics.models" in listed.stdout

    d = econ["days"][-1]
    args = ("economics.margin", "-p", f"start={d}", "-p", f"end={d}", "-f", "csv")
    with_file = run(demo_db, *args, OPSBENCH_PROVIDER_COSTS=str(costs_file))
    assert with_file.returncode == 0, with_file.stderr
    got = pd.read_csv(io.StringIO(with_file.stdout)).set_index("model")
    for m in (m for m in econ["margin"] if m["day"] == d):
        assert float(got.loc[m["model"], "gross_margin"]) == pytest.approx(m["gross_margin"], abs=1e-6)

    without = run(demo_db, *args)
    assert without.returncode == 0, without.stderr
    assert pd.read_csv(io.StringIO(without.stdout))["gross_margin"].isna().all()
    assert "provider costs not configured (OPSBENCH_PROVIDER_COSTS)" in without.stderr

    typo = tmp_path / "typo.toml"
    typo.write_text(econ["costs_toml"].replace('model = "ray2"', 'model = "ray-2"'), encoding="utf-8")
    proc = run(demo_db, *args, OPSBENCH_PROVIDER_COSTS=str(typo))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    at = econ["costs_toml"].splitlines().index('model = "ray2"')   # its [[cost]] is the line before
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"OPSBENCH_PROVIDER_COSTS: typo.toml line {at}: unknown model 'ray-2' of provider 'luma'" in lines[0]


# -- credits as a liability, breakage ------------------------------------------------------

def expected_liability(raw: dict, start: dt.date, end: dt.date, tz: str) -> dict:
    """day -> (holders, outstanding purchased credits, liability): each buyer's min(balance, purchased net of
    refunds) at the day's end, free credits spent first, valued at the day's sold price per credit."""
    zone = ZoneInfo(tz)
    q = raw["quota_log"]
    buyers = set(q.loc[q["reason"] == "iap_purchase", "user_id"])
    q = q[q["user_id"].isin(buyers)]
    p = canonical_purchases(raw["purchases"])
    p = p[(p["environment"] == "Production") & (p["currency"] == "USD")]
    out = {}
    for d in days(start, end):
        day_end = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), zone)
        upto = q[q["created_at"] < day_end]
        balance = upto.groupby("user_id")["change"].sum()
        paid = upto[upto["reason"].isin(["iap_purchase", "iap_refund"])].groupby("user_id")["change"].sum()
        held = pd.concat([balance, paid.reindex(balance.index, fill_value=0)], axis=1).min(axis=1)
        kept = p[(p["purchased_at"] < day_end) & ~(p["refunded_at"].notna() & (p["refunded_at"] < day_end))]
        per_credit = sum(Decimal(str(x)) for x in kept["price"]) / int(kept["credits"].sum())
        credits = int(held.clip(lower=0).sum())
        out[d] = (int((held > 0).sum()), credits, credits * per_credit)
    return out


def test_liability_equals_the_manifest(demo_db, econ):
    m = econ["liability"]
    d = D.fromisoformat(m["day"])
    r = queries.economics.liability(demo_db.analytics, start=d, end=d, tz="UTC").iloc[0]
    assert (r["day"], r["holders"], r["outstanding_credits"]) == (d, m["holders"], m["outstanding_credits"])
    assert r["price_per_credit"] == pytest.approx(m["price_per_credit"], rel=1e-12)
    assert r["liability"] == pytest.approx(m["liability"], abs=1e-6) and m["liability"] > 0


@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo"])
def test_liability_over_30_days_equals_the_independent_computation(demo_db, raw, tz):
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    end = anchor.astimezone(ZoneInfo(tz)).date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=29)
    df = queries.economics.liability(demo_db.analytics, start=start, end=end, tz=tz)
    expected = expected_liability(raw, start, end, tz)
    assert [r["day"] for r in df.to_dict("records")] == list(expected)
    for r in df.to_dict("records"):
        holders, credits, value = expected[r["day"]]
        assert (r["holders"], r["outstanding_credits"]) == (holders, credits), r["day"]
        assert r["liability"] == pytest.approx(float(value), abs=1e-6), r["day"]


def expected_breakage(raw: dict, start: dt.date, end: dt.date, tz: str, as_of: dt.datetime) -> dict:
    """cohort week -> {30: share, 60: ..., 90: ...} (None: a horizon not reached), replaying each buyer's ledger:
    free credits first, then purchased credits oldest first (FIFO), an App Store refund taking purchased ones."""
    zone = ZoneInfo(tz)
    q = raw["quota_log"].sort_values(["created_at", "id"])
    lo = dt.datetime.combine(start, dt.time(), zone)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    buys = q[(q["reason"] == "iap_purchase") & (q["change"] > 0) & (q["created_at"] >= lo) & (q["created_at"] < hi)]
    acc: dict = {}
    for uid, rows in q[q["user_id"].isin(set(buys["user_id"]))].groupby("user_id"):
        rows = list(rows.itertuples())
        before = 0
        for r in rows:
            if r.reason != "iap_purchase" or r.change <= 0:
                continue
            if lo <= r.created_at < hi:
                local = r.created_at.astimezone(zone).date()
                week = local - dt.timedelta(days=local.weekday())
                for n in (30, 60, 90):
                    t = r.created_at + pd.Timedelta(days=n)
                    upto = [x for x in rows if x.created_at <= t]
                    bal = sum(x.change for x in upto)
                    paid = sum(x.change for x in upto if x.reason in ("iap_purchase", "iap_refund"))
                    granted = sum(x.change for x in upto if x.reason == "iap_purchase")
                    unspent = min(r.change, max(0, before + r.change - (granted - max(min(bal, paid), 0))))
                    a = acc.setdefault((week, n), [0, 0, True])
                    a[0] += unspent
                    a[1] += r.change
                    a[2] = a[2] and t <= as_of
            before += r.change
    weeks = sorted({w for w, _ in acc})
    return {w: {n: (acc[(w, n)][0] / acc[(w, n)][1] if acc[(w, n)][2] else None) for n in (30, 60, 90)}
            for w in weeks}


def test_breakage_equals_the_manifest(demo_db, econ):
    m = econ["breakage"]
    week = D.fromisoformat(m["cohort_week"])
    df = queries.economics.breakage(demo_db.analytics, start=week, end=week + dt.timedelta(days=6), tz="UTC")
    assert len(df) == 1
    r = df.iloc[0]
    assert (r["cohort_week"], r["credits"]) == (week, m["credits"])
    for n in (30, 60, 90):
        assert r[f"unspent_{n}"] == pytest.approx(m[f"unspent_{n}"], abs=1e-12)
    assert 0 < m["unspent_90"] <= m["unspent_60"] <= m["unspent_30"] < 1


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_breakage_of_three_months_of_cohorts_equals_the_independent_computation(demo_db, raw, tz):
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    end = anchor.astimezone(ZoneInfo(tz)).date() - dt.timedelta(days=30)
    end -= dt.timedelta(days=end.weekday() + 1)            # a Sunday: whole weeks
    start = end - dt.timedelta(days=7 * 12 - 1)        # the oldest weeks have reached 90 days, the newest not
    as_of = raw["quota_log"]["created_at"].max()
    df = queries.economics.breakage(demo_db.analytics, start=start, end=end, tz=tz)
    expected = expected_breakage(raw, start, end, tz, as_of)
    assert [r["cohort_week"] for r in df.to_dict("records")] == list(expected)
    for r in df.to_dict("records"):
        for n in (30, 60, 90):
            e = expected[r["cohort_week"]][n]
            assert (pd.isna(r[f"unspent_{n}"]) and e is None) or r[f"unspent_{n}"] == pytest.approx(e, abs=1e-12), \
                (r["cohort_week"], n)
    assert any(expected[w][90] is not None for w in expected) and any(expected[w][90] is None for w in expected)


# -- cohort value --------------------------------------------------------------------------

COMMISSION = 'default = 0.15\n[[rate]]\nproduct = "credits_3000"\nrate = 0.30\n'   # as the test computes below


def expected_cohorts(raw: dict, start: dt.date, end: dt.date, tz: str, weeks: int, change: dt.date,
                     as_of: pd.Timestamp) -> dict:
    """(cohort week, week) -> (users, net/user, proceeds/user, cost/user), cumulative, weeks everyone lived."""
    zone = ZoneInfo(tz)
    u = raw["users"]
    u = u[~u["is_admin"]].copy()
    u["local"] = [t.astimezone(zone).date() for t in u["created_at"]]
    u = u[(u["local"] >= start) & (u["local"] <= end)]
    u["cohort"] = [d - dt.timedelta(days=d.weekday()) for d in u["local"]]
    signup = dict(zip(u["id"], u["created_at"]))
    cohort_of = dict(zip(u["id"], u["cohort"]))
    week_of = lambda uid, t: int((t - signup[uid]).total_seconds() // 604800)  # noqa: E731
    sums: dict = {}
    p = canonical_purchases(raw["purchases"])
    p = p[(p["environment"] == "Production") & (p["currency"] == "USD") & p["user_id"].isin(signup)
          & (p["purchased_at"] <= as_of)]
    for r in p.itertuples():
        rate = Decimal("0.30") if r.product_id == "credits_3000" else Decimal("0.15")
        price = Decimal(str(r.price))
        for t, sign in [(r.purchased_at, 1)] + ([(r.refunded_at, -1)] if pd.notna(r.refunded_at)
                                                 and r.refunded_at <= as_of else []):
            acc = sums.setdefault((cohort_of[r.user_id], week_of(r.user_id, t)), [Decimal(0)] * 3)
            acc[0] += sign * price
            acc[1] += sign * price * (1 - rate)
    names = dict(zip(raw["models"]["id"], raw["models"]["name"]))
    j = raw["video_jobs"]
    j = j[j["status"].isin(["completed", "failed"]) & j["user_id"].isin(signup) & (j["created_at"] <= as_of)]
    for r in j.itertuples():
        price, billed = price_of(names[r.model_id], r.provider, r.created_at.astimezone(UTC).date(), change)
        acc = sums.setdefault((cohort_of[r.user_id], week_of(r.user_id, r.created_at)), [Decimal(0)] * 3)
        acc[2] += price if (r.status == "completed" or billed) else 0
    out = {}
    for cohort, members in u.groupby("cohort"):
        n, last = len(members), members["created_at"].max()
        run = [Decimal(0)] * 3
        for w in range(weeks):
            if last + pd.Timedelta(days=7 * (w + 1)) > as_of:
                break
            run = [a + b for a, b in zip(run, sums.get((cohort, w), [Decimal(0)] * 3))]
            out[(cohort, w)] = (n, *[x / n for x in run])
    return out


@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo"])
def test_cohort_value_equals_the_independent_computation(demo_db, raw, econ, costs_file, tmp_path, tz):
    commission = tmp_path / "commission.toml"
    commission.write_text(COMMISSION, encoding="utf-8")
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    start = anchor.astimezone(ZoneInfo(tz)).date() - dt.timedelta(days=112)
    end = start + dt.timedelta(days=55)
    raw = {**raw, "users": read_table(demo_db.writer, "users")}
    as_of = raw["quota_log"]["created_at"].max()
    df = queries.economics.cohorts(demo_db.analytics, start=start, end=end, tz=tz, weeks=12, costs=costs_file,
                                   commission=commission)
    expected = expected_cohorts(raw, start, end, tz, 12, D.fromisoformat(econ["price_change"]["from"]), as_of)
    got = {(r["cohort_week"], r["week"]): r for r in df.to_dict("records")}
    assert set(got) == set(expected) and len(expected) > 40
    for key, (users, net, proceeds, cost) in expected.items():
        r = got[key]
        assert r["users"] == users, key
        assert r["net_per_user"] == pytest.approx(float(net), abs=1e-9), key
        assert r["proceeds_per_user"] == pytest.approx(float(proceeds), abs=1e-9), key
        assert r["cost_per_user"] == pytest.approx(float(cost), abs=1e-9), key
    for cohort in {c for c, _ in expected}:
        weeks = sorted(w for c, w in expected if c == cohort)
        paid_back = [w for w in weeks if expected[(cohort, w)][2] >= expected[(cohort, w)][3]]
        want = paid_back[0] if paid_back else None
        have = {got[(cohort, w)]["payback_week"] for w in weeks}
        assert have == {want} or (want is None and all(pd.isna(x) for x in have)), cohort


def test_cohort_value_without_files_leaves_proceeds_and_cost_blank(demo_db):
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    start = anchor.date() - dt.timedelta(days=60)
    df = queries.economics.cohorts(demo_db.analytics, start=start, end=start + dt.timedelta(days=13), tz="UTC")
    assert len(df) > 0 and (df["net_per_user"] > 0).any()
    assert df["proceeds_per_user"].isna().all() and df["cost_per_user"].isna().all()
    assert df["payback_week"].isna().all()


# -- the digest ------------------------------------------------------------------------

@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_the_digest_shows_the_margin_with_the_file_and_not_configured_without(demo_db, pg_home, econ, costs_file,
                                                                               raw, tz):
    from conftest import settings_for

    from ops.reports import figures as report
    from ops.reports import formatting as fmt
    from ops.reports import message

    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    day = anchor.astimezone(ZoneInfo(tz)).date() - dt.timedelta(days=1)
    change = D.fromisoformat(econ["price_change"]["from"])
    expected = expected_margin(raw, day - dt.timedelta(days=7), day, tz, change)
    per_day = {d: sum((e["margin"] for (dd, _, _), e in expected.items() if dd == d), Decimal(0))
               for d in days(day - dt.timedelta(days=7), day)}
    if tz == "UTC":   # the manifest's figure for yesterday, every model
        assert float(per_day[day]) == pytest.approx(sum(m["gross_margin"] for m in econ["margin"]
                                                        if m["day"] == day.isoformat()), abs=1e-9)

    def digest(**env):
        settings = settings_for(pg_home, demo_db.url, REPORT_TZ=tz, **env)
        return report.build(demo_db.analytics, settings, "daily", window=report.Window(day, day, ZoneInfo(tz)),
                            state=demo_db.writer)

    rep = digest(OPSBENCH_PROVIDER_COSTS=str(costs_file))
    fig = rep.figures["gross_margin"]
    assert fig.value == pytest.approx(float(per_day[day]), abs=1e-6)
    prior = [float(per_day[day - dt.timedelta(days=i)]) for i in range(1, 8)]
    assert fig.base["avg7"] == pytest.approx(sum(prior) / 7, abs=1e-6)
    text = message.telegram_message(rep)
    row = next(line for line in text.splitlines() if line.startswith("margin "))
    mark = message.BETTER if fig.value > fig.base["avg7"] else message.WORSE
    assert fmt.money(fig.value) in row and mark in row, row
    assert "provider costs from provider-costs.toml" in text

    bare = digest()
    assert bare.figures["gross_margin"].value is None
    text = message.telegram_message(bare)
    assert "margin: provider costs not configured" in text
    assert not any(line.startswith("margin ") for line in text.splitlines())


# -- the notebook ----------------------------------------------------------------------

def _values(arr) -> list:
    """Plotly JSON arrays may be plain lists or base64 typed arrays {'dtype', 'bdata'}."""
    import base64

    import numpy as np

    if isinstance(arr, dict) and "bdata" in arr:
        a = np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
        return a.reshape(arr["shape"]).tolist() if "shape" in arr else a.tolist()
    return list(arr)


def test_the_economics_notebook_puts_the_loss_maker_first_with_the_right_margins(demo_db, pg_home, econ, costs_file,
                                                                                raw):
    from ops.notebook import PLOTLY_MIMETYPE
    from ops.workbench import notebooks as render

    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    end = anchor.date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=13)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"DATABASE_URL": demo_db.url, "OPSBENCH_STATE_URL": demo_db.url, "OPSBENCH_HOME": str(pg_home),
                     "REPORT_TZ": "UTC", "OPSBENCH_PROVIDER_COSTS": str(costs_file)}.items():
            mp.setenv(k, v)
        nb = render.execute(render.NOTEBOOKS_DIR / "economics.ipynb", {"end": end.isoformat(), "days": 14, "tz": "UTC"},
                            timeout=240, ignore_unknown=True, plotlyjs_src=render.PLOTLYJS_FILE)
    figs = [out["data"][PLOTLY_MIMETYPE] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if PLOTLY_MIMETYPE in out.get("data", {})]
    bars = next(f for f in figs if str(f["layout"]["title"]["text"]).startswith("Gross margin per model"))
    got = {}
    for trace in bars["data"]:
        got.update(zip(_values(trace["y"]), _values(trace["x"])))
    expected = expected_margin(raw, start, end, "UTC", D.fromisoformat(econ["price_change"]["from"]))
    per_model: dict[str, Decimal] = {}
    for (_, model, _), e in expected.items():
        per_model[model] = per_model.get(model, Decimal(0)) + e["margin"]
    assert set(got) == set(per_model)
    for model, value in per_model.items():
        assert got[model] == pytest.approx(float(value), abs=1e-6), model
    order = _values(bars["layout"]["yaxis"]["categoryarray"])[::-1]          # the table's order: loss-makers first
    assert order[0] == econ["loss_maker"]["model"] == min(per_model, key=per_model.get)
    text = "".join(out.get("data", {}).get("text/markdown", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []))
    assert "**Losing money:** kling-2.0-master (kling)" in text
    assert len(figs) == 5   # currencies, liability, breakage, margin, cohorts


def test_the_weekly_report_has_an_economics_section(demo_db, pg_home, econ, costs_file, raw):
    from conftest import settings_for

    from ops.reports import figures as report
    from ops.reports import formatting as fmt
    from ops.reports import message

    tz = "UTC"
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    end = anchor.date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=6)
    window = report.Window(start, end, ZoneInfo(tz))

    def weekly(**env):
        settings = settings_for(pg_home, demo_db.url, REPORT_TZ=tz, **env)
        return report.build(demo_db.analytics, settings, "weekly", window=window, state=demo_db.writer)

    rep = weekly(OPSBENCH_PROVIDER_COSTS=str(costs_file))
    holders, credits, value = expected_liability(raw, end, end, tz)[end]
    assert rep.economics.outstanding_credits == credits == econ["liability"]["outstanding_credits"]
    assert rep.economics.liability == pytest.approx(float(value), abs=1e-6)
    expected = expected_margin(raw, start, end, tz, D.fromisoformat(econ["price_change"]["from"]))
    per: dict[tuple, list] = {}
    for (_, model, provider), e in expected.items():
        acc = per.setdefault((model, provider), [0, Decimal(0)])
        acc[0] += e["jobs"]
        acc[1] += e["margin"]
    losers = sorted(((k, v) for k, v in per.items() if v[1] < 0), key=lambda kv: kv[1][1])
    assert [(m.model, m.provider, m.jobs) for m in rep.economics.losers] == [(*k, v[0]) for k, v in losers]
    assert losers and all(m.margin == pytest.approx(float(v[1]), abs=1e-6)
                          for m, (_, v) in zip(rep.economics.losers, losers))
    text = message.telegram_message(rep)
    assert "📒 <b>Economics</b>" in text
    assert f"losing money: kling-2.0-master (kling) {fmt.money(rep.economics.losers[0].margin, 'USD')}" in text
    assert f"unspent purchased credits: {credits:,}" in text

    bare = message.telegram_message(weekly())
    assert "models' margins: provider costs not configured (OPSBENCH_PROVIDER_COSTS)" in bare
    # the daily digest has no economics section
    daily = report.build(demo_db.analytics, settings_for(pg_home, demo_db.url, REPORT_TZ=tz), "daily",
                         window=report.Window(end, end, ZoneInfo(tz)), state=demo_db.writer)
    assert daily.economics is None and "📒" not in message.telegram_message(daily)
