"""Insights from a view's daily series: ``find_cost_anomalies`` and ``forecast_costs``."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.api.models import CostType
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import READ, ToolSpec, ViewRef
from finout_mcp.services import anomalies, costs, drilldown, forecast, periods


async def find_cost_anomalies(
    ctx: Context,
    view: ViewRef,
    period: Annotated[
        periods.Period | None,
        Field(description="Days to check (UTC). Give either period or start/end; default last_30_days."),
    ] = None,
    start: Annotated[str | None, Field(description="First day to check, YYYY-MM-DD.")] = None,
    end: Annotated[
        str | None, Field(description="Last day to check, YYYY-MM-DD, inclusive; default yesterday.")
    ] = None,
    cost_type: Annotated[CostType, Field(description="Which cost to check.")] = "unblendedCost",
    min_excess: Annotated[
        float | None,
        Field(
            description="Leave out anomalies smaller than this many dollars; default 0.5% of a day's view cost.",
            ge=0,
        ),
    ] = None,
    top_n: Annotated[
        int, Field(description="Anomalies to list, largest first (over 10: beyond the 8 KB default).", ge=1, le=50)
    ] = anomalies.DEFAULT_TOP_N,
) -> anomalies.AnomalyAnswer:
    """Did anything spike (or drop)? Finds the days and series of a view whose cost departs from their
    OWN normal (weekday pattern and trend learned from the 8 weeks before; robust to the spike itself):
    for each, dates, expected vs actual, excess dollars and share_of_view_change_pct (its share of the view's
    change on its own days, 0-100, not additive across days; explained_pct: all anomalies' share of the
    view's excess over the range), plus the view Total's own departures and next_steps: calls that explain
    the largest one, arguments ready to send (query_costs on the key the view groups it by, broken down
    day by day; the view's daily series; savings). One call answers "did anything spike in the last
    30 days, and why?". Pick the view with list_views; the 'All costs by service' style view usually
    covers everything. Not Finout's own anomaly alerts: this reads the view's daily costs."""
    state = get_state(ctx)
    v = await state.catalog.resolve_view(view)
    today = state.today()
    span, notes = anomalies.checked_span(
        periods.resolve_span(period=period, start=start, end=end, today=today), today
    )
    fetched = anomalies.history_span(span)
    series = await costs.fetch_costs(state.client, v.id, fetched, cost_type)
    answer = anomalies.find_anomalies(
        series,
        span=span,
        fetched=fetched,
        view=v,
        cost_type=cost_type,
        min_excess=min_excess,
        top_n=top_n,
        notes=notes,
    )
    if answer.anomalies:  # name the key that selects the largest one's series, so query_costs can split it
        top = answer.anomalies[0]
        how = await drilldown.drill(state.catalog, v.name, top.series)
        steps = anomalies.next_steps(v, top, answer.min_excess, how.where, how.breakdown)
        anomalies.set_next_steps(answer, steps, top_n=top_n, notes=[how.note] if how.note else [])
    return answer


async def forecast_costs(
    ctx: Context,
    view: ViewRef,
    horizon: Annotated[
        int,
        Field(
            description="Months to forecast after this one (0 = this month only; at most 3).",
            ge=0,
            le=forecast.MAX_HORIZON,
        ),
    ] = 1,
    cost_type: Annotated[CostType, Field(description="Which cost to forecast.")] = "unblendedCost",
    top_n: Annotated[
        int, Field(description="Also forecast the view's top N series (by last 30 days).", ge=0, le=20)
    ] = 5,
) -> forecast.ForecastAnswer:
    """Forecast a view's cost: this calendar month's projected total (actual so far + forecast of the rest)
    and the next 1-3 months, for the view and its top series, each with an 80% interval and the naive
    run rate beside it. track_record: how far off the method was on this view's own past (re-run from the
    same day of earlier months), which sets the interval; notes put last year's same months and the
    largest recent spike beside it and say why a month is forecast lower than the one before. Answers
    "forecast next month" or "where will this month land?" in one call. Pick the view with list_views.
    It continues the recent trend and weekly pattern: it does not know budgets, commitments or planned
    launches, and does not go beyond 3 months."""
    state = get_state(ctx)
    v = await state.catalog.resolve_view(view)
    today = state.today()
    months = forecast.month_spans(today, horizon)
    fetched = forecast.history_span(today)
    series = await costs.fetch_costs(state.client, v.id, fetched, cost_type)
    return forecast.forecast_view(
        series, fetched=fetched, today=today, months=months, view=v, cost_type=cost_type, top_n=top_n
    )


TOOLS = (
    ToolSpec(find_cost_anomalies, READ, "Find cost spikes and drops"),
    ToolSpec(forecast_costs, READ, "Forecast a view's costs"),
)
