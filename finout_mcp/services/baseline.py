"""Robust daily baselines: what a cost series normally costs on a given day.

Used by anomaly detection (``services/anomalies.py``) and forecasting (``services/forecast.py``).
Costs move by ratios (a service grows by a percentage; a weekend costs a share of a weekday), so
the model works on log cost::

    log(cost + offset) = level + slope * day + weekday_effect[weekday] + noise

and every estimate is a median, so a spike — even one lasting several days — barely moves it:

* :func:`weekday_profile`: each weekday's median departure from a centred 7-day median;
* :func:`resistant_line`: Tukey's resistant line (slope through the medians of the outer thirds);
* :func:`robust_scale`: 1.4826 x the median absolute deviation (the standard deviation for normal
  noise, unmoved by a few outliers).

Pure Python: a series is at most a few hundred days, and these take well under a millisecond each
(see BENCHMARKS.md for why no numeric library is imported).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from statistics import median

MAD_TO_SIGMA = 1.4826
MIN_PROFILE_DAYS = 14  # fewer days than two weeks: no weekday effect is estimated


def log_offset(values: Sequence[float]) -> float:
    """What is added before taking logs: 1% of the median cost (at least a cent), so zero days work."""
    positive = [v for v in values if v > 0]
    return max(0.01 * median(positive), 0.01) if positive else 0.01


def to_log(values: Sequence[float], offset: float) -> list[float]:
    return [math.log(max(v, 0.0) + offset) for v in values]


def from_log(value: float, offset: float) -> float:
    return max(math.exp(value) - offset, 0.0)


def weekdays(first_day: date, n: int) -> list[int]:
    start = first_day.weekday()
    return [(start + i) % 7 for i in range(n)]


def weekday_profile(logs: Sequence[float], days: Sequence[int]) -> list[float]:
    """Seven additive weekday effects (Monday first) on the log scale, averaging zero.

    Each day is compared with the median of the 7 days centred on it (which hold every weekday
    once); a weekday's effect is the median of its comparisons.
    """
    n = len(logs)
    if n < MIN_PROFILE_DAYS:
        return [0.0] * 7
    by_day: list[list[float]] = [[] for _ in range(7)]
    for i in range(3, n - 3):
        by_day[days[i]].append(logs[i] - median(logs[i - 3 : i + 4]))
    effects = [median(d) if d else 0.0 for d in by_day]
    mean = sum(effects) / 7
    return [e - mean for e in effects]


def resistant_line(ys: Sequence[float]) -> tuple[float, float]:
    """(intercept at x=0, slope per step) of Tukey's resistant line through ys at x = 0, 1, 2, ...

    The slope joins the medians of the first and last thirds; the intercept is the median of what
    the slope leaves. A third of the points can be wild without moving it much.
    """
    n = len(ys)
    if n == 0:
        return 0.0, 0.0
    if n < 6:
        return median(ys), 0.0
    k = n // 3
    left_x, right_x = (k - 1) / 2, n - 1 - (k - 1) / 2
    slope = (median(ys[n - k :]) - median(ys[:k])) / (right_x - left_x)
    intercept = median([y - slope * x for x, y in enumerate(ys)])
    return intercept, slope


def robust_scale(residuals: Sequence[float]) -> float:
    """1.4826 x the median absolute deviation from the median."""
    if not residuals:
        return 0.0
    mid = median(residuals)
    return MAD_TO_SIGMA * median([abs(r - mid) for r in residuals])


def day_range(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]
