"""What can we save: every CostGuard scan at once, resources found by several scans counted once.

Flow used by ``summarize_savings``::

    found = [(scan, await catalog.recommendations(scan.scan_id, group_by)) ...]   # or the error
    answer = summarize_savings(found, group_by=..., top_n=10)

Money: each scan reports cost and waste over its own analysis days (7 to 30 days ending at its
last run), so those do not add up across scans; the yearly potential savings are the waste
annualised by Finout, and those do. A resource flagged by several scans (an EC2 instance that
is both idle and oversized) offers alternative actions, not cumulative ones: it counts once,
with the largest yearly savings any scan found for it, and the answer says which scans found it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from finout_mcp.api.errors import FinoutError
from finout_mcp.api.models import Resource, Scan, ScanRecommendations
from finout_mcp.services.costguard import ms_to_iso_date, resource_account, resource_reason
from finout_mcp.services.fencing import fence
from finout_mcp.services.figures import ANSWER_BUDGET_BYTES, Money, Pct
from finout_mcp.services.results import Envelope

MAX_GROUPS = 10
ACCOUNT = "account"  # group_by value: the resource's account (AWS) or project (GCP), from its metadata


class ScanTotals(BaseModel):
    name: str
    type: str | None = None
    cost_center: str | None = None
    yearly_potential_savings: Money | None = Field(description="As Finout reports it for the scan.")
    waste: Money | None = Field(description="Over the scan's analysis days.")
    cost: Money | None = Field(description="Of the flagged resources, over the scan's analysis days.")
    resource_count: int | None = None
    analysis_days: int | None = None
    last_run: str | None = None
    error: str | None = Field(default=None, description="Why this scan's findings are missing from the totals.")


class TopResource(BaseModel):
    id: str | None = Field(description="Finout's resourceId (absent when Finout sends none).")
    scan: str = Field(description="The scan whose finding is counted (the largest savings).")
    also_found_by: list[str] | None = Field(default=None, description="Other scans that flagged it (not counted).")
    reason: str
    account: str | None = None
    group: str | None = None
    yearly_potential_savings: Money
    waste: Money = Field(description="Over the counted scan's analysis days.")


class GroupTotals(BaseModel):
    group: str
    yearly_potential_savings: Money
    share_pct: Pct
    resource_count: int


class Overlap(BaseModel):
    id: str
    scans: list[str] = Field(description="Every scan that flagged it; the first is counted.")
    counted: Money
    not_counted: Money


class SavingsSummary(Envelope):
    yearly_potential_savings: Money = Field(
        description="Grand total over all scans, each resource counted once (largest finding)."
    )
    monthly_equivalent: Money
    resource_count: int = Field(description="Distinct resources flagged.")
    sum_of_scan_totals: Money = Field(description="The scans' own totals added up (counts overlaps twice).")
    scans: list[ScanTotals] = Field(description="Every scan, largest yearly savings first.")
    top_resources: list[TopResource]
    group_by: str | None = None
    groups: list[GroupTotals] | None = None
    overlaps: list[Overlap] = Field(default_factory=list)
    coverage: str = Field(description="What period cost, waste and savings cover.")
    incomplete: bool = Field(default=False, description="True when a scan could not be fetched (see its error).")
    truncated: bool = False


@dataclass
class _Finding:
    resource: Resource
    scan: str
    scan_days: int | None
    group: str | None


Fetched = tuple[Scan, ScanRecommendations | Exception]


def _error_text(err: Exception) -> str:
    """What went wrong, with the status and Finout's requestId (the API error's own text)."""
    if isinstance(err, FinoutError):
        return str(err)[:300]
    return f"{type(err).__name__} while fetching this scan"


def summarize_savings(found: Sequence[Fetched], *, group_by: str | None = None, top_n: int = 10) -> SavingsSummary:
    """The savings of every scan in ``found`` (each with its recommendations or the error that
    kept them away), the top ``top_n`` resources across scans and, with ``group_by``, totals per
    group (``"account"``: the resource's account or project; else the groups Finout returned)."""
    top_n = max(1, top_n)
    rows: list[ScanTotals] = []
    by_id: dict[str, list[_Finding]] = {}
    failed: list[str] = []
    for scan, recs in found:
        md = scan.scan_metadata
        if isinstance(recs, Exception):
            failed.append(scan.scan_name)
            rows.append(
                ScanTotals(
                    name=scan.scan_name,
                    type=md.type,
                    cost_center=md.cost_center,
                    yearly_potential_savings=None,
                    waste=None,
                    cost=None,
                    analysis_days=md.analysis_days,
                    error=_error_text(recs),
                )
            )
            continue
        days = recs.scan_metadata.analysis_days or md.analysis_days
        count = 0
        for g in recs.data:
            for r in g.resources:
                count += 1
                group = None
                if group_by == ACCOUNT:
                    group = resource_account(r) or "(no account)"
                elif group_by is not None:
                    group = g.group
                # without an id a resource cannot be matched across scans: it stands alone
                key = r.resource_id if r.resource_id else f"\x00{scan.scan_id}:{count}"
                by_id.setdefault(key, []).append(_Finding(r, scan.scan_name, days, group))
        rows.append(
            ScanTotals(
                name=scan.scan_name,
                type=recs.scan_metadata.type or md.type,
                cost_center=recs.scan_metadata.cost_center or md.cost_center,
                yearly_potential_savings=recs.scan_yearly_potential_savings,
                waste=recs.scan_total_waste,
                cost=recs.scan_total_cost,
                resource_count=count,
                analysis_days=days,
                last_run=ms_to_iso_date(recs.scan_last_run_time or scan.scan_last_run_time),
            )
        )
    rows.sort(key=lambda r: (r.yearly_potential_savings is None, -(r.yearly_potential_savings or 0.0), r.name))

    # One finding per resource: the largest savings; the others are alternatives, not extra savings.
    counted: list[tuple[_Finding, list[_Finding]]] = []
    overlaps: list[Overlap] = []
    for rid, finds in by_id.items():
        ranked = sorted(finds, key=lambda f: (-f.resource.resource_yearly_potential_savings, f.scan))
        counted.append((ranked[0], ranked[1:]))
        if len(ranked) > 1:
            overlaps.append(
                Overlap(
                    id=rid,
                    scans=list(dict.fromkeys(f.scan for f in ranked)),
                    counted=ranked[0].resource.resource_yearly_potential_savings,
                    not_counted=sum(f.resource.resource_yearly_potential_savings for f in ranked[1:]),
                )
            )
    counted.sort(key=lambda c: (-c[0].resource.resource_yearly_potential_savings, c[0].resource.resource_id or ""))
    grand = sum(c[0].resource.resource_yearly_potential_savings for c in counted)
    sum_of_scans = sum(r.yearly_potential_savings or 0.0 for r in rows)

    groups: list[GroupTotals] | None = None
    notes: list[str] = []
    if group_by is not None:
        acc: dict[str, tuple[float, int]] = {}
        for best, _ in counted:
            name = best.group or "(none)"
            total, n = acc.get(name, (0.0, 0))
            acc[name] = (total + best.resource.resource_yearly_potential_savings, n + 1)
        ranked_groups = sorted(acc.items(), key=lambda kv: (-kv[1][0], kv[0]))
        groups = [
            GroupTotals(
                group=name,
                yearly_potential_savings=total,
                share_pct=total / grand * 100 if grand else 0.0,
                resource_count=n,
            )
            for name, (total, n) in ranked_groups[:MAX_GROUPS]
        ]
        if len(ranked_groups) > MAX_GROUPS:
            rest = ranked_groups[MAX_GROUPS:]
            notes.append(
                f"{len(rest)} more groups ({sum(v[0] for _, v in rest):,.2f} a year in all) are not listed; "
                "get_scan_recommendations with group_by shows one scan's groups in full."
            )

    def top(n: int) -> list[TopResource]:
        out = []
        for best, rest in counted[:n]:
            r = best.resource
            also = list(dict.fromkeys(f.scan for f in rest if f.scan != best.scan))
            out.append(
                TopResource(
                    id=r.resource_id,
                    scan=best.scan,
                    also_found_by=also or None,
                    reason=resource_reason(r, scan_name=best.scan, analysis_days=best.scan_days),
                    account=resource_account(r),
                    group=best.group if group_by not in (None, ACCOUNT) else None,
                    yearly_potential_savings=r.resource_yearly_potential_savings,
                    waste=r.resource_total_waste,
                )
            )
        return out

    lengths = sorted({r.analysis_days for r in rows if r.analysis_days})
    span = (
        f"{lengths[0]} to {lengths[-1]} days"
        if len(lengths) > 1
        else (f"{lengths[0]} days" if lengths else "its analysis days")
    )
    coverage = (
        f"Each scan's cost and waste cover its own analysis days ({span}, ending at its last run), so they "
        "do not add up across scans; yearly_potential_savings is that waste annualised (waste / analysis "
        "days x 365), the figure that adds up. Amounts are in the account currency."
    )
    if overlaps:
        extra = sum(o.not_counted for o in overlaps)
        notes.append(
            f"{len(overlaps)} resources were flagged by more than one scan (alternative actions, e.g. stop an "
            f"idle instance or downsize it): each counts once, with its largest finding; {extra:,.2f} a year of "
            "overlapping findings is left out of the grand total (see overlaps)."
        )
    if failed:
        notes.append(
            f"Could not fetch {len(failed)} scan(s): {', '.join(fence(n) for n in failed)}; the totals leave them "
            "out. Retry in a moment (refresh=true) or call get_scan_recommendations for that scan."
        )
    answer = SavingsSummary(
        yearly_potential_savings=grand,
        monthly_equivalent=grand / 12,
        resource_count=len(counted),
        sum_of_scan_totals=sum_of_scans,
        scans=rows,
        top_resources=top(top_n),
        group_by=group_by,
        groups=groups,
        overlaps=sorted(overlaps, key=lambda o: (-o.counted, o.id)),
        coverage=coverage,
        incomplete=bool(failed),
        truncated=len(counted) > top_n,
        notes=notes,
    )
    shown = len(answer.top_resources)
    while shown > 1 and len(answer.model_dump_json(exclude_none=True).encode()) > ANSWER_BUDGET_BYTES:
        shown = max(1, shown * 3 // 4)
        answer.top_resources = top(shown)
        answer.truncated = True
    if len(answer.overlaps) > 5 and len(answer.model_dump_json(exclude_none=True).encode()) > ANSWER_BUDGET_BYTES:
        answer.overlaps = answer.overlaps[:5]
        answer.truncated = True
    if shown < min(top_n, len(counted)):
        notes.append(f"Listing {shown} resources (of top_n={top_n}) to keep the answer within 8 KB.")
    if len(counted) > shown:
        notes.append(
            f"Top {shown} of {len(counted)} resources. For more: get_scan_recommendations(scan=<name>, top_n=...) "
            "lists one scan's resources by group."
        )
    answer.notes = notes
    return answer
