"""Percentiles and the figures every timing is reported as: median, 99th percentile, ratio."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile (the method numpy calls 'linear'); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def timing(seconds: Sequence[float]) -> dict:
    """p50/p99/max in milliseconds and the sample count."""
    return {
        "n": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds)) if seconds else None,
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return round(value / baseline, 3)


def compare(measured: dict, baseline: dict) -> dict:
    """Ratios of p50 and p99 against the baseline's (above 1: slower than the baseline)."""
    return {
        "p50_ratio": ratio(measured.get("p50_ms"), baseline.get("p50_ms")),
        "p99_ratio": ratio(measured.get("p99_ms"), baseline.get("p99_ms")),
    }


def target(
    name: str,
    figure,
    unit: str,
    goal: str,
    met: bool,
    *,
    baseline=None,
    ratio_value=None,
    note: str | None = None,
) -> dict:
    """One line of the results table: a figure, its baseline and ratio, the goal, met or not."""
    return {
        "target": name,
        "figure": figure,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio_value,
        "goal": goal,
        "met": bool(met),
        "note": note,
    }
