"""One count of the open alerts, in one vocabulary, for every surface.

The demo, the daily digest, the HTML report, `opsbench status`, `opsbench alerts`
and Telegram `/status` all say how many alerts are open. They used to count
differently (every row, only critical, roots without info...), so one moment gave
four numbers. They all call `tally` now and print `Tally.headline()`:

    15 open (5 critical, 7 warning, 3 notes)

- a *fault* seen by two jobs counts once: the echo (the nightly reconciliation's
  negative-balance check) folds into its root (the metric probe's
  negative_balance) and is said in words: "also seen by reconciliation";
- info-level alerts (weekly reviews) are "notes": open, counted, never a page.

Rows are anything with `key` and `severity` (manager.firing rows, report lines, dicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# One fault seen by two jobs: the echo's rule -> (the root's rule, who else saw it, in a founder's words).
ECHO_OF: dict[str, tuple[str, str]] = {
    "reconcile_negative_balances": ("negative_balance", "reconciliation"),
}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 row', '2 rows', '1 note', '3 notes'."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def rule_of(key: str) -> str:
    return key.split("{", 1)[0]


def _get(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


def severity_of(row: Any) -> str:
    s = str(_get(row, "severity") or "")
    return s.split(".", 1)[1] if s.startswith("Severity.") else s


@dataclass
class Fault:
    """One open problem: the alert that stands for it and the echoes folded into it."""
    alert: Any
    echoes: list = field(default_factory=list)

    @property
    def severity(self) -> str:
        return severity_of(self.alert)

    def echo_words(self) -> str:
        """'also seen by reconciliation' (or '' when nothing else saw it)."""
        who = sorted({ECHO_OF.get(rule_of(_get(e, "key") or ""), ("", "another check"))[1] for e in self.echoes})
        return f"also seen by {' and '.join(who)}" if who else ""


@dataclass
class Tally:
    faults: list[Fault]          # critical and warning, most severe first, echoes folded in
    notes: list                  # info-level alerts

    @property
    def critical(self) -> int:
        return sum(1 for f in self.faults if f.severity == "critical")

    @property
    def warning(self) -> int:
        return sum(1 for f in self.faults if f.severity != "critical")

    @property
    def open(self) -> int:
        return len(self.faults) + len(self.notes)

    @property
    def echoes(self) -> int:
        return sum(len(f.echoes) for f in self.faults)

    def headline(self) -> str:
        """'15 open (5 critical, 7 warning, 3 notes)' or 'nothing open'."""
        if not self.open:
            return "nothing open"
        parts = [f"{self.critical} critical" if self.critical else "",
                 f"{self.warning} warning" if self.warning else "",
                 plural(len(self.notes), "note") if self.notes else ""]
        return f"{self.open} open (" + ", ".join(p for p in parts if p) + ")"

    def echo_sentence(self) -> str:
        """'1 of them also seen by reconciliation (counted once)' or ''."""
        seen = [f for f in self.faults if f.echoes]
        if not seen:
            return ""
        words = sorted({f.echo_words() for f in seen})
        return f"{len(seen)} of them {'; '.join(words)} (counted once)"


def tally(rows: list) -> Tally:
    """Fold echoes into their roots and split off the notes; the one count every surface prints."""
    groups: dict[str, list] = {}
    notes = []
    for a in rows:
        if severity_of(a) == "info":
            notes.append(a)
            continue
        key = str(_get(a, "key") or "")
        root = ECHO_OF.get(rule_of(key))
        groups.setdefault(root[0] if root else key, []).append(a)
    faults = []
    for members in groups.values():
        # the root stands for the fault; an echo only when it is more severe or alone
        members.sort(key=lambda a: (SEVERITY_RANK.get(severity_of(a), 9), rule_of(str(_get(a, "key"))) in ECHO_OF))
        faults.append(Fault(members[0], members[1:]))
    faults.sort(key=lambda f: SEVERITY_RANK.get(f.severity, 9))
    return Tally(faults, notes)
