"""CostGuard: scans and their savings recommendations."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.api.models import GroupBy, RecommendationsRequest
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import FILTER_REF, READ, Envelope, FilterSpec, Refresh, ToolCollector
from finout_mcp.services.composer import compose, resolve_key
from finout_mcp.services.costguard import (
    RecommendationsAnswer,
    ScanSummary,
    summarize_recommendations,
    summarize_scans,
)
from finout_mcp.services.errors import InputError


class ScansResult(Envelope):
    scans: list[ScanSummary]
    total: int


async def list_costguard_scans(
    ctx: Context,
    cost_center: Annotated[str | None, Field(description="Only scans of this cost center, e.g. AWS.")] = None,
    type: Annotated[
        Literal["idle", "rightsizing"] | None, Field(description="Only idle-resource or rightsizing scans.")
    ] = None,
    refresh: Refresh = False,
) -> ScansResult:
    """CostGuard scans (idle and rightsizing detectors): id, name, type, cost center, days analysed, last
    run."""
    scans = await get_state(ctx).catalog.scans(refresh=refresh)
    chosen = summarize_scans(scans, cost_center=cost_center, type=type)
    notes = [] if chosen else ["No scan matches; drop the filters to see all."]
    return ScansResult(scans=chosen, total=len(scans), notes=notes)


async def get_scan_recommendations(
    ctx: Context,
    scan: Annotated[
        str, Field(description="The scan's id or exact name (see list_costguard_scans).", min_length=1)
    ],
    filter: Annotated[
        FilterSpec | None, Field(description="Optional: only matching resources. " + FILTER_REF)
    ] = None,
    group_by: Annotated[
        str | None,
        Field(description="Optional key or display name to group resources by, e.g. 'Account Name' or 'region'."),
    ] = None,
    group_by_cost_center: Annotated[
        str | None, Field(description="Cost center of group_by when the key is ambiguous.")
    ] = None,
    top_n: Annotated[
        int, Field(description="Resources listed per group (totals still cover all).", ge=1, le=100)
    ] = 5,
) -> RecommendationsAnswer:
    """Savings a CostGuard scan found (pick the scan with list_costguard_scans): totals (cost, waste,
    yearly savings, in the account currency), groups by savings, top resources per group with a
    one-line reason."""
    s = get_state(ctx)
    sc = await s.catalog.resolve_scan(scan)
    body = RecommendationsRequest(scan_id=sc.scan_id)
    if filter is not None:
        composed = await compose(filter, s.catalog, check_values=False)
        if not composed.ok or composed.filter is None:
            errors = [f.message for f in composed.findings if f.severity == "error"]
            raise InputError(
                "The filter has errors: " + "; ".join(errors[:5]) + ".",
                hint="Fix them (compose_filter shows details) and call again.",
            )
        body.filters = composed.filter
    if group_by is not None:
        k = resolve_key(await s.catalog.keys(), group_by, group_by_cost_center)
        body.group_by = GroupBy(cost_center=k.cost_center, key=k.key)
    recs = await s.client.get_scan_recommendations(body)
    return summarize_recommendations(recs, top_n=top_n)


def register(server: ToolCollector, *, read_only: bool) -> None:
    server.add_tool(list_costguard_scans, annotations=READ, title="List CostGuard scans")
    server.add_tool(get_scan_recommendations, annotations=READ, title="CostGuard savings of a scan")
