"""Rolling-origin backtest of forecast_costs on the sandbox's three years of history.

    python bench/forecast.py [--markdown] [--statsmodels]

For every demo view, the whole history the sandbox keeps (1,100 days before 2026-12-01) is fetched
through the client and the same 90-day-window path the tool uses. Then, from origins on the 1st
and the 15th of every month, the tool's method is run exactly as the tool would run it that day
(on the 450 days before the origin), for the view's Total and its top 5 series, and its monthly
totals are compared with what the sandbox actually charged:

  offset 0  the origin's own month (complete days before the origin are actual, the rest forecast)
  offset 1..3  the next months

Errors are absolute percentage errors of monthly totals (MAPE, median and 90th percentile), side
by side with the naive run rate (last 30 complete days' average x days left). The 80% intervals
are checked for coverage. ``--statsmodels`` adds Holt-Winters (statsmodels ExponentialSmoothing,
additive damped trend, weekly seasonality, on log cost) on the same origins, with its import time,
when statsmodels is installed (it is not a dependency; see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import anyio
import httpx

from finout_mcp.api.client import FinoutClient
from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.services import costs
from finout_mcp.services import forecast as fc
from finout_mcp.services.periods import DateSpan, add_months

TODAY = date(2026, 12, 1)
SANDBOX_HISTORY_DAYS = 1100
TOP_SERIES = 5
HORIZON = 3


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


async def fetch_all(sb: Sandbox) -> dict[str, fc.DailyHistory]:
    """Every view's Total and top series as daily histories, fetched through the client."""
    settings = Settings(demo=True)
    client = FinoutClient(settings, transport=httpx.ASGITransport(app=sb.app))
    span = DateSpan(TODAY - timedelta(days=SANDBOX_HISTORY_DAYS), TODAY - timedelta(days=1))
    out: dict[str, fc.DailyHistory] = {}
    try:
        for view in sb.account.views:
            series = await costs.fetch_costs(client, view.id, span, "unblendedCost")
            total, groups = costs.daily_table(series, span)
            days = [span.first + timedelta(days=i) for i in range(span.days)]
            out[f"{view.name} / Total"] = fc.DailyHistory(span.first, [total.get(d, 0.0) for d in days])
            top = sorted(groups, key=lambda n: -sum(groups[n].values()))[:TOP_SERIES]
            for name in top:
                out[f"{view.name} / {name}"] = fc.DailyHistory(
                    span.first, [groups[name].get(d, 0.0) for d in days]
                )
    finally:
        await client.aclose()
    return out


def origins(first_day: date) -> list[date]:
    earliest = first_day + timedelta(days=fc.FIT_DAYS)
    out = []
    d = date(earliest.year, earliest.month, 1)
    while d < TODAY:
        for day in (1, 15):
            o = d.replace(day=day)
            if earliest <= o < TODAY:
                out.append(o)
        d = add_months(d, 1)
    return out


def window(history: fc.DailyHistory, origin: date) -> fc.DailyHistory:
    """What the tool would have fetched on ``origin``: the HISTORY_DAYS before it."""
    first = max(history.first_day, origin - timedelta(days=fc.HISTORY_DAYS))
    return fc.DailyHistory(first, history.between(first, origin - timedelta(days=1)))


Forecaster = Callable[[fc.DailyHistory, date, Sequence[DateSpan]], list[float]]


def holt_winters() -> tuple[Forecaster, float]:
    t0 = time.perf_counter()
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    import_ms = (time.perf_counter() - t0) * 1000

    def run(history: fc.DailyHistory, as_of: date, months: Sequence[DateSpan]) -> list[float]:
        values = history.between(as_of - timedelta(days=fc.FIT_DAYS), as_of - timedelta(days=1))
        offset = max(0.01 * statistics.median([v for v in values if v > 0] or [1.0]), 0.01)
        y = np.log(np.asarray(values) + offset)
        model = ExponentialSmoothing(y, trend="add", damped_trend=True, seasonal="add", seasonal_periods=7)
        steps = (months[-1].last - as_of).days + 1
        path = np.exp(model.fit().forecast(steps)) - offset
        out = []
        for m in months:
            known = sum(history.between(m.first, min(m.last, as_of - timedelta(days=1))))
            lo = max((m.first - as_of).days, 0)
            out.append(known + float(path[lo : (m.last - as_of).days + 1].sum()))
        return out

    return run, import_ms


