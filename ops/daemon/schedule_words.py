"""A job's schedule in plain words, for `opsbench jobs`, the doctor and the digest:
"every 5 minutes", "at 09:00 on Mon-Fri", "every day at 03:30"."""

from __future__ import annotations

import re

from ops.daemon.cron import crontab_dow_to_aps


def plural(n: float, unit: str) -> str:
    n_text = f"{n:g}"
    return f"every {unit}" if n == 1 else f"every {n_text} {unit}s"


def interval_words(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return plural(seconds / size, unit)
    return plural(seconds, "second")


def cron_words(expr: str) -> str:
    minute, hour, day, month, dow = expr.split()
    simple = re.compile(r"^\d+$")
    if simple.match(minute) and simple.match(hour):
        when = f"at {int(hour):02d}:{int(minute):02d}"
        if day == "*" and month == "*":
            if dow == "*":
                return f"every day {when}"
            return f"{when} on {dow_words(dow)}"
        if simple.match(day) and month == "*" and dow == "*":
            return f"{when} on day {int(day)} of every month"
    if simple.match(minute) and hour == "*" and day == month == dow == "*":
        return f"every hour at :{int(minute):02d}"
    if minute.startswith("*/") and hour == day == month == dow == "*":
        return plural(int(minute[2:]), "minute")
    if simple.match(minute) and hour.startswith("*/") and day == month == dow == "*":
        return f"{plural(int(hour[2:]), 'hour')} at :{int(minute):02d}"
    return f"cron '{expr}'"


def dow_words(dow: str) -> str:
    try:
        names = crontab_dow_to_aps(dow).split(",")
    except ValueError:
        return dow
    order = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    idx = [order.index(n) for n in names]
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{names[0].title()}-{names[-1].title()}"
    return ", ".join(n.title() for n in names)
