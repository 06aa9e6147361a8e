"""Deterministic demo data with planted faults, and its manifest.

The generator itself is set-based SQL in `queries/internal/seed/*.sql` (generate_series,
hash-based randomness); this module only orders the steps, binds the
parameters and writes the manifest. Everything runs in one transaction on one
connection, so a failed seed leaves the database as it was. The backend tables'
keys, indexes and foreign keys are dropped for the load and rebuilt after it:
one sort per index instead of an index insertion and a key lookup per row.

The manifest records what was generated and, for every planted fault, the
exact count the reconciliation checks and the cleanup jobs must find. Tests
compare against it, never against the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import queries
from ops.core.clock import utc_now
from ops.core.errors import SeedError
from ops.core.settings import Settings

MANIFEST_FILE = "demo-manifest.json"
HISTORY_DAYS = 120        # days of history before the anchor's (partial) day
SIGNUP_BONUS = 30         # credits every new user gets
PAYER_SHARE = 0.15        # share of users who ever buy a credit pack
PROVIDER_COSTS_FILE = "demo-provider-costs.toml"

# What each demo model costs at its provider, USD per generation (or per second x seconds), and whether a
# failed job is billed. kling-2.0-master loses money (40 credits sell for about 1.40 USD); gen3-turbo's price
# rises PRICE_CHANGE_DAYS before the anchor's UTC day, so history before it keeps the old price.
DEMO_COSTS = (
    # model, provider, per_generation, per_second, seconds, failed_billed
    ("gen3-turbo", "runway", "0.20", None, None, False),
    ("gen3-alpha", "runway", "0.45", None, None, False),
    ("dream-machine", "luma", "0.22", None, None, True),
    ("ray2", "luma", None, "0.09", 5, True),
    ("kling-1.6", "kling", "0.10", None, None, True),
    ("kling-2.0-master", "kling", "1.60", None, None, True),
    ("pika-2.2", "pika", "0.08", None, None, False),
    ("pika-turbo", "pika", "0.18", None, None, False),
)
PRICE_CHANGE = ("gen3-turbo", "runway", "0.28")   # the new per-generation price
PRICE_CHANGE_DAYS = 20


@dataclass(frozen=True)
class Scale:
    users: int
    chunk_users: int      # users generated per batch: bounds every intermediate result
    drift: int            # planted fault counts
    duplicates: int
    unrefunded: int
    stuck: int
    inflight: int
    admin_actions: int


SCALES: dict[str, Scale] = {
    "small": Scale(users=10_000, chunk_users=10_000, drift=12, duplicates=3, unrefunded=5, stuck=6, inflight=4,
                   admin_actions=8),
    "medium": Scale(users=100_000, chunk_users=50_000, drift=25, duplicates=5, unrefunded=10, stuck=10, inflight=5,
                    admin_actions=20),
    "large": Scale(users=1_000_000, chunk_users=50_000, drift=50, duplicates=8, unrefunded=20, stuck=15, inflight=6,
                   admin_actions=40),
}

# Generator steps in order; every named statement of a file runs in file order.
_SETUP, _CHUNK, _AFTER, _FAULTS, _STATUS = "seed/setup", "seed/chunk", "seed/after", "seed/faults", "seed/status"
_MANIFEST = "seed/manifest"


def _libpq_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _engine(url: str) -> sa.Engine:
    from ops.data.db import sqlalchemy_url

    return sa.create_engine(sqlalchemy_url(url), poolclass=NullPool,
                            connect_args={"application_name": "opsbench-seed"})


# The statements that drop the backend tables' keys, indexes and foreign keys for the load and build them
# again after it (setup.sql, after.sql); seed_database(keys_during_load=True) leaves them out.
_DEFERRAL = frozenset({"defer_keys", "restore_keys_memory", "restore_keys"})


def _run_file(conn: sa.Connection, subject: str, values: dict[str, Any], skip: frozenset[str] = frozenset()) -> None:
    """Execute every named statement of `queries/<subject>.sql` in file order (but those in `skip`)."""
    for name, q in queries.load(subject).queries.items():
        if name not in skip:
            q.execute(conn, **{p.name: values[p.name] for p in q.params})


def _one(conn: sa.Connection, subject: str, name: str) -> dict[str, Any]:
    row = getattr(queries.load(subject), name).execute(conn).mappings().one()
    return {k: _jsonable(v) for k, v in row.items()}


def _all(conn: sa.Connection, subject: str, name: str) -> list[dict[str, Any]]:
    rows = getattr(queries.load(subject), name).execute(conn).mappings().all()
    return [{k: _jsonable(v) for k, v in r.items()} for r in rows]


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.timezone.utc).isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def _anchor(anchor: dt.datetime | None) -> dt.datetime:
    if anchor is None:
        anchor = utc_now()
    elif anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=dt.timezone.utc)
    return anchor.astimezone(dt.timezone.utc).replace(second=0, microsecond=0)


def scale_config(scale: str) -> Scale:
    try:
        return SCALES[scale]
    except KeyError:
        raise SeedError(f"unknown scale {scale!r}: expected one of {', '.join(SCALES)}") from None


def apply_schema(url: str) -> None:
    """Create the backend tables and indexes if missing (queries/schema.sql is idempotent)."""
    with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
        conn.execute(queries.script("schema.sql"))


def _has_data(conn: sa.Connection) -> bool:
    status = queries.load(_STATUS)
    if not status.has_schema.execute(conn).scalar_one():
        return False
    return bool(status.has_data.execute(conn).scalar_one())


def is_seeded(url: str) -> bool:
    """True when the backend tables exist and hold rows."""
    eng = _engine(url)
    try:
        with eng.connect() as conn:
            return _has_data(conn)
    finally:
        eng.dispose()


def seed_database(url: str, scale: str = "small", seed: int = 1, anchor: dt.datetime | None = None,
                  force: bool = False, keys_during_load: bool = False) -> dict:
    """Fill the database at `url` with demo data and planted faults; return the manifest.

    `anchor` is the generation "now" (default: now, UTC, whole minute). The same
    seed and anchor give identical rows; another seed gives other data. Refuses
    (SeedError) when the tables already hold rows, unless `force`.

    The backend tables' keys, indexes and foreign keys are dropped while the rows
    are loaded and built again before the faults are planted (same definitions,
    same transaction): `keys_during_load` keeps them in place instead, the slow
    way, which tests use as the reference that the fast one gives the same rows.
    """
    cfg = scale_config(scale)
    at = _anchor(anchor)
    started = time.monotonic()
    apply_schema(url)
    values: dict[str, Any] = {
        "seed": int(seed), "anchor": at, "users": cfg.users, "days": HISTORY_DAYS, "bonus": SIGNUP_BONUS,
        "payer_share": PAYER_SHARE, "drift": cfg.drift, "duplicates": cfg.duplicates, "unrefunded": cfg.unrefunded,
        "stuck": cfg.stuck, "inflight": cfg.inflight, "admin_actions": cfg.admin_actions,
    }
    eng = _engine(url)
    try:
        with eng.connect() as conn, conn.begin():
            if _has_data(conn):
                if not force:
                    raise SeedError("the database already holds data; use --force (force=True) to replace it")
                queries.load(_STATUS).truncate.execute(conn)
            skip = _DEFERRAL if keys_during_load else frozenset()
            _run_file(conn, _SETUP, values, skip)
            for lo in range(0, cfg.users, cfg.chunk_users):
                _run_file(conn, _CHUNK, {**values, "lo": lo, "hi": min(lo + cfg.chunk_users, cfg.users)})
            _run_file(conn, _AFTER, values, skip)
            _run_file(conn, _FAULTS, values)
            manifest = _manifest(conn, scale, cfg)
            manifest["economics"] = _economics(conn, at)
    finally:
        eng.dispose()
    manifest["seconds"] = round(time.monotonic() - started, 3)
    return manifest


def _manifest(conn: sa.Connection, scale: str, cfg: Scale) -> dict:
    m = queries.load(_MANIFEST)
    m.analyze.execute(conn)
    totals = _one(conn, _MANIFEST, "totals")
    planted = {r["kind"]: r for r in _all(conn, _MANIFEST, "faults")}
    missing_job_rows = _one(conn, _MANIFEST, "missing_job_ledger_rows")["n"]
    spike = _one(conn, _MANIFEST, "spike")
    unfinished = {r.pop("kind"): r for r in _all(conn, _MANIFEST, "unfinished")}
    retention = _one(conn, _MANIFEST, "retention")
    # at most one row: the App Store refund recorded only on a later copy of a transaction
    dup_refund = next(iter(_all(conn, _MANIFEST, "refund_on_duplicate")), None)
    incidents = [{"kind": r["kind"], "start": r["start_at"], "end": r["end_at"], **(r["detail"] or {})}
                 for r in _all(conn, _MANIFEST, "incidents")]

    def n(kind: str) -> int:
        return int(planted[kind]["n"]) if kind in planted else 0

    def ids(kind: str, what: str) -> list[str]:
        return list(planted.get(kind, {}).get(what) or [])

    faults = {
        "balance_drift": n("balance_drift"),
        "no_ledger_user": n("no_ledger_user"),
        "duplicate_transactions": n("duplicate_transaction"),
        "missing_credit": n("missing_credit"),
        "wrong_credit_amount": n("wrong_credit_amount"),
        "failed_without_refund": n("failed_without_refund"),
        "negative_balance": n("negative_balance"),
        "ledger_missing_jobs": int(missing_job_rows),
        "stuck_jobs": n("stuck_job"),
        "spike_extra_failures": int(spike["extra_failures"]),
        "old_rate_limit_rows": int(retention["rate_limit_older_than_7_days"]),
        "expired_idempotency_keys": int(retention["expired_idempotency_keys"]),
        "old_error_log_rows": int(retention["error_log_older_than_90_days"]),
        "credited_to_other_user": n("credited_other_user"),
        "partial_refund": n("partial_refund"),
        "double_refund": n("double_refund"),
        "completed_job_refunded": n("completed_refund"),
        "iap_missing_debit": n("iap_missing_debit"),
        "iap_wrong_debit": n("iap_wrong_debit"),
        "iap_debit_without_refund": n("iap_debit_without_refund"),
    }
    # Which check must report how many rows: several faults may feed one check.
    checks = {
        "balance_vs_ledger": faults["balance_drift"] + faults["no_ledger_user"],
        "negative_balances": faults["negative_balance"],
        "duplicate_transactions": faults["duplicate_transactions"],
        "purchase_credit_mismatch": faults["missing_credit"] + faults["wrong_credit_amount"],
        "failed_jobs_without_refund": faults["failed_without_refund"],
        "ledger_missing_jobs": faults["ledger_missing_jobs"],
        "purchase_credited_to_other_user": faults["credited_to_other_user"],
        "generation_refund_mismatch": faults["partial_refund"] + faults["double_refund"],
        "completed_job_refunded": faults["completed_job_refunded"],
        "iap_refund_mismatch": faults["iap_missing_debit"] + faults["iap_wrong_debit"]
                               + faults["iap_debit_without_refund"],
        # negative_model_margin is not here: it judges nothing without OPSBENCH_PROVIDER_COSTS (reconcile says
        # "not configured"); with the demo's costs file (economics.costs_toml) kling-2.0-master loses money
        # (tests/test_economics.py recomputes the week)
    }
    empty_unfinished = {"n": 0, "job_ids": [], "statuses": [], "min_age_minutes": None, "max_age_minutes": None}
    stuck = unfinished.get("stuck_job", empty_unfinished)
    inflight = unfinished.get("inflight_job", empty_unfinished)
    return {
        "scale": scale,
        "seed": totals.pop("seed"),
        "anchor": totals.pop("anchor"),
        "window": {"start": totals.pop("start_at"), "end": totals.pop("end_at")},
        **totals,
        "currency": "USD",
        "signup_bonus": SIGNUP_BONUS,
        "config": asdict(cfg),
        "faults": faults,
        "checks": checks,
        "spike": {"provider": spike["provider"], "local_date": spike["local_date"], "tz": "UTC",
                  "extra_failures": int(spike["extra_failures"]), "jobs": int(spike["jobs"]),
                  "failed": int(spike["failed"])},
        "stuck_jobs": {"count": int(stuck["n"]), "job_ids": stuck["job_ids"], "statuses": stuck["statuses"],
                       "min_age_minutes": stuck["min_age_minutes"], "max_age_minutes": stuck["max_age_minutes"]},
        "inflight_jobs": {"count": int(inflight["n"]), "job_ids": inflight["job_ids"],
                          "statuses": inflight["statuses"], "max_age_minutes": inflight["max_age_minutes"]},
        "retention": retention,
        # revenue must count this refund once, on the day of its refunded_at (noon UTC: the same local
        # day from UTC-11 to UTC+11), for `amount` in `currency`; None when no duplicate qualified
        "refund_on_duplicate": dup_refund,
        # the planted incidents with the moment each began: what a backtest must page for
        "incidents": incidents,
        "fault_ids": {
            "balance_drift_users": ids("balance_drift", "user_ids"),
            "no_ledger_user": ids("no_ledger_user", "user_ids"),
            "duplicate_transaction_ids": ids("duplicate_transaction", "transaction_ids"),
            "missing_credit_transaction_ids": ids("missing_credit", "transaction_ids"),
            "wrong_credit_amount_transaction_ids": ids("wrong_credit_amount", "transaction_ids"),
            "failed_without_refund_jobs": ids("failed_without_refund", "job_ids"),
            "negative_balance_users": ids("negative_balance", "user_ids"),
            "missing_job_ids": ids("ledger_missing_job", "job_ids"),
            "credited_other_user_transaction_ids": ids("credited_other_user", "transaction_ids"),
            "credited_other_user_payers": ids("credited_other_user", "user_ids"),
            "credited_other_user_recipients": ids("credited_other_user_recipient", "user_ids"),
            "partial_refund_jobs": ids("partial_refund", "job_ids"),
            "double_refund_jobs": ids("double_refund", "job_ids"),
            "completed_refund_jobs": ids("completed_refund", "job_ids"),
            "iap_missing_debit_transaction_ids": ids("iap_missing_debit", "transaction_ids"),
            "iap_wrong_debit_transaction_ids": ids("iap_wrong_debit", "transaction_ids"),
            "iap_debit_without_refund_transaction_ids": ids("iap_debit_without_refund", "transaction_ids"),
        },
    }


def demo_costs_toml(anchor: dt.datetime) -> str:
    """The demo's provider costs file (ops/core/costs.py), its price change dated from the anchor."""
    change = (anchor.astimezone(dt.timezone.utc).date() - dt.timedelta(days=PRICE_CHANGE_DAYS)).isoformat()
    out = ['# Provider costs of the demo data (written by `opsbench db seed`): USD per generation.',
           'currency = "USD"']
    for model, provider, per_gen, per_sec, secs, billed in DEMO_COSTS:
        price = f"per_generation = {per_gen}" if per_gen else f"per_second = {per_sec}\nseconds = {secs}"
        flag = "true" if billed else "false"
        if (model, provider) == PRICE_CHANGE[:2]:
            out += ["", "[[cost]]", f'model = "{model}"', f'provider = "{provider}"', price,
                    f"failed_billed = {flag}", f"until = {change}",
                    "", "[[cost]]", f'model = "{model}"', f'provider = "{provider}"',
                    f"per_generation = {PRICE_CHANGE[2]}", f"failed_billed = {flag}", f"from = {change}"]
        else:
            out += ["", "[[cost]]", f'model = "{model}"', f'provider = "{provider}"', price, f"failed_billed = {flag}"]
    return "\n".join(out) + "\n"