def pct(errors: list[float], q: float | None = None) -> float:
    xs = sorted(abs(e) * 100 for e in errors)
    if not xs:
        return math.nan
    if q is None:
        return sum(xs) / len(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--statsmodels", action="store_true", help="also run Holt-Winters (needs statsmodels)")
    args = parser.parse_args()

    sb = Sandbox(seed=7, today=TODAY)
    log("fetching three years of every view through the client ...")
    histories = anyio.run(fetch_all, sb)
    extra: tuple[Forecaster, float] | None = holt_winters() if args.statsmodels else None

    # errors[kind][offset] -> relative errors; kind: method, run_rate, hw; plus coverage counts
    errors: dict[str, list[list[float]]] = {
        k: [[] for _ in range(HORIZON + 1)] for k in ("method", "run_rate", "hw")
    }
    mid_month: dict[str, list[float]] = {"method": [], "run_rate": []}
    covered = [[0, 0] for _ in range(HORIZON + 1)]
    timings: list[float] = []
    extra_timings: list[float] = []
    n_origins = 0
    for _name, history in histories.items():
        for origin in origins(history.first_day):
            months = [fc.month_span(add_months(origin.replace(day=1), k)) for k in range(HORIZON + 1)]
            months = [m for m in months if m.last < TODAY]
            if not months:
                continue
            n_origins += 1
            seen = window(history, origin)
            actual = [sum(history.between(m.first, m.last)) for m in months]
            t0 = time.perf_counter()
            point = fc.month_totals(seen, origin, months)
            past = fc.past_errors(seen, origin, HORIZON)
            timings.append((time.perf_counter() - t0) * 1000)
            naive = fc.run_rate_totals(seen, origin, months)
            hw = None
            if extra is not None:
                t1 = time.perf_counter()
                hw = extra[0](seen, origin, months)
                extra_timings.append((time.perf_counter() - t1) * 1000)
            for k, a in enumerate(actual):
                errors["method"][k].append(point[k] / a - 1)
                errors["run_rate"][k].append(naive[k] / a - 1)
                if hw is not None:
                    errors["hw"][k].append(hw[k] / a - 1)
                if k == 0 and origin.day == 15:
                    mid_month["method"].append(point[0] / a - 1)
                    mid_month["run_rate"].append(naive[0] / a - 1)
                if len(past.method[k]) >= fc.MIN_PAST_ORIGINS:
                    half = (
                        max(
                            fc.Z_INTERVAL * math.sqrt(sum(e * e for e in past.method[k]) / len(past.method[k])),
                            fc.MIN_HALF_WIDTH,
                        )
                        * point[k]
                    )
                    covered[k][0] += int(point[k] - half <= a <= point[k] + half)
                    covered[k][1] += 1

    rows: list[tuple[str, str]] = []
    labels = ["this month (origins on the 1st and 15th)", "next month", "in 2 months", "in 3 months"]
    for k in range(HORIZON + 1):
        m, r = errors["method"][k], errors["run_rate"][k]
        line = (
            f"MAPE {pct(m):.2f}% vs run rate {pct(r):.2f}% (median {pct(m, 0.5):.2f}% vs {pct(r, 0.5):.2f}%; "
            f"p90 {pct(m, 0.9):.2f}% vs {pct(r, 0.9):.2f}%; n={len(m)})"
        )
        if extra is not None:
            line += f"; Holt-Winters {pct(errors['hw'][k]):.2f}%"
        rows.append((f"forecast error, {labels[k]}", line))
    rows.append(
        (
            "forecast error, this month from the 15th",
            f"MAPE {pct(mid_month['method']):.2f}% vs run rate {pct(mid_month['run_rate']):.2f}% "
            f"(n={len(mid_month['method'])})",
        )
    )
    for k in range(HORIZON + 1):
        c, n = covered[k]
        rows.append((f"80% interval coverage, {labels[k]}", f"{c / n:.0%} of {n}" if n else "n/a"))
    rows.append(
        (
            "method time per forecast (one series: point + its past-origin errors)",
            f"p50 {statistics.median(timings):.1f} ms (pure Python, no import cost)",
        )
    )
    if extra is not None:
        rows.append(
            (
                "Holt-Winters (statsmodels) cost",
                f"import {extra[1]:.0f} ms (numpy+scipy+pandas+statsmodels); fit+forecast p50 "
                f"{statistics.median(extra_timings):.1f} ms per series",
            )
        )
    rows.insert(
        0, ("backtest", f"{len(histories)} series (6 views: Total + top {TOP_SERIES}), {n_origins} origins")
    )
    if args.markdown:
        print("| figure | value |\n|---|---|")
        for a, b in rows:
            print(f"| {a} | {b} |")
    else:
        for a, b in rows:
            print(f"{a}: {b}")
    beats = all(pct(errors["method"][k]) < pct(errors["run_rate"][k]) for k in range(HORIZON + 1))
    return 0 if beats else 1


if __name__ == "__main__":
    sys.exit(main())
