"""Conversion rates the founder keeps in a small file (`OPSBENCH_FX_RATES`), never fetched.

Amounts in different currencies are never added together unless the founder
says at what rate. The file is read when the settings load, so a bad one stops
opsbench at the door with one line naming the variable and what was expected.

TOML (`fx.toml`)::

    base = "USD"            # the currency every rate converts into
    as_of = 2026-11-30      # optional: the day the rates are from (shown in reports)
    [rates]                 # 1 unit of each currency is worth this many units of base
    EUR = 1.08
    TRY = 0.029

CSV (`fx.csv`), one row per currency, every row with the same base::

    currency,base,rate
    EUR,USD,1.08
    TRY,USD,0.029

`convert(rows, rates)` turns per-currency totals into one total in the base
currency, saying which currencies it converted at what rate and which it could
not (no rate): the same function for the digest, the weekly report, the HTML
report and the overview notebook.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from ops.core import founder_files

CODE = re.compile(r"^[A-Z]{3}$")
EXPECTED = ('expected a TOML file with base = "USD" and a [rates] table (EUR = 1.08: one EUR is worth '
            '1.08 USD), or a CSV file with the header currency,base,rate')


@dataclass(frozen=True)
class FxRates:
    base: str
    rates: dict[str, Decimal]          # currency -> units of base per unit
    source: str                        # the file's name, for "rates from fx.toml"
    as_of: dt.date | None = None

    def rate(self, currency: str) -> Decimal | None:
        cur = currency.upper()
        if cur == self.base:
            return Decimal(1)
        return self.rates.get(cur)

    def describe(self) -> str:
        """'rates from fx.toml as of 2026-11-30' (where the numbers come from, for a report's reader)."""
        when = f" as of {self.as_of.isoformat()}" if self.as_of else ""
        return f"rates from {self.source}{when}"


def _code(value: object, what: str) -> str:
    text = str(value).strip().upper() if value is not None else ""
    if not CODE.match(text):
        raise ValueError(f"{what} must be a three-letter currency code such as USD; {EXPECTED}")
    return text


def _rate(value: object, currency: str) -> Decimal:
    if isinstance(value, bool):
        value = None
    try:
        rate = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        rate = None
    if rate is None or not rate.is_finite() or rate <= 0 or not math.isfinite(float(rate)):
        raise ValueError(f"the rate of {currency} must be a positive number; {EXPECTED}")
    return rate


def _build(base: object, items: list[tuple[object, object]], source: str, as_of: object = None) -> FxRates:
    base_code = _code(base, "base")
    rates: dict[str, Decimal] = {}
    for cur, value in items:
        code = _code(cur, f"currency {str(cur)[:12]!r}")
        if code in rates:
            raise ValueError(f"{code} is given twice; {EXPECTED}")
        rate = _rate(value, code)
        if code == base_code:
            if rate != 1:
                raise ValueError(f"the base {code} must have rate 1 (or be left out); {EXPECTED}")
            continue
        rates[code] = rate
    if not rates:
        raise ValueError(f"no rates in the file; {EXPECTED}")
    if as_of is not None and not isinstance(as_of, dt.date):
        raise ValueError(f"as_of must be a date such as 2026-11-30; {EXPECTED}")
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    return FxRates(base_code, rates, source, as_of)


def load(path: Path) -> FxRates:
    """Read and check a rates file. Raises ValueError saying what was expected (never the file's contents)."""
    text, suffix = founder_files.read_text(path, EXPECTED)
    if suffix == ".csv":
        rows = list(csv.reader(line for line in text.splitlines() if line.strip() and not line.startswith("#")))
        if not rows or [c.strip().lower() for c in rows[0]] != ["currency", "base", "rate"]:
            raise ValueError(f"the first line must be currency,base,rate; {EXPECTED}")
        body = rows[1:]
        if any(len(r) != 3 for r in body):
            raise ValueError(f"every line needs three values currency,base,rate; {EXPECTED}")
        bases = {r[1].strip().upper() for r in body}
        if len(bases) > 1:
            raise ValueError(f"every row must convert into the same base, found {', '.join(sorted(bases))}; "
                             f"{EXPECTED}")
        return _build(next(iter(bases), None), [(r[0], r[2]) for r in body], Path(path).name)
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"not valid TOML ({str(e).split(' (')[0]}); {EXPECTED}") from None
    unknown = sorted(set(data) - {"base", "as_of", "rates"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; {EXPECTED}")
    if not isinstance(data.get("rates"), dict):
        raise ValueError(f"no [rates] table; {EXPECTED}")
    return _build(data.get("base"), list(data["rates"].items()), Path(path).name, data.get("as_of"))


# -- converting totals ----------------------------------------------------------------

CENT = Decimal("0.01")


def _money(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


@dataclass
class Converted:
    """Per-currency totals expressed in one base currency."""

    base: str
    amounts: dict[str, Decimal]                            # figure (gross, net, ...) -> total in base
    used: list[tuple[str, Decimal]] = field(default_factory=list)   # (currency, rate) converted, base excluded
    missing: list[str] = field(default_factory=list)       # currencies left out: no rate
    describe: str = ""                                     # where the rates come from

    def rates_text(self) -> str:
        """'EUR at 1.08, TRY at 0.029 USD' (each rate as the file gives it)."""
        return ", ".join(f"{cur} at {rate.normalize():f}" for cur, rate in self.used) + f" {self.base}"


def convert(rows: list[dict], rates: FxRates | None, figures: tuple[str, ...] = ("gross", "refunds", "net")
            ) -> Converted | None:
    """rows: one dict per currency with `currency` and the figures; None without rates or rows.

    Each currency's figure is multiplied by its rate and rounded to the cent,
    then the rounded amounts are added (so a reader can redo the sum from the
    lines shown). A currency without a rate is listed in `missing`, never guessed.
    """
    if rates is None or not rows:
        return None
    out = Converted(rates.base, {f: Decimal(0) for f in figures}, describe=rates.describe())
    for row in sorted(rows, key=lambda r: str(r["currency"]).upper()):
        cur = str(row["currency"]).upper()
        rate = rates.rate(cur)
        if rate is None:
            out.missing.append(cur)
            continue
        if cur != rates.base:
            out.used.append((cur, rate))
        for f in figures:
            out.amounts[f] += (_money(row.get(f)) * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return out