def _demo_price(model: str, provider: str, day: dt.date, anchor: dt.datetime) -> tuple[Decimal, bool]:
    """(USD per generation, failed billed) of a demo model on a UTC day, from DEMO_COSTS directly."""
    change = anchor.astimezone(dt.timezone.utc).date() - dt.timedelta(days=PRICE_CHANGE_DAYS)
    for m, p, per_gen, per_sec, secs, billed in DEMO_COSTS:
        if (m, p) == (model, provider):
            if (m, p) == PRICE_CHANGE[:2] and day >= change:
                return Decimal(PRICE_CHANGE[2]), billed
            return (Decimal(per_gen) if per_gen else Decimal(per_sec) * secs), billed
    raise KeyError((model, provider))


def _economics(conn: sa.Connection, anchor: dt.datetime) -> dict:
    """Exact margin figures for chosen UTC days (the day before gen3-turbo's price change, the change day,
    yesterday) and every model: from the generator's own price table (not the costs file, not
    queries/economics.sql), finished jobs and the ledger's net credits."""
    m = queries.load(_MANIFEST)
    utc_day = anchor.astimezone(dt.timezone.utc).date()
    change = utc_day - dt.timedelta(days=PRICE_CHANGE_DAYS)
    chosen = [change - dt.timedelta(days=1), change, utc_day - dt.timedelta(days=1)]
    sold = {r["day"]: (Decimal(r["price"]), Decimal(r["credits"]))
            for r in m.economics_sold.execute(conn, days=chosen).mappings()}
    rows: dict[tuple, dict] = {}
    for r in m.economics_jobs.execute(conn, days=chosen).mappings():
        key = (r["day"], r["model"], r["provider"])
        price, billed = _demo_price(r["model"], r["provider"], r["day"], anchor)
        row = rows.setdefault(key, {"jobs": 0, "failed": 0, "credits": 0, "cost": Decimal(0)})
        row["jobs"] += int(r["jobs"])
        row["failed"] += int(r["jobs"]) if r["status"] == "failed" else 0
        row["credits"] += int(r["credits"])
        if r["status"] == "completed" or billed:
            row["cost"] += price * int(r["jobs"])
    margin = []
    for (day, model, provider), row in sorted(rows.items()):
        price, credits = sold[day]
        per_credit = price / credits
        revenue = row["credits"] * per_credit
        margin.append({"day": day.isoformat(), "model": model, "provider": provider, "jobs": row["jobs"],
                       "failed": row["failed"], "credits": row["credits"], "price_per_credit": float(per_credit),
                       "revenue": float(revenue), "provider_cost": float(row["cost"]),
                       "gross_margin": float(revenue - row["cost"])})
    # liability at the end of yesterday (UTC) and breakage of one purchase week old enough for 90 days
    day = chosen[-1]
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    h = m.economics_held.execute(conn, at=day_end).mappings().one()
    held, holders = int(h["credits"]), int(h["holders"])
    price, credits = sold[day]
    week = utc_day - dt.timedelta(days=100)
    week -= dt.timedelta(days=week.weekday())
    lo = dt.datetime.combine(week, dt.time(), dt.timezone.utc)
    hi = lo + dt.timedelta(days=7)
    cohort = {30: [0, 0], 60: [0, 0], 90: [0, 0]}    # horizon -> [unspent, credits]
    by_user: dict[str, list] = {}
    for r in m.economics_cohort_ledger.execute(conn, lo=lo, hi=hi).mappings():
        by_user.setdefault(r["user_id"], []).append(r)
    for rows_of in by_user.values():
        granted_before = 0
        for r in rows_of:
            if r["reason"] != "iap_purchase" or r["change"] <= 0:
                continue
            if lo <= r["created_at"] < hi:
                for n, acc in cohort.items():
                    t = r["created_at"] + dt.timedelta(days=n)
                    upto = [x for x in rows_of if x["created_at"] <= t]
                    bal = sum(x["change"] for x in upto)
                    paid = sum(x["change"] for x in upto if x["reason"] in ("iap_purchase", "iap_refund"))
                    granted = sum(x["change"] for x in upto if x["reason"] == "iap_purchase")
                    gone = granted - max(min(bal, paid), 0)
                    acc[0] += min(r["change"], max(0, granted_before + r["change"] - gone))
                    acc[1] += r["change"]
            granted_before += r["change"]
    return {
        "liability": {"day": day.isoformat(), "tz": "UTC", "holders": holders, "outstanding_credits": held,
                      "price_per_credit": float(price / credits), "liability": float(held * price / credits)},
        "breakage": {"cohort_week": week.isoformat(), "tz": "UTC", "credits": cohort[30][1],
                     **{f"unspent_{n}": float(Decimal(u) / Decimal(c)) for n, (u, c) in cohort.items()}},
        "tz": "UTC", "currency": "USD",
        "costs_toml": demo_costs_toml(anchor),
        "price_change": {"model": PRICE_CHANGE[0], "provider": PRICE_CHANGE[1], "from": change.isoformat(),
                         "before": float(_demo_price(*PRICE_CHANGE[:2], change - dt.timedelta(days=1), anchor)[0]),
                         "after": float(Decimal(PRICE_CHANGE[2]))},
        "loss_maker": {"model": "kling-2.0-master", "provider": "kling"},
        "days": [d.isoformat() for d in chosen],
        "margin": margin,
    }


