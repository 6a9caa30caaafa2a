"""Dollar impact of a virtual tag before it is written, estimated with Finout API v2 queries.

A virtual tag gives each cost the value of the *first* rule it matches, else the default
value. So rule *i* captures exactly the costs of "rule i's filter AND NOT rule 1 AND … AND NOT
rule i-1". v2 has no NOT: the composer pushes each NOT down to the leaves (``not in`` ↔
``in``, De Morgan on groups), and that filter is queried once per rule over the period. The
default value gets the rest: the period's total minus what the rules capture.

For an update, the tag's *current* allocation comes from one query grouped by the tag itself
(what Finout applies now), so the answer shows dollars moving between values.

Each query must stay within the documented limits ([spec]: 30 leaf conditions, 3 virtual
tags). Rule *i*'s query holds the conditions of rules 1..i, so a long tag can exceed them: the
estimate then covers the rules that fit and says plainly that the rest is too large.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from finout_mcp.api.models import VIRTUAL_TAGS, rule_number
from finout_mcp.services import periods
from finout_mcp.services.composer import compose
from finout_mcp.services.cost_query import (
    MAX_LEAF_CONDITIONS,
    MAX_VIRTUAL_TAGS,
    NO_VALUE,
    CostQueries,
    QueryPiece,
    count_leaves,
    rows_to_series,
    virtual_tags_in,
)
from finout_mcp.services.diffs import target_text
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence
from finout_mcp.services.figures import Money, Pct


class RuleImpact(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    index: int = Field(description="1-based rule position (first match wins).")
    to: str = Field(description="The value the rule gives.")
    amount: Money | None = Field(default=None, description="Cost this rule would capture; None: not estimated.")
    share_pct: Pct | None = None
    conditions: int = Field(
        description="Conditions in this rule's own filter (a query too large to estimate is named in notes)."
    )


class ValueImpact(BaseModel):
    value: str
    amount: Money | None = Field(default=None, description="Cost the value gets with the new rules.")
    current: Money | None = Field(default=None, description="Cost the value gets now (update only).")
    change: Money | None = None


class ImpactEstimate(BaseModel):
    """What the tag would allocate over a period, per rule and per value."""

    period: str
    first_day: date
    last_day: date
    measurement: str
    total: Money = Field(description="All costs of the period (every cost gets some value).")
    complete: bool = Field(description="false: the tag is too large to estimate every rule within the limits.")
    rules: list[RuleImpact]
    default_value: str | None
    default_amount: Money | None = None
    values: list[ValueImpact]
    queries: int = Field(description="Finout API v2 queries run (reused stored results included).")
    notes: list[str] = Field(default_factory=list)


async def estimate_impact(
    cq: CostQueries,
    body: dict[str, Any],
    window: periods.Window,
    *,
    current_tag_id: str | None = None,
    measurement: str = "unblendedCost",
) -> ImpactEstimate:
    """Estimate the allocation of a tag body (``name``, ``rules`` with canonical filters,
    ``defaultValue``) over ``window``; with ``current_tag_id``, also its current allocation."""
    if len(periods.split_windows(window.span, 60)) > 1:
        raise InputError(
            f"An impact estimate covers at most 60 days (one Finout API v2 query per rule); {window.label} is longer.",
            hint="Use impact_period last_30_days (the default) or last_month.",
        )
    rules: Sequence[dict[str, Any]] = body.get("rules") or []
    default = body.get("defaultValue")
    tag_names = {t.id: t.name for t in await cq.catalog.virtual_tags()}
    notes: list[str] = []
    rule_rows: list[RuleImpact] = []
    pieces: list[QueryPiece | None] = []
    complete = True
    previous: list[dict[str, Any]] = []
    for position, rule in enumerate(rules):
        i = rule_number(position)
        flt = rule.get("filters")
        if not isinstance(flt, dict):
            raise InputError(f"Rule {i} has no filter to estimate.")
        to = str(target_text(rule.get("to"), tag_names) or "")
        own = count_leaves(flt)
        if not complete:
            rule_rows.append(RuleImpact(index=i, to=to, conditions=own))
            pieces.append(None)
            continue
        intent: dict[str, Any] = {"all": [flt, *({"not": p} for p in previous)]} if previous else flt
        previous.append(flt)
        composed = await compose(intent, cq.catalog, check_values=False)
        if not composed.ok or composed.filter is None:
            raise InputError(f"Rule {i}'s filter could not be composed for the estimate.")
        leaves = count_leaves(composed.filter)
        v2 = None
        if leaves <= MAX_LEAF_CONDITIONS:
            v2 = await cq.to_v2(composed.filter)
            if len(virtual_tags_in(v2)) > MAX_VIRTUAL_TAGS:
                v2 = None
        if v2 is None:
            complete = False
            notes.append(
                f"Too large to estimate from rule {i} on: its query ('rule {i} and none of the rules above') needs "
                f"{leaves} conditions, or more than {MAX_VIRTUAL_TAGS} virtual tags, and Finout API v2 takes at "
                f"most {MAX_LEAF_CONDITIONS} conditions and {MAX_VIRTUAL_TAGS} virtual tags per query. Rules "
                f"1..{i - 1} are estimated; the default value's share cannot be."
            )
            rule_rows.append(RuleImpact(index=i, to=to, conditions=own))
            pieces.append(None)
            continue
        if rule.get("timeframe"):
            notes.append(f"Rule {i} has a timeframe; its estimate counts the whole period.")
        rule_rows.append(RuleImpact(index=i, to=to, conditions=own))
        span = window.span
        pieces.append(
            QueryPiece(span, cq.body(span, interval="month", measurement=measurement, dims=[], v2_filter=v2))
        )
    span = window.span
    total_piece = QueryPiece(
        span, cq.body(span, interval="month", measurement=measurement, dims=[], v2_filter=None)
    )
    current_piece: QueryPiece | None = None
    dims: list[dict[str, str]] = []
    if current_tag_id is not None:
        dims = [await cq.dimension(VIRTUAL_TAGS, current_tag_id, "The tag being updated")]
        current_piece = QueryPiece(
            span, cq.body(span, interval="month", measurement=measurement, dims=dims, v2_filter=None)
        )
    run = [p for p in pieces if p is not None] + [total_piece] + ([current_piece] if current_piece else [])
    await cq.run_windows(run)

    path = "/data/cost-usage/{queryId}/results"

    def total_of(piece: QueryPiece) -> float:
        assert piece.outcome is not None
        series, _ = rows_to_series(piece.outcome.rows, [], measurement, "month", piece.window, path)
        return sum(p.cost for p in series[0].data)

    total = total_of(total_piece)
    by_value: dict[str, float] = {}
    captured = 0.0
    for row, piece in zip(rule_rows, pieces, strict=True):
        if piece is None:
            continue
        row.amount = total_of(piece)
        row.share_pct = row.amount / total * 100.0 if total else None
        captured += row.amount
        by_value[row.to] = by_value.get(row.to, 0.0) + row.amount
    default_amount: float | None = None
    if isinstance(default, dict):  # another tag's value
        default_label = str(target_text(default, tag_names) or "")
    else:
        default_label = str(default) if isinstance(default, str) and default else NO_VALUE
    if complete:
        default_amount = total - captured
        by_value[default_label] = by_value.get(default_label, 0.0) + default_amount
    current: dict[str, float] = {}
    if current_piece is not None and current_piece.outcome is not None:
        series, _ = rows_to_series(current_piece.outcome.rows, dims, measurement, "month", span, path)
        current = {s.name: sum(p.cost for p in s.data) for s in series if not s.is_total}
    values: list[ValueImpact] = []
    for name in dict.fromkeys([*by_value, *current]):
        after = by_value.get(name) if complete or name in by_value else None
        before = current.get(name, 0.0) if current_piece is not None else None
        change = None if after is None or before is None else after - before
        values.append(ValueImpact(value=name, amount=after, current=before, change=change))
    values.sort(key=lambda v: -abs(v.change if v.change is not None else (v.amount or 0.0)))
    if current_piece is not None:
        moved = sum(v.change for v in values if v.change and v.change > 0)
        notes.insert(0, f"About {moved:,.2f} would move between values over {window.label}.")
    if not rules:
        notes.append(f"No rules: every cost gets the default value {fence(default_label)}.")
    referenced = [v.value for v in values if v.value.startswith("value of tag ")]
    if referenced:
        notes.append(
            f"{', '.join(fence(r) for r in referenced)}: costs that take another tag's value, shown as one "
            "amount (not split by that tag's values); query_costs grouped by that tag splits them."
        )
    return ImpactEstimate(
        period=window.label,
        first_day=span.first,
        last_day=span.last,
        measurement=measurement,
        total=total,
        complete=complete,
        rules=rule_rows,
        default_value=default_label if default else None,
        default_amount=default_amount,
        values=values,
        queries=len(run),
        notes=notes,
    )
