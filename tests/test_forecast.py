"""forecast_costs: the method on series built by hand, and "Forecast next month" end to end.

Expected figures come from the series built here (sums over the calendar) or from the sandbox's
own daily costs — including days after "today", which the sandbox can compute and the tool cannot
see — never from a tool's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from mcp import Client

from finout_mcp.api.models import View
from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.sandbox.costs import day_ms
from finout_mcp.sandbox.spikes import spike_factor
from finout_mcp.server.app import build_server
from finout_mcp.services import forecast
from finout_mcp.services.costs import Point, Series
from finout_mcp.services.errors import InputError
from tests.support import TODAY, call, call_error, demo, text

VIEW = View(id="v1", name="Hand-built")


def answer(
    cost: Callable[[date], float], today: date, horizon: int = 1, days: int = forecast.HISTORY_DAYS
) -> forecast.ForecastAnswer:
    """The forecast for a one-series view whose day ``d`` costs ``cost(d)``."""
    fetched = forecast.history_span(today, days)
    points = [
        Point(day_ms(fetched.first + timedelta(days=i)), cost(fetched.first + timedelta(days=i)))
        for i in range(fetched.days)
    ]
    series = [Series("Total", points), Series("api", points)]
    return forecast.forecast_view(
        series,
        fetched=fetched,
        today=today,
        months=forecast.month_spans(today, horizon),
        view=VIEW,
        cost_type="unblendedCost",
    )


def month_sum(cost: Callable[[date], float], first: date, last: date) -> float:
    total, d = 0.0, first
    while d <= last:
        total += cost(d)
        d += timedelta(days=1)
    return total


def test_a_flat_series_forecasts_its_rate_with_the_narrowest_interval() -> None:
    out = answer(lambda d: 100.0, date(2026, 11, 16))
    this, nxt = out.months
    assert (this.month, this.days, this.actual_to_date, this.forecast) == ("2026-11", 30, 1500.0, 3000.0)
    assert (nxt.month, nxt.days, nxt.actual_to_date, nxt.forecast, nxt.run_rate) == (
        "2026-12",
        31,
        None,
        3100.0,
        3100.0,
    )
    assert (nxt.low, nxt.high) == (3084.5, 3115.5)  # no past error: the +-0.5% floor
    assert (this.low, this.high) == (2985.0, 3015.0)  # +-0.5% of the month total
    assert (
        "resistant trend" in out.method
        and out.track_record is not None
        and out.track_record.method_error_pct == 0.0
    )


def test_the_weekly_pattern_is_summed_day_by_day_and_beats_the_run_rate() -> None:
    def cost(d: date) -> float:
        return 78.0 if d.weekday() >= 5 else 100.0

    out = answer(cost, date(2026, 12, 1), horizon=3)
    truth = {
        f"{m.first.year}-{m.first.month:02d}": month_sum(cost, m.first, m.last)
        for m in forecast.month_spans(date(2026, 12, 1), 3)
    }
    # By the calendar: Dec 2026 and Mar 2027 have 23 weekdays + 8 weekend days, Jan 2027 21 + 10, Feb 20 + 8.
    assert truth == {"2026-12": 2924.0, "2027-01": 2880.0, "2027-02": 2624.0, "2027-03": 2924.0}
    for m in out.months:
        assert m.forecast == truth[m.month], m.month
        assert abs(m.run_rate - truth[m.month]) > 0  # the run rate ignores which days a month has
    assert out.months[1].run_rate != out.months[1].forecast


def test_a_growing_series_is_forecast_on_its_trend_and_the_run_rate_lags() -> None:
    start = date(2025, 1, 1)

    def cost(d: date) -> float:
        return 100.0 * 1.002 ** (d - start).days  # +0.2% a day

    out = answer(cost, date(2026, 12, 1))
    dec = month_sum(cost, date(2026, 12, 1), date(2026, 12, 31))
    assert out.months[0].forecast == pytest.approx(dec, rel=0.001)
    assert out.months[0].run_rate < dec * 0.96  # the last 30 days' average is weeks behind


def test_a_step_in_cost_moves_the_forecast_within_weeks() -> None:
    step = date(2026, 11, 10)

    def cost(d: date) -> float:
        return 150.0 if d >= step else 100.0  # e.g. a new cluster, 21 days before today

    out = answer(cost, date(2026, 12, 1))
    assert out.months[0].forecast == pytest.approx(150.0 * 31, rel=0.001)


def test_too_little_history_is_refused_with_what_to_do_instead() -> None:
    with pytest.raises(InputError, match="month_to_date"):
        answer(lambda d: 100.0, date(2026, 12, 1), days=20)


def test_horizon_beyond_three_months_is_refused() -> None:
    with pytest.raises(InputError, match="1 to 3"):
        forecast.month_spans(date(2026, 12, 1), 4)


# ----------------------------------------------------------------------------- end to end


async def test_forecast_next_month(tmp_path: Path) -> None:
    """'Forecast next month' — two calls, under 8 KB, saying how to get more."""
    async with demo(tmp_path) as (client, sb):
        views = await call(client, "list_views")
        view = next(v for v in views["views"] if v["name"] == "All costs by service")
        result = await client.call_tool("forecast_costs", {"view": view["id"]})
        assert not result.is_error
        out = result.structured_content
        assert out is not None and len(text(result).encode()) <= 8 * 1024

    sandbox_view = next(v for v in sb.account.views if v.name == "All costs by service")

    def total(first: date, last: date) -> float:
        return month_sum(
            lambda d: sum(round(sandbox_view.cost(g, d, TODAY), 4) for g in sandbox_view.groups), first, last
        )

    assert date(2026, 11, 25) == TODAY  # this month: November, 24 complete days; next month: December
    this, nxt = out["months"]
    assert (this["month"], nxt["month"]) == ("2026-11", "2026-12")
    assert this["actual_to_date"] == round(total(date(2026, 11, 1), date(2026, 11, 24)), 2)
    assert this["low"] >= this["actual_to_date"] and this["low"] < this["forecast"] < this["high"]
    assert nxt["low"] < nxt["forecast"] < nxt["high"] and nxt["days"] == 31
    assert out["method"].startswith("seasonal trend")
    names = [s["name"] for s in out["series"]]
    assert len(names) == 5 and set(names) <= set(sandbox_view.groups[:6])  # the biggest series of the view
    assert any("top_n" in n for n in out["notes"]) and any("horizon=3" in n for n in out["notes"])
    assert out["track_record"]["method_error_pct"] < out["track_record"]["run_rate_error_pct"]


async def test_a_month_forecast_lands_near_what_the_sandbox_then_charges(tmp_path: Path) -> None:
    """The server's "today" is 1 November; the sandbox already holds all of November to compare with."""
    sb = Sandbox(seed=7, today=date(2026, 12, 1))
    server = build_server(
        Settings(demo=True, state_dir=tmp_path / "state"), sandbox=sb, today=lambda: date(2026, 11, 1)
    )
    async with Client(server) as client:
        out = await call(client, "forecast_costs", {"view": "Kubernetes by namespace", "horizon": 0})
    (november,) = out["months"]
    assert november["month"] == "2026-11" and november["actual_to_date"] == 0.0
    # The truth from the sandbox's cost table, without the spikes it plants in November (no method
    # forecasts a one-off spike; find_cost_anomalies is for those).
    view = next(v for v in sb.account.views if v.name == "Kubernetes by namespace")
    table = sb.account.costs
    truth, d = 0.0, date(2026, 11, 1)
    while d <= date(2026, 11, 30):
        for line in table.lines:
            if view.group_of(sb.account.row(line, d)) is not None:
                planted = (s.spike for s in table.spikes if line.id in s.line_ids)
                truth += table.cost(line, d) / spike_factor(planted, d)
        d += timedelta(days=1)
    assert november["forecast"] == pytest.approx(truth, rel=0.01)
    assert november["low"] <= truth <= november["high"]
    assert abs(november["forecast"] - truth) < abs(november["run_rate"] - truth)


async def test_forecast_arguments_are_checked(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        a = tools["forecast_costs"].annotations
        assert a is not None and a.read_only_hint is True and a.open_world_hint is False
        message = await call_error(client, "forecast_costs", {"view": "Costs by team", "horizon": 4})
        assert "horizon" in message