def manifest_path(settings: Settings) -> Path:
    return Path(settings.home) / MANIFEST_FILE


def load_manifest(settings: Settings) -> dict | None:
    """The manifest of the embedded demo database, or None when it was never seeded."""
    path = manifest_path(settings)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise SeedError(f"cannot read {path}: {e}") from None


def _write_manifest(settings: Settings, manifest: dict) -> None:
    path = manifest_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # readers never see half a file


def seed_embedded(settings: Settings, scale: str = "small", seed: int = 1, force: bool = False) -> dict:
    """Start the embedded server and seed its demo database unless it is already seeded.

    Returns the manifest; `reused` tells whether existing data was kept, and
    `seconds` is the time this call took.
    """
    from ops.data import embedded

    scale_config(scale)  # fail on a bad scale before starting anything
    started = time.monotonic()
    url = embedded.start(settings)
    if not force and is_seeded(url):
        stored = load_manifest(settings)
        if stored is None:
            raise SeedError("the demo database holds data but has no manifest "
                            f"({manifest_path(settings)}); run `opsbench db seed --force` to regenerate it")
        return {**stored, "reused": True, "seconds": round(time.monotonic() - started, 3)}
    manifest = seed_database(url, scale=scale, seed=seed, force=force)
    manifest["seconds"] = round(time.monotonic() - started, 3)
    _write_manifest(settings, manifest)
    # the demo's provider price list, for OPSBENCH_PROVIDER_COSTS (margins say "not configured" without it)
    (Path(settings.home) / PROVIDER_COSTS_FILE).write_text(manifest["economics"]["costs_toml"], encoding="utf-8")
    return {**manifest, "reused": False}


def last_complete_day(settings: Settings, zone: ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    """Yesterday in `zone`: the last whole day.

    On the embedded demo database the data stops at the moment it was
    generated, so the last whole day of the data is taken when that is
    earlier: a digest or notebook a month after `make demo` still shows a
    real day, not a month of empty charts.
    """
    now = now or utc_now()
    day = now.astimezone(zone).date() - dt.timedelta(days=1)
    if settings.uses_embedded:
        try:
            anchor = (load_manifest(settings) or {}).get("anchor")
        except ValueError:
            anchor = None
        if anchor:
            data_end = dt.datetime.fromisoformat(str(anchor)).astimezone(zone).date() - dt.timedelta(days=1)
            day = min(day, data_end)
    return day
