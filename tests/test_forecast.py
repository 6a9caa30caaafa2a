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


# ----------------------------------------------------------------------------- what the figures mean


def numbers_in(note: str) -> list[float]:
    """The signed amounts of a lower-month note's reasons ("...): -279 28 days vs 31; +23 weekday mix ...")."""
    reasons = note.split("): ", 1)[1].split("; ")
    return [float(r.split(" ", 1)[0].replace(",", "")) for r in reasons]


def test_a_month_forecast_lower_says_why_in_dollars_that_add_up() -> None:
    def cost(d: date) -> float:
        return 78.0 if d.weekday() >= 5 else 100.0

    out = answer(cost, date(2026, 12, 1), horizon=3)
    dec, jan, feb = (month_sum(cost, date(2026, 12, 1), date(2026, 12, 31)), 2880.0, 2624.0)
    assert (dec, month_sum(cost, date(2027, 1, 1), date(2027, 1, 31))) == (2924.0, jan)
    notes = {n.split(" is forecast")[0]: n for n in out.notes if " is forecast " in n}
    assert set(notes) == {"2027-01", "2027-02"}  # the only months below the one before (March is above)
    # January: same length as December, two more weekend days (10 vs 8), no trend
    assert "weekday mix (10 Saturdays and Sundays vs 8)" in notes["2027-01"]
    assert sum(numbers_in(notes["2027-01"])) == pytest.approx(jan - dec, abs=1)
    # February: three days fewer (at January's average day) and, for that, a richer weekday mix
    assert f"{-3 * jan / 31:+,.0f} 28 days vs 31" in notes["2027-02"]
    assert sum(numbers_in(notes["2027-02"])) == pytest.approx(feb - jan, abs=1)


def test_a_spike_this_month_is_named_as_why_next_month_is_lower() -> None:
    spike = (date(2026, 12, 1), date(2026, 12, 3))

    def cost(d: date) -> float:
        return 300.0 if spike[0] <= d <= spike[1] else 100.0

    out = answer(cost, date(2026, 12, 16))
    dec, jan = out.months
    assert (dec.forecast, jan.forecast) == (3700.0, 3100.0)  # the spike is actual, and not repeated
    note = next(n for n in out.notes if n.startswith("2027-01 is forecast"))
    assert "2026-12 +600" in note and "one-offs are not repeated" in note
    assert numbers_in(note) == [-600.0]


async def test_the_forecast_says_what_its_error_and_interval_are_and_what_it_cannot_know(tmp_path: Path) -> None:
    """method_error_pct is defined where the model reads it; last year's same months and the largest recent
    spike are set beside the forecast; a month forecast lower than the one before says why."""
    async with demo(tmp_path) as (client, sb):
        out = await call(client, "forecast_costs", {"view": "All costs by service", "horizon": 2})
    sandbox_view = next(v for v in sb.account.views if v.name == "All costs by service")

    def total(first: date, last: date) -> float:
        return month_sum(
            lambda d: sum(round(sandbox_view.cost(g, d, TODAY), 4) for g in sandbox_view.groups), first, last
        )

    track = out["track_record"]
    # The origins: the same day of earlier months (today is the 25th), the latest one month ago.
    assert track["last_origin"] == "2026-10-25" and track["first_origin"].endswith("-25")
    note = next(n for n in out["notes"] if n.startswith("method_error_pct"))
    assert f"{track['origins']} earlier months ({track['first_origin']}..{track['last_origin']})" in note
    assert "history before that day only" in note and "root-mean-square" in note
    ahead = {a["months_ahead"]: a for a in track["by_months_ahead"]}
    for k, month in enumerate(out["months"]):  # the interval is the stated width for that month ahead
        width = (month["high"] - month["forecast"]) / month["forecast"] * 100
        assert width == pytest.approx(ahead[k]["interval_pct"], abs=0.06), (k, month)
        assert ahead[k]["origins"] == track["origins"] - k  # a month k ahead is complete from fewer origins
    # Last year's December against November, from the sandbox's own costs
    dec, nov = total(date(2025, 12, 1), date(2025, 12, 31)), total(date(2025, 11, 1), date(2025, 11, 30))
    last_year = next(n for n in out["notes"] if n.startswith("Last year"))
    assert f"2025-12 was {(dec / nov - 1) * 100:+.1f}% on 2025-11" in last_year
    # The RDS spike planted 12 days ago (3 days at 3x) is larger than the interval: the answer says so.
    rds = next(s for s in sandbox_view.spikes if s.group == "AmazonRDS")
    spike = next(n for n in out["notes"] if "narrower than the largest departure" in n)
    assert f"{rds.first_day}..{rds.last_day}" in spike
    # January (10 weekend days) is forecast below December (8); December above November: no note for it.
    jan, dec_f = out["months"][2]["forecast"], out["months"][1]["forecast"]
    lower = [n for n in out["notes"] if " is forecast " in n and " lower than " in n]
    assert jan < dec_f and any(
        n.startswith("2027-01 is forecast") and "10 Saturdays and Sundays vs 8" in n for n in lower
    )
    assert not any(n.startswith("2026-12 is forecast") for n in lower)
