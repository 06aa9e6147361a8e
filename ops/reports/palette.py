"""One colour per provider, per model and per figure, for every chart: the notebooks' and the report's.

A provider keeps its colour in every chart (runway is always blue); each of its
models is a shade of it, so a model chart still reads by provider. A name not
listed here gets a colour from its own name (a hash, not its position in one
chart), so it too is the same everywhere.
"""

from __future__ import annotations

import hashlib

PROVIDERS = {"runway": "#1f77b4", "luma": "#ff7f0e", "kling": "#2ca02c", "pika": "#9467bd"}
MODELS = {
    "gen3-turbo": "#1f77b4", "gen3-alpha": "#6baed6",
    "dream-machine": "#ff7f0e", "ray2": "#fdae6b",
    "kling-1.6": "#2ca02c", "kling-2.0-master": "#98df8a",
    "pika-2.2": "#9467bd", "pika-turbo": "#c5b0d5",
}
# figures drawn in more than one place (report charts and notebooks)
FIGURES = {
    "gross": "#9ecae1", "refunds": "#d62728", "net": "#08519c",
    "dau": "#31a354", "wau": "#74c476", "mau": "#a1d99b", "new": "#bae4b3", "returning": "#006d2c",
    "signups": "#fd8d3c", "paying_users": "#756bb1", "arppu": "#e6550d",
    "error_rate": "#de2d26", "band": "rgba(222,45,38,0.18)", "p50": "#6baed6", "p95": "#08519c",
    "window": "rgba(255,200,0,0.18)", "target": "#636363", "pass": "#2ca02c", "fail": "#d62728",
}
STATUS = {"ok": "#2ca02c", "skipped": "#bdbdbd", "failed": "#d62728", "timeout": "#ff7f0e"}
SEVERITY = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
_SPARE = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
          "#7b4173")


def _spare(name: str) -> str:
    digest = hashlib.md5(str(name).encode("utf-8")).digest()
    return _SPARE[digest[0] % len(_SPARE)]


def provider(name: str) -> str:
    return PROVIDERS.get(str(name).lower(), None) or _spare(name)


def model(name: str) -> str:
    return MODELS.get(str(name).lower(), None) or _spare(name)


def providers(names) -> dict[str, str]:
    """{name: colour} for plotly's color_discrete_map."""
    return {n: provider(n) for n in names}


def models(names) -> dict[str, str]:
    return {n: model(n) for n in names}
