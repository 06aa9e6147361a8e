"""What each generation costs the founder at the provider, from a small file they keep (`OPSBENCH_PROVIDER_COSTS`).

Never fetched: the founder's price list (their contract, their tier) is theirs.
The file is read when the settings load, so a bad one stops opsbench at the door
with one line naming the file, the line and the key. Model names can only be
compared with the backend's `models` table once there is a connection:
`unknown_models` does that (the CLI's `query` runs it before an economics query).

TOML (`provider-costs.toml`)::

    currency = "USD"            # what the prices are in (margins are computed in this currency)
    [[cost]]
    model = "gen3-turbo"        # models.name
    provider = "runway"         # video_jobs.provider
    per_generation = 0.12       # per job ... or
    # per_second = 0.05         # per second of output, with
    # seconds = 5               # the seconds one generation produces (jobs carry no duration)
    failed_billed = false       # does the provider bill a job that failed (default false)
    from = 2026-03-01           # optional: first UTC day it applies to (inclusive)
    until = 2026-04-01          # optional: first UTC day it no longer applies to (exclusive)

Effective dates are UTC days (the provider's invoice), so the cost of a job does
not depend on the zone a report cuts days in. Rows of one model and provider
may not overlap. A job is priced by the row covering its creation; a job no row
covers has no cost (NULL, shown as "no price for this model"), never 0.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ops.core import founder_files

CODE = re.compile(r"^[A-Z]{3}$")
KEYS = ("model", "provider", "per_generation", "per_second", "seconds", "failed_billed", "from", "until")
EXPECTED = ("expected TOML with currency = \"USD\" and [[cost]] tables (model, provider, per_generation or "
            "per_second with seconds, failed_billed, from, until)")


@dataclass(frozen=True)
class Cost:
    model: str
    provider: str
    per_generation: Decimal           # per_second x seconds when the list is per second
    failed_billed: bool
    start: dt.date | None             # inclusive, UTC day
    until: dt.date | None             # exclusive
    line: int

    def covers(self, day: dt.date) -> bool:
        return (self.start is None or self.start <= day) and (self.until is None or day < self.until)


@dataclass(frozen=True)
class Costs:
    currency: str
    rows: tuple[Cost, ...]
    source: str

    def cost(self, model: str, provider: str, day: dt.date) -> Cost | None:
        return next((c for c in self.rows if c.model == model and c.provider == provider and c.covers(day)), None)

    def describe(self) -> str:
        return f"provider costs from {self.source}"

    def to_json(self) -> str:
        """The parameter economics.sql takes (`:costs`): prices as strings, exact."""
        return json.dumps({
            "currency": self.currency,
            "rows": [{"model": c.model, "provider": c.provider, "per_generation": str(c.per_generation),
                      "failed_billed": c.failed_billed, "from": c.start and c.start.isoformat(),
                      "until": c.until and c.until.isoformat()} for c in self.rows],
        }, sort_keys=True)


class _Fail(ValueError):
    pass


def _price(value: object, key: str, line: int, source: str) -> Decimal:
    price = founder_files.number(value)
    if price is None or price < 0:
        raise _Fail(f"{source} line {line}: {key} must be a price of zero or more, such as 0.12")
    return price


def _day(value: object, key: str, line: int, source: str) -> dt.date | None:
    return founder_files.day(value, f"{source} line {line}: {key}", _Fail)


def _key_line(lines: list[str], key: str, start: int) -> int:
    """1-based line of `key = ...` in the table starting at 0-based line `start`."""
    rx = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start + 1, len(lines)):
        if lines[i].strip().startswith("["):
            break
        if rx.match(lines[i]):
            return i + 1
    return start + 1


def _check_overlaps(rows: list[Cost], source: str) -> None:
    found = founder_files.dated_conflict(rows, lambda c: (c.model, c.provider))
    if found is None:
        return
    kind, a, b = found
    if kind == "reversed":
        raise _Fail(f"{source} line {a.line}: 'from' ({a.start}) must be before 'until' ({a.until})")
    raise _Fail(f"{source} line {a.line}: model {a.model!r} of {a.provider!r} overlaps the row at line "
                f"{b.line} (effective dates of one model may not overlap)")


def _from_toml(text: str, source: str) -> Costs:
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _Fail(f"{source}: not valid TOML ({str(e).split(' (')[0]}); {EXPECTED}") from None
    lines = text.splitlines()
    for key in data:
        if key not in ("currency", "cost"):
            n = next((i + 1 for i, s in enumerate(lines) if re.match(rf"^\[*\s*{re.escape(key)}\b", s.strip())), 1)
            raise _Fail(f"{source} line {n}: unknown key {key!r}; {EXPECTED}")
    currency = str(data.get("currency", "USD")).strip().upper()
    if not CODE.match(currency):
        n = next((i + 1 for i, s in enumerate(lines) if s.strip().startswith("currency")), 1)
        raise _Fail(f"{source} line {n}: currency must be a currency code such as USD")
    tables = data.get("cost", [])
    if not isinstance(tables, list) or not tables:
        raise _Fail(f"{source}: no [[cost]] tables; {EXPECTED}")
    starts = [i for i, s in enumerate(lines) if re.match(r"^\[\[\s*cost\s*\]\]", s.strip())]
    rows = []
    for table, at in zip(tables, starts):
        for key in table:
            if key not in KEYS:
                raise _Fail(f"{source} line {_key_line(lines, key, at)}: unknown key {key!r} in [[cost]]; {EXPECTED}")
        for key in ("model", "provider"):
            if not isinstance(table.get(key), str) or not table[key].strip():
                raise _Fail(f"{source} line {at + 1}: [[cost]] needs {key} = \"...\" (models.name, the job's provider)")
        if ("per_generation" in table) == ("per_second" in table):
            raise _Fail(f"{source} line {at + 1}: give per_generation or per_second (with seconds), one of them")
        if "per_second" in table:
            if "seconds" not in table:
                raise _Fail(f"{source} line {_key_line(lines, 'per_second', at)}: per_second needs seconds "
                            "(the seconds of output one generation produces)")
            price = (_price(table["per_second"], "per_second", _key_line(lines, "per_second", at), source)
                     * _price(table["seconds"], "seconds", _key_line(lines, "seconds", at), source))
        else:
            price = _price(table["per_generation"], "per_generation", _key_line(lines, "per_generation", at), source)
        billed = table.get("failed_billed", False)
        if not isinstance(billed, bool):
            raise _Fail(f"{source} line {_key_line(lines, 'failed_billed', at)}: failed_billed must be true or false")
        rows.append(Cost(table["model"].strip(), table["provider"].strip(), price, billed,
                         _day(table.get("from"), "from", _key_line(lines, "from", at), source),
                         _day(table.get("until"), "until", _key_line(lines, "until", at), source), at + 1))
    _check_overlaps(rows, source)
    return Costs(currency, tuple(rows), source)


def load(path: Path) -> Costs:
    """Read and check a provider costs file. Raises ValueError: one line naming the file, line and key."""
    name = Path(path).name
    text, _ = founder_files.read_text(path, EXPECTED, label=name)
    return _from_toml(text, name)


def unknown_models(costs: Costs, known: set[tuple[str, str]]) -> str | None:
    """One line naming the file, line and model for the first row whose (model, provider) the backend does not
    know (a typo would otherwise leave that model without a cost), or None."""
    for c in costs.rows:
        if (c.model, c.provider) not in known:
            names = ", ".join(sorted(f"{m} ({p})" for m, p in known)) or "none"
            return (f"{costs.source} line {c.line}: unknown model {c.model!r} of provider {c.provider!r} "
                    f"(the backend's models: {names})")
    return None
