"""Views and their costs: ``list_views`` and ``query_view_costs``."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from finout_mcp.api.models import CostType
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import READ, Refresh, ToolSpec, ViewRef
from finout_mcp.services import costs, periods
from finout_mcp.services.results import Envelope
from finout_mcp.services.search import search_named


class ViewItem(BaseModel):
    id: str
    name: str


class ViewsResult(Envelope):
    views: list[ViewItem]
    total: int = Field(description="Views in the account (before the search filter).")
    truncated: bool = False


async def list_views(
    ctx: Context,
    search: Annotated[
        str | None, Field(description="Optional text to match in view names (case-insensitive).")
    ] = None,
    limit: Annotated[int, Field(description="Maximum views to return.", ge=1, le=500)] = 100,
    refresh: Refresh = False,
) -> ViewsResult:
    """List saved views (id, name). Costs are queried per view: call this, then query_view_costs."""
    state = get_state(ctx)
    views = await state.catalog.views(refresh=refresh)
    chosen = search_named(views, search, lambda v: v.name)
    items = [ViewItem(id=v.id, name=v.name) for v in chosen[:limit]]
    notes = []
    if search and not items:
        notes.append(f"No view matches {search!r}; call list_views without search to see all {len(views)}.")
    if len(chosen) > limit:
        notes.append(f"Showing {limit} of {len(chosen)}; raise limit or narrow the search.")
    return ViewsResult(views=items, total=len(views), truncated=len(chosen) > limit, notes=notes)


async def query_view_costs(
    ctx: Context,
    view: ViewRef,
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
    cost_type: Annotated[CostType, Field(description="Which cost to sum.")] = "unblendedCost",
    top_n: Annotated[
        int, Field(description="Series (groups of the view) to list before an 'Other' rollup.", ge=1, le=200)
    ] = 10,
    granularity: Annotated[
        Literal["auto", "day", "week", "month", "total"],
        Field(description="Time buckets of the timeline; auto keeps the answer small."),
    ] = "auto",
    compare_previous: Annotated[
        bool,
        Field(
            description="true: compare with the previous period of the same kind: a calendar month with the "
            "month before, a quarter with the quarter before, a year with the year before, month/quarter/year "
            "to date with the same days of the previous one, last_N_days and other ranges with the N days before."
        ),
    ] = False,
    compare_start: Annotated[
        str | None,
        Field(description="Compare with this range instead (e.g. the same month last year): first day, ISO date."),
    ] = None,
    compare_end: Annotated[
        str | None,
        Field(description="Last day of the compared range, inclusive; default: as many days as the main range."),
    ] = None,
    breakdown_series: Annotated[
        bool, Field(description="true: per-series amounts in each time bucket (top series only; larger).")
    ] = False,
) -> costs.CostAnswer:
    """Costs of a saved view over a date range: total, per-group totals with shares (the view's grouping,
    e.g. service or team), a timeline, optional comparison with the previous period of the same kind (both
    ranges stated with dates and day counts). Ranges over 90 days are split and merged for you. Pick the
    view with list_views. Dates are UTC days, end inclusive; amounts in the account currency, rounded for
    display."""
    state = get_state(ctx)
    today = state.today()
    window = periods.resolve_window(period=period, start=start, end=end, today=today)
    before: periods.Window | None = None
    if compare_previous or compare_start or compare_end:
        before = periods.comparison_window(window, today=today, start=compare_start, end=compare_end)
    v = await state.catalog.resolve_view(view)
    span = window.span
    prev_span = before.span if before else None
    windows = len(periods.split_windows(span)) + (len(periods.split_windows(prev_span)) if prev_span else 0)
    done = 0

    async def on_window(_d: int, _t: int) -> None:
        nonlocal done
        done += 1
        await ctx.report_progress(done, windows, f"fetched {done} of {windows} date windows")

    current: list[costs.Series] = []
    previous: list[costs.Series] | None = None

    async def fetch_current() -> None:
        nonlocal current
        current = await costs.fetch_costs(state.client, v.id, span, cost_type, on_window=on_window)

    async def fetch_previous() -> None:
        nonlocal previous
        assert prev_span is not None
        previous = await costs.fetch_costs(state.client, v.id, prev_span, cost_type, on_window=on_window)

    async with anyio.create_task_group() as tg:
        tg.start_soon(fetch_current)
        if prev_span is not None:
            tg.start_soon(fetch_previous)
    return costs.shape_costs(
        current,
        window,
        today=today,
        view=v,
        cost_type=cost_type,
        top_n=top_n,
        granularity=granularity,
        breakdown_series=breakdown_series,
        previous=previous,
        previous_window=before,
    )


TOOLS = (
    ToolSpec(list_views, READ, "List saved views"),
    ToolSpec(query_view_costs, READ, "Query a view's costs"),
)
