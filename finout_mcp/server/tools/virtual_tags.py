"""Virtual tags: list, read, lint, and the safe writes (create, update, clone, delete)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from finout_mcp.api.models import TagReference, Timeframe, iso_utc, rule_number
from finout_mcp.filters.render import render
from finout_mcp.server.confirm import Confirm, Preview, answered_no, confirmed_version, message, preview_if_asking
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import (
    COMPUTE,
    DESTRUCTIVE,
    DESTRUCTIVE_IDEMPOTENT,
    FILTER_REF,
    READ,
    WRITE_IDEMPOTENT,
    DryRun,
    ExpectedVersion,
    FilterSpec,
    IncludeBody,
    Refresh,
    TagRef,
    ToolSpec,
)
from finout_mcp.services.diffs import target_text
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence
from finout_mcp.services.impact import ImpactEstimate, estimate_impact
from finout_mcp.services.keys import key_index
from finout_mcp.services.lint import LintReport, RuleSpec, lint_all, lint_rules, rules_from_tag
from finout_mcp.services.periods import Period, resolve_window
from finout_mcp.services.results import Envelope
from finout_mcp.services.search import search_named
from finout_mcp.services.writes import WriteResult


class RuleInput(BaseModel):
    """One rule: costs matching ``filter`` get the value ``to`` (first matching rule wins)."""

    model_config = ConfigDict(populate_by_name=True)

    to: str | TagReference = Field(
        description="Value for matching costs, e.g. 'Checkout'; or {'key': <tag id>} for another tag's value."
    )
    filter: FilterSpec = Field(validation_alias=AliasChoices("filter", "filters"), description=FILTER_REF)
    timeframe: Timeframe | None = Field(
        default=None,
        description="Optional {'from', 'to'}: epoch ms or ISO dates; either end may be left open.",
    )

    def spec(self) -> RuleSpec:
        return RuleSpec(to=self.to, filter=self.filter, timeframe=self.timeframe)


Rules = Annotated[
    list[RuleInput],
    Field(description="Rules in priority order (first match wins), each {'to', 'filter'}.", max_length=1000),
]


EstimateImpact = Annotated[
    bool,
    Field(
        description="With dry_run=true: also estimate the dollars each rule would capture and each value would get "
        "(update: moving between values), with Finout API v2 queries over impact_period."
    ),
]
ImpactPeriod = Annotated[Period, Field(description="Period of the estimate (at most 60 days).")]


class TagWriteResult(WriteResult):
    impact: ImpactEstimate | None = Field(
        default=None, description="With estimate_impact=true: the dollar impact."
    )


async def _with_impact(
    ctx: Context,
    result: WriteResult,
    estimate: bool,
    period: str,
    *,
    current_tag_id: str | None,
    include_body: bool,
) -> TagWriteResult:
    """The write result, with the dollar estimate when asked; the body the estimate read (and the
    diff's raw filters) stay out of the answer unless include_body=true."""
    out = TagWriteResult(**dict(result))
    if estimate and result.status == "dry_run" and result.body is not None:
        state = get_state(ctx)
        window = resolve_window(period=period, today=state.today())
        await ctx.report_progress(0, 1, "estimating the impact with Finout API v2 queries")
        out.impact = await estimate_impact(state.cost_queries, result.body, window, current_tag_id=current_tag_id)
    elif estimate and result.status != "dry_run":
        out.notes.append("No impact estimate: the tag was not a dry run (nothing new to estimate).")
    if not include_body:
        out.body = None
        out.diff = out.diff.without_filters() if out.diff is not None else None
    return out


def _needs_dry_run(estimate: bool, dry_run: bool) -> None:
    if estimate and not dry_run:
        raise InputError(
            "estimate_impact needs dry_run=true: estimate first, then write.",
            hint="Call with dry_run=true and estimate_impact=true, check the dollars, then call with dry_run=false.",
        )


UtcTime = Annotated[
    str | None, Field(description="ISO 8601, UTC (None when Finout gave none or it is unreadable).")
]


class TagListItem(BaseModel):
    id: str
    name: str
    rules: int
    default_value: str | TagReference | None = None
    default_value_readable: str | None = Field(
        default=None,
        description="The default value as a person reads it (another tag's value by that tag's name).",
    )
    updated_at: UtcTime = None


class TagList(Envelope):
    tags: list[TagListItem]
    total: int
    truncated: bool = False


class ReadableTimeframe(BaseModel):
    from_: UtcTime = Field(default=None, alias="from")
    to: UtcTime = None

    @classmethod
    def of(cls, tf: Timeframe | None) -> ReadableTimeframe | None:
        return None if tf is None else cls.model_validate({"from": iso_utc(tf.from_), "to": iso_utc(tf.to)})


class RuleView(BaseModel):
    index: int = Field(description="1-based position; rules are evaluated in this order.")
    to: str | TagReference
    to_readable: str | None = Field(
        default=None, description="The rule's value as a person reads it (another tag's value by that tag's name)."
    )
    readable: str
    timeframe: ReadableTimeframe | None = Field(
        default=None, description="When the rule applies (ISO 8601 UTC; an open end is None)."
    )
    filter: dict[str, Any] | None = None


class TagDetail(Envelope):
    id: str
    name: str
    default_value: str | TagReference | None = Field(
        description="Value for cost no rule matches; an object means the value of another tag."
    )
    default_value_readable: str | None = None
    category: str | None = None
    created_at: UtcTime = None
    updated_at: UtcTime = None
    updated_by: str | None = None
    rules: list[RuleView]


async def list_virtual_tags(
    ctx: Context,
    search: Annotated[str | None, Field(description="Text to find in tag names.")] = None,
    limit: Annotated[int, Field(description="Maximum tags to return.", ge=1, le=1000)] = 100,
    refresh: Refresh = False,
) -> TagList:
    """List virtual tags (allocation rules): id, name, rule count, default value."""
    tags = await get_state(ctx).catalog.virtual_tags(refresh=refresh)
    names = {t.id: t.name for t in tags}
    chosen = search_named(tags, search, lambda t: t.name)
    items = [
        TagListItem(
            id=t.id,
            name=t.name,
            rules=len(t.rules),
            default_value=t.default_value,
            default_value_readable=target_text(t.default_value, names),
            updated_at=iso_utc(t.updated_at),
        )
        for t in chosen[:limit]
    ]
    return TagList(tags=items, total=len(chosen), truncated=len(chosen) > limit)


async def get_virtual_tag(
    ctx: Context,
    tag: TagRef,
    include_filters: Annotated[
        bool, Field(description="true: also return each rule's raw Finout filter (larger answer).")
    ] = False,
) -> TagDetail:
    """One virtual tag: each rule as a readable one-line filter, in evaluation order, and its default
    value. Use before update_virtual_tag."""
    state = get_state(ctx)
    listed = await state.catalog.resolve_tag(tag)
    t = await state.client.get_virtual_tag(listed.id)
    index = key_index(state.catalog, await state.catalog.keys())
    names = {x.id: x.name for x in await state.catalog.virtual_tags()}
    rules = []
    for i, r in enumerate(t.rules):
        text = render(r.filters, index.display_name) if r.filters else "(no filter)"
        rules.append(
            RuleView(
                index=rule_number(i),
                to=r.to,
                to_readable=target_text(r.to, names),
                readable=text,
                timeframe=ReadableTimeframe.of(r.timeframe),
                filter=r.filters if include_filters else None,
            )
        )
    notes = []
    for r in t.rules:
        if isinstance(r.to, TagReference):
            notes.append(
                f"A rule takes its value from tag {fence(names.get(r.to.key, r.to.key))} (id {r.to.key})."
            )
            break
    return TagDetail(
        id=t.id,
        name=t.name,
        default_value=t.default_value,
        default_value_readable=target_text(t.default_value, names),
        category=t.category,
        created_at=iso_utc(t.created_at),
        updated_at=iso_utc(t.updated_at),
        updated_by=t.updated_by,
        rules=rules,
        notes=notes,
    )


async def lint_virtual_tag(
    ctx: Context,
    tag: Annotated[
        str | None, Field(description="A tag's id or exact name. Give tag or rules, or neither to lint every tag.")
    ] = None,
    rules: Annotated[
        list[RuleInput] | None, Field(description="Proposed rules, as for create_virtual_tag.")
    ] = None,
    default_value: Annotated[
        str | TagReference | None,
        Field(description="Default value of the proposed rules (a value, or {'key': <tag id>} as for create)."),
    ] = None,
) -> LintReport:
    """Check virtual tag rules before writing: filter errors with did-you-mean, rules shadowed by an
    earlier rule (first match wins), conditions an earlier rule already takes, duplicates, values
    differing only in case, references to missing tags, dotted values, no default.
    With neither tag nor rules: every tag at once, in brief."""
    state = get_state(ctx)
    if tag is None and rules is None:
        if default_value is not None:
            raise InputError("default_value goes with rules: give the proposed rules too.")
        return await lint_all(await state.catalog.virtual_tags(refresh=True), state.catalog)
    if tag is not None and rules is not None:
        raise InputError("Give one of tag (an existing tag's id or name) or rules (proposed rules), not both.")
    if tag is not None:
        listed = await state.catalog.resolve_tag(tag)
        t = await state.client.get_virtual_tag(listed.id)
        return await lint_rules(rules_from_tag(t), t.default_value, state.catalog, tag_id=t.id)
    assert rules is not None
    return await lint_rules([r.spec() for r in rules], default_value, state.catalog, before=[])


async def create_virtual_tag(
    ctx: Context,
    name: Annotated[str, Field(description="The new tag's name, e.g. 'Team'.", min_length=1, max_length=200)],
    rules: Rules,
    default_value: Annotated[
        str | TagReference | None,
        Field(
            description="Value for costs no rule matches, e.g. 'unallocated'; or {'key': <tag id>} to take "
            "another tag's value there."
        ),
    ] = None,
    dry_run: DryRun = False,
    include_body: IncludeBody = False,
    estimate_impact: EstimateImpact = False,
    impact_period: ImpactPeriod = "last_30_days",
) -> TagWriteResult:
    """Create a virtual tag. Find keys and values first (list_megabill_keys, list_key_values or
    compose_filter). Every rule is composed and linted; nothing is written on any error. Call with
    dry_run=true first and show the plan. Same name and content returns the existing tag. Returns a
    change_id for undo_change. dry_run with estimate_impact=true also shows the dollars per rule and value."""
    _needs_dry_run(estimate_impact, dry_run)
    result = (
        await get_state(ctx)
        .writer(ctx)
        .create_tag(
            name,
            [r.spec() for r in rules],
            default_value,
            dry_run=dry_run,
            include_body=include_body or estimate_impact,  # the estimate reads the body
        )
    )
    return await _with_impact(
        ctx, result, estimate_impact, impact_period, current_tag_id=None, include_body=include_body
    )


async def preview_update(
    ctx: Context,
    tag: str,
    name: str | None,
    rules: list[RuleInput] | None,
    default_value: str | TagReference | None,
    dry_run: bool,
) -> Preview:
    async def plan() -> WriteResult:
        _, _, result = (
            await get_state(ctx)
            .writer(ctx)
            .plan_update(
                tag,
                name=name,
                rules=[r.spec() for r in rules] if rules is not None else None,
                default_value=default_value,
            )
        )
        return result

    return await preview_if_asking(ctx, dry_run, plan)


async def ask_update(
    preview: Annotated[Preview, Resolve(preview_update)],
) -> Confirm | Elicit[Confirm]:
    if preview.plan is None:
        return Confirm()
    return Elicit(
        message(f"Update virtual tag {preview.plan.tag.name if preview.plan.tag else ''}", preview.plan), Confirm
    )


async def update_virtual_tag(
    ctx: Context,
    tag: TagRef,
    preview: Annotated[Preview, Resolve(preview_update)],
    answer: Annotated[ElicitationResult[Confirm], Resolve(ask_update)],
    name: Annotated[str | None, Field(description="New name; omit to keep.")] = None,
    rules: Annotated[
        list[RuleInput] | None,
        Field(
            description="The complete new rule list (replaces all rules); omit to keep the rules.",
            max_length=1000,
        ),
    ] = None,
    default_value: Annotated[
        str | TagReference | None,
        Field(description="New default value, or {'key': <tag id>} for another tag's value; omit to keep."),
    ] = None,
    dry_run: DryRun = False,
    expected_version: ExpectedVersion = None,
    include_body: IncludeBody = False,
    estimate_impact: EstimateImpact = False,
    impact_period: ImpactPeriod = "last_30_days",
) -> TagWriteResult:
    """Change a virtual tag (read it first with get_virtual_tag); fields you omit keep their values (a
    complete body is sent). rules replaces every rule: to add one condition, read the rules with
    get_virtual_tag(tag, include_filters=true), edit that rule's filter, send the whole list back
    (each rule's to, filter, timeframe as read). dry_run=true shows a rule-by-rule readable diff, the dependent tags it
    breaks, and an expected_version: pass it back with dry_run=false to apply exactly that plan; with
    estimate_impact=true also the dollars moving between values. Returns a change_id for undo_change."""
    _needs_dry_run(estimate_impact, dry_run)
    if (no := answered_no(answer, preview)) is not None:
        return TagWriteResult(**dict(no))
    result = (
        await get_state(ctx)
        .writer(ctx)
        .update_tag(
            tag,
            name=name,
            rules=[r.spec() for r in rules] if rules is not None else None,
            default_value=default_value,
            dry_run=dry_run,
            expected_version=confirmed_version(answer, preview, expected_version),
            include_body=include_body or estimate_impact,  # the estimate reads the body
        )
    )
    tag_id = result.tag.id if result.tag is not None else None
    return await _with_impact(
        ctx, result, estimate_impact, impact_period, current_tag_id=tag_id, include_body=include_body
    )


async def clone_virtual_tag(
    ctx: Context,
    tag: TagRef,
    new_name: Annotated[str, Field(description="Name of the copy.", min_length=1, max_length=200)],
    dry_run: DryRun = False,
    include_body: IncludeBody = False,
) -> WriteResult:
    """Copy a virtual tag's rules and default value under a new name (not its metadata). Returns a
    change_id."""
    return await get_state(ctx).writer(ctx).clone_tag(tag, new_name, dry_run=dry_run, include_body=include_body)


async def preview_delete(ctx: Context, tag: str, confirm_name: str, dry_run: bool, force: bool) -> Preview:
    async def plan() -> WriteResult:
        _, _, result = await get_state(ctx).writer(ctx).plan_delete(tag, confirm_name, force=force)
        return result

    return await preview_if_asking(ctx, dry_run, plan)


async def ask_delete(
    preview: Annotated[Preview, Resolve(preview_delete)],
) -> Confirm | Elicit[Confirm]:
    if preview.plan is None:
        return Confirm()
    return Elicit(
        message(f"Delete virtual tag {preview.plan.tag.name if preview.plan.tag else ''}", preview.plan), Confirm
    )


async def delete_virtual_tag(
    ctx: Context,
    tag: TagRef,
    confirm_name: Annotated[str, Field(description="Must equal the tag's current name exactly.")],
    preview: Annotated[Preview, Resolve(preview_delete)],
    answer: Annotated[ElicitationResult[Confirm], Resolve(ask_delete)],
    dry_run: DryRun = False,
    force: Annotated[
        bool, Field(description="true: delete even though other tags refer to it (their references break).")
    ] = False,
    expected_version: ExpectedVersion = None,
) -> WriteResult:
    """Delete a virtual tag; confirm_name must equal its current name. Refused while other tags filter on
    it or take their value from it (each is named), unless force=true. undo_change recreates it with its
    metadata (new id) and repoints those references."""
    if (no := answered_no(answer, preview)) is not None:
        return no
    return (
        await get_state(ctx)
        .writer(ctx)
        .delete_tag(
            tag,
            confirm_name,
            dry_run=dry_run,
            force=force,
            expected_version=confirmed_version(answer, preview, expected_version),
        )
    )


TOOLS = (
    ToolSpec(list_virtual_tags, READ, "List virtual tags"),
    ToolSpec(get_virtual_tag, READ, "Read a virtual tag"),
    ToolSpec(lint_virtual_tag, COMPUTE, "Check virtual tag rules"),
    ToolSpec(create_virtual_tag, WRITE_IDEMPOTENT, "Create a virtual tag"),
    ToolSpec(update_virtual_tag, DESTRUCTIVE_IDEMPOTENT, "Update a virtual tag"),
    ToolSpec(clone_virtual_tag, WRITE_IDEMPOTENT, "Clone a virtual tag"),
    ToolSpec(delete_virtual_tag, DESTRUCTIVE, "Delete a virtual tag"),
)
