"""Ad-hoc cost questions on Finout API v2: ``query_costs`` (any filter, any group-by, no view)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import FILTER_DESCRIPTION, READ, ToolSpec
from finout_mcp.services import periods
from finout_mcp.services.cost_query import Granularity, Measurement, QueryCostsAnswer


async def query_costs(
    ctx: Context,
    filter: Annotated[
        dict[str, Any] | None,
        Field(description=FILTER_DESCRIPTION + " Leave out for all costs."),
    ] = None,
    group_by: Annotated[
        list[str] | None,
        Field(
            description="Keys to group by, by key or display name (e.g. ['namespace'], ['Service', 'Account Name'],"
            " a virtual tag's name); 'CostCenter:key' when a name is ambiguous. At most 20.",
        ),
    ] = None,
    period: Annotated[
        periods.Period | None,
        Field(description="A preset range (UTC). Give either period or start/end; default last_30_days."),
    ] = None,
    start: Annotated[
        str | None, Field(description="First day, ISO date YYYY-MM-DD (UTC). Use with end instead of period.")
    ] = None,
    end: Annotated[
        str | None, Field(description="Last day, ISO date YYYY-MM-DD, inclusive (UTC). Defaults to today.")
    ] = None,
    measurement: Annotated[
        Measurement, Field(description="Which cost to sum, or usageAmount/normalizedUsageAmount for usage.")
    ] = "unblendedCost",
    granularity: Annotated[
        Granularity, Field(description="Time buckets of the timeline; auto: day up to 31 days, week, then month.")
    ] = "auto",
    top_n: Annotated[int, Field(description="Groups to list before an 'Other' rollup.", ge=1, le=200)] = 10,
    compare_previous: Annotated[
        bool,
        Field(description="true: compare with the previous period of the same kind (as query_view_costs)."),
    ] = False,
    compare_start: Annotated[
        str | None, Field(description="Compare with this range instead: first day, ISO date.")
    ] = None,
    compare_end: Annotated[
        str | None,
        Field(description="Last day of the compared range, inclusive; default: as long as the main one."),
    ] = None,
    breakdown_series: Annotated[
        bool,
        Field(
            description="true: per-group amounts in each time bucket (the listed top_n groups; a larger answer), "
            'e.g. a day-by-day drill-down per group with granularity="day" (as query_view_costs).'
        ),
    ] = False,
) -> QueryCostsAnswer:
    """Any cost question without a saved view (Finout API v2): filter by any keys (same intent as
    compose_filter), group by up to 20 keys or virtual tags, any range (split in 60-day queries for you),
    optional comparison of the same kind. E.g. a namespace's cost per month: filter namespace=checkout,
    granularity month; why a service spiked: filter service, group_by account/region, the spike's days,
    granularity day and breakdown_series=true for each group's day-by-day cost.
    Finout computes asynchronously: expect a few seconds per query (progress is reported). Answer shaped like
    query_view_costs, plus the query as sent and the daily query budget used. Find keys with
    list_megabill_keys first."""
    state = get_state(ctx)
    today = state.today()
    window = periods.resolve_window(period=period, start=start, end=end, today=today)
    before: periods.Window | None = None
    if compare_previous or compare_start or compare_end:
        before = periods.comparison_window(window, today=today, start=compare_start, end=compare_end)

    async def progress(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total, message)

    return await state.cost_queries.ask(
        filter=filter,
        group_by=group_by or [],
        window=window,
        before=before,
        measurement=measurement,
        granularity=granularity,
        top_n=top_n,
        today=today,
        breakdown_series=breakdown_series,
        progress=progress,
    )


TOOLS = (ToolSpec(query_costs, READ, "Query costs with any filter and group-by (API v2)"),)
