"""Small statistics used by every part: percentiles and a least-squares slope."""

from __future__ import annotations

import numpy as np


def summary(values, unit_digits: int = 2) -> dict:
    """n, mean, p50/p95/p99, max of a list of numbers (empty -> n=0 only)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    r = lambda x: round(float(x), unit_digits)  # noqa: E731
    return {"n": int(v.size), "mean": r(v.mean()), "p50": r(p50), "p95": r(p95), "p99": r(p99), "max": r(v.max())}


def slope(xs, ys) -> float:
    """Least-squares slope dy/dx; 0 with fewer than two points."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    if x.size < 2 or np.ptp(x) == 0:
        return 0.0
    return float(np.polyfit(x, y, 1)[0])
