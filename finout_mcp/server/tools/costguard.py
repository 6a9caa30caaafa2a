"""CostGuard: scans and their savings recommendations."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.api.models import GroupBy, RecommendationsRequest, Scan, ScanRecommendations
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import FILTER_REF, READ, FilterSpec, Refresh, ToolSpec
from finout_mcp.services.composer import compose
from finout_mcp.services.costguard import (
    RecommendationsAnswer,
    ScanSummary,
    summarize_recommendations,
    summarize_scans,
)
from finout_mcp.services.errors import InputError
from finout_mcp.services.keys import find_key
from finout_mcp.services.results import Envelope
from finout_mcp.services.savings import ACCOUNT, SavingsSummary
from finout_mcp.services.savings import summarize_savings as summarize


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
    run, and yearly savings when already fetched. For "what can we save" call summarize_savings instead:
    one call covers every scan."""
    catalog = get_state(ctx).catalog
    scans = await catalog.scans(refresh=refresh)
    chosen = summarize_scans(scans, cost_center=cost_center, type=type)
    known = 0
    for row in chosen:
        recs = catalog.known_recommendations(row.id)
        if recs is not None:
            row.yearly_potential_savings = recs.scan_yearly_potential_savings
            known += 1
    notes = [] if chosen else ["No scan matches; drop the filters to see all."]
    if known < len(chosen):
        notes.append(
            f"Yearly savings known for {known} of {len(chosen)} scans (fetched recently); summarize_savings "
            "fetches every scan's totals in one call."
        )
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
        k = await find_key(s.catalog, group_by, group_by_cost_center)
        body.group_by = GroupBy(cost_center=k.cost_center, key=k.key)
    if body.filters is None:  # the whole scan: cached, and its totals then show in list_costguard_scans
        recs = await s.catalog.recommendations(sc.scan_id, body.group_by)
    else:
        recs = await s.client.get_scan_recommendations(body)
    return summarize_recommendations(recs, top_n=top_n)


async def summarize_savings(
    ctx: Context,
    group_by: Annotated[
        str | None,
        Field(
            description='Optional: "account" (the resource\'s AWS account or GCP project), or any key or display '
            "name, e.g. 'region' or 'Team', to total the savings per value."
        ),
    ] = None,
    group_by_cost_center: Annotated[
        str | None, Field(description="Cost center of group_by when the key is ambiguous.")
    ] = None,
    top_n: Annotated[
        int, Field(description="Resources listed across all scans, largest yearly savings first.", ge=1, le=50)
    ] = 10,
    cost_center: Annotated[
        str | None, Field(description="Only scans of this cost center, e.g. AWS, GCP, Kubernetes.")
    ] = None,
    refresh: Refresh = False,
) -> SavingsSummary:
    """What can we save: every CostGuard scan in one call. Grand yearly total (a resource flagged by several
    scans counts once), each scan's totals, the top resources across scans with a one-line reason, and
    optionally totals per account or per key value. Then get_scan_recommendations for one scan in full."""
    s = get_state(ctx)
    scans = await s.catalog.scans(refresh=refresh)
    if cost_center:
        cc = cost_center.strip().casefold()
        scans = [sc for sc in scans if (sc.scan_metadata.cost_center or "").casefold() == cc]
        if not scans:
            raise InputError(
                f"No CostGuard scan has the cost center {cost_center!r}.",
                hint="Call list_costguard_scans to see the scans and their cost centers, or leave cost_center out.",
            )
    gb: GroupBy | None = None
    mode = None
    if group_by is not None and group_by.strip():
        if group_by.strip().casefold() == ACCOUNT:
            mode = ACCOUNT
        else:
            k = await find_key(s.catalog, group_by, group_by_cost_center)
            gb = GroupBy(cost_center=k.cost_center, key=k.key)
            mode = f"{k.cost_center}.{k.display_name or k.key}"
    found: list[tuple[Scan, ScanRecommendations | Exception]] = [(sc, RuntimeError()) for sc in scans]
    done = 0

    async def one(i: int, sc: Scan) -> None:
        nonlocal done
        try:
            found[i] = (sc, await s.catalog.recommendations(sc.scan_id, gb, refresh=refresh))
        except Exception as err:  # one scan failing must not hide the others; the answer names it
            found[i] = (sc, err)
        done += 1
        await ctx.report_progress(done, len(scans), f"fetched {done} of {len(scans)} scans")

    async with anyio.create_task_group() as tg:  # the client keeps at most 5 requests in flight
        for i, sc in enumerate(scans):
            tg.start_soon(one, i, sc)
    errors = [r for _, r in found if isinstance(r, Exception)]
    if scans and len(errors) == len(scans):
        raise errors[0]
    return summarize(found, group_by=mode, top_n=top_n)


TOOLS = (
    ToolSpec(list_costguard_scans, READ, "List CostGuard scans"),
    ToolSpec(get_scan_recommendations, READ, "CostGuard savings of a scan"),
    ToolSpec(summarize_savings, READ, "Savings across all CostGuard scans"),
)
