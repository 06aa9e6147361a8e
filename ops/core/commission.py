"""The store's commission and the tax share, from a small file the founder keeps (`OPSBENCH_COMMISSION`).

Never fetched: the founder knows their rate (15 % in the App Store Small
Business Program, 30 % otherwise) and where sales tax / VAT is inside the
price. The file is read when the settings load, so a bad one stops opsbench at
the door with one line naming the file, the line and the key.

TOML (`commission.toml`)::

    default = 0.15              # the store's share of the price net of tax
    [[rate]]                    # optional overrides: a product, a period, or both
    product = "credits_3000"    # optional: this product only
    from = 2026-03-01           # optional: first purchase day it applies to (inclusive)
    until = 2026-04-01          # optional: first day it no longer applies to (exclusive)
    rate = 0.30
    [tax]                       # optional: share of the price that is sales tax / VAT, per currency
    EUR = 0.20                  # (purchases carry no storefront, only a currency)

CSV (`commission.csv`), header `kind,key,from,until,rate`; kind is `default`
(key empty), `product` (key = product id, key empty = every product, for a
period) or `tax` (key = currency)::

    kind,key,from,until,rate
    default,,,,0.15
    product,credits_3000,2026-03-01,2026-04-01,0.30
    tax,EUR,,,0.20

What a purchase of price P keeps: tax = P x tax share of its currency;
commission = (P - tax) x rate; proceeds = P - tax - commission. The rate is the
most specific rule covering the purchase's local day (product and period >
product > period > default); rules of the same scope may not overlap. A refund
takes back the proceeds of the purchase it refunds, at that purchase's rate.
Amounts are not rounded per purchase (the store rounds; expect cents of
difference against its statements).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ops.core import founder_files

CODE = re.compile(r"^[A-Z]{3}$")
EXPECTED = ("expected TOML with default = 0.15, optional [[rate]] tables (product, from, until, rate) and a "
            "[tax] table (EUR = 0.20), or CSV with the header kind,key,from,until,rate")


@dataclass(frozen=True)
class Rule:
    rate: Decimal
    product: str | None = None
    start: dt.date | None = None       # inclusive
    until: dt.date | None = None       # exclusive
    where: str = ""                    # "line 7" (for errors)

    def covers(self, product: str, day: dt.date) -> bool:
        return ((self.product is None or self.product == product)
                and (self.start is None or self.start <= day) and (self.until is None or day < self.until))


@dataclass(frozen=True)
class Commission:
    default: Decimal
    rules: tuple[Rule, ...]
    tax: dict[str, Decimal]
    source: str                        # the file's name, for "commission from commission.toml"

    def rate(self, product: str, day: dt.date) -> Decimal:
        """The commission rate of a purchase of `product` on local day `day` (the most specific rule)."""
        match = [r for r in self.rules if r.covers(product, day)]
        match.sort(key=lambda r: (r.product is not None, r.start is not None or r.until is not None), reverse=True)
        return match[0].rate if match else self.default

    def proceeds(self, price: Decimal, currency: str, product: str, day: dt.date) -> Decimal:
        kept = Decimal(price) * (1 - self.tax.get(currency.upper(), Decimal(0)))
        return kept * (1 - self.rate(product, day))

    def describe(self) -> str:
        return f"commission from {self.source}"

    def to_json(self) -> str:
        """The parameter revenue.sql takes (`:commission`): rates as strings, exact."""
        return json.dumps({
            "default": str(self.default),
            "rules": [{"product": r.product, "from": r.start and r.start.isoformat(),
                       "until": r.until and r.until.isoformat(), "rate": str(r.rate)} for r in self.rules],
            "tax": {k: str(v) for k, v in self.tax.items()},
        }, sort_keys=True)


class _Fail(ValueError):
    pass


def _share(value: object, what: str, where: str, source: str) -> Decimal:
    share = founder_files.number(value)
    if share is None or not Decimal(0) <= share < 1:
        raise _Fail(f"{source} {where}: {what} must be a number in [0, 1), such as 0.15 for 15 %")
    return share


def _day(value: object, what: str, where: str, source: str) -> dt.date | None:
    return founder_files.day(value, f"{source} {where}: {what}", _Fail)


def _check_overlaps(rules: list[Rule], source: str) -> None:
    """Two rules of the same scope (the same product, or every product) may not cover the same day."""
    found = founder_files.dated_conflict(rules, lambda r: r.product)
    if found is None:
        return
    kind, a, b = found
    if kind == "reversed":
        raise _Fail(f"{source} {a.where}: 'from' ({a.start}) must be before 'until' ({a.until})")
    scope = f"product {a.product!r}" if a.product else "every product"
    raise _Fail(f"{source} {a.where}: its period overlaps the rule at {b.where} for {scope} "
                "(effective dates of one scope may not overlap)")


def _line_of(lines: list[str], pattern: str, start: int = 0) -> int:
    rx = re.compile(pattern)
    for i in range(start, len(lines)):
        if rx.match(lines[i].strip()):
            return i
    return start


def _from_toml(text: str, source: str) -> Commission:
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _Fail(f"{source}: not valid TOML ({str(e).split(' (')[0]}); {EXPECTED}") from None
    lines = text.splitlines()
    for key in data:
        if key not in ("default", "rate", "tax"):
            n = _line_of(lines, rf"^\[*\s*{re.escape(key)}\b")
            raise _Fail(f"{source} line {n + 1}: unknown key {key!r}; {EXPECTED}")
    if "default" not in data:
        raise _Fail(f"{source}: no default rate (default = 0.15); {EXPECTED}")
    n = _line_of(lines, r"^default\b") + 1
    default = _share(data["default"], "default", f"line {n}", source)
    tables = data.get("rate", [])
    if not isinstance(tables, list):
        raise _Fail(f"{source}: rate must be [[rate]] tables; {EXPECTED}")
    rules, at = [], 0
    for table in tables:
        at = _line_of(lines, r"^\[\[\s*rate\s*\]\]", at) + 1
        where = f"line {at}"
        for key in table:
            if key not in ("product", "from", "until", "rate"):
                n = _line_of(lines, rf"^{re.escape(key)}\b", at)
                raise _Fail(f"{source} line {n + 1}: unknown key {key!r} in [[rate]]; {EXPECTED}")
        if "rate" not in table:
            raise _Fail(f"{source} {where}: [[rate]] without rate; {EXPECTED}")
        n = _line_of(lines, r"^rate\b", at) + 1
        product = table.get("product")
        if product is not None and (not isinstance(product, str) or not product.strip()):
            raise _Fail(f"{source} {where}: product must be a product id such as \"credits_1000\"")
        rule = Rule(_share(table["rate"], "rate", f"line {n}", source), product and product.strip(),
                    _day(table.get("from"), "from", where, source), _day(table.get("until"), "until", where, source),
                    where)
        if rule.product is None and rule.start is None and rule.until is None:
            raise _Fail(f"{source} {where}: a [[rate]] needs a product, a period (from/until) or both "
                        "(the rate for everything is `default`)")
        rules.append(rule)
    tax: dict[str, Decimal] = {}
    raw_tax = data.get("tax", {})
    if not isinstance(raw_tax, dict):
        raise _Fail(f"{source}: tax must be a [tax] table of currency = share; {EXPECTED}")
    start = _line_of(lines, r"^\[\s*tax\s*\]")
    for cur, share in raw_tax.items():
        n = _line_of(lines, rf"^{re.escape(cur)}\b", start) + 1
        code = str(cur).strip().upper()
        if not CODE.match(code):
            raise _Fail(f"{source} line {n}: unknown key {cur!r} in [tax]: expected a currency code such as EUR")
        tax[code] = _share(share, f"tax share of {code}", f"line {n}", source)
    _check_overlaps(rules, source)
    return Commission(default, tuple(rules), tax, source)


def _from_csv(text: str, source: str) -> Commission:
    lines = text.splitlines()
    numbered = [(i + 1, row) for i, row in enumerate(csv.reader(lines)) if row and not row[0].startswith("#")]
    if not numbered or [c.strip().lower() for c in numbered[0][1]] != ["kind", "key", "from", "until", "rate"]:
        raise _Fail(f"{source} line 1: the header must be kind,key,from,until,rate; {EXPECTED}")
    default, rules, tax = None, [], {}
    for n, row in numbered[1:]:
        where = f"line {n}"
        if len(row) != 5:
            raise _Fail(f"{source} {where}: expected five values kind,key,from,until,rate")
        kind, key, start, until, rate = (c.strip() for c in row)
        if kind == "default":
            if default is not None:
                raise _Fail(f"{source} {where}: a second default rate")
            default = _share(rate, "rate", where, source)
        elif kind == "product":
            rule = Rule(_share(rate, "rate", where, source), key or None, _day(start, "from", where, source),
                        _day(until, "until", where, source), where)
            if rule.product is None and rule.start is None and rule.until is None:
                raise _Fail(f"{source} {where}: a product row needs a product id, a period or both")
            rules.append(rule)
        elif kind == "tax":
            code = key.upper()
            if not CODE.match(code):
                raise _Fail(f"{source} {where}: unknown key {key!r}: expected a currency code such as EUR")
            tax[code] = _share(rate, f"tax share of {code}", where, source)
        else:
            raise _Fail(f"{source} {where}: unknown kind {kind!r}: expected default, product or tax")
    if default is None:
        raise _Fail(f"{source}: no default row (default,,,,0.15); {EXPECTED}")
    _check_overlaps(rules, source)
    return Commission(default, tuple(rules), tax, source)


def load(path: Path) -> Commission:
    """Read and check a commission file. Raises ValueError: one line naming the file, line and key."""
    name = Path(path).name
    text, suffix = founder_files.read_text(path, EXPECTED, label=name)
    if suffix == ".csv":
        return _from_csv(text, name)
    return _from_toml(text, name)
