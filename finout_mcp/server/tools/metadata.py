"""Virtual tag metadata: owners, budgets, notification endpoints per tag value."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field

from finout_mcp.api.models import ValueMetadata
from finout_mcp.server.confirm import Confirm, Preview, answered_no, confirmed_version, message, preview_if_asking
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import (
    DESTRUCTIVE_IDEMPOTENT,
    MAX_METADATA_VALUES,
    READ,
    DryRun,
    ExpectedVersion,
    IncludeBody,
    TagRef,
    ToolSpec,
)
from finout_mcp.services.results import Envelope
from finout_mcp.services.writes import WriteResult


class MetadataResult(Envelope):
    tag_id: str
    tag_name: str
    values: dict[str, ValueMetadata] = Field(description="Per tag value: groups, customMetadata, endpoints.")


async def get_virtual_tag_metadata(ctx: Context, tag: TagRef) -> MetadataResult:
    """Metadata of a virtual tag's values: account groups, custom fields (owner, budget…), endpoint ids."""
    s = get_state(ctx)
    listed = await s.catalog.resolve_tag(tag)
    md = await s.client.get_virtual_tag_metadata(listed.id)
    notes = [] if md.metadata else ["This tag has no metadata yet."]
    return MetadataResult(tag_id=listed.id, tag_name=listed.name, values=md.metadata, notes=notes)


Values = Annotated[
    dict[str, ValueMetadata],
    Field(
        description="Per tag value (names without dots): {'groups': [...], 'customMetadata': {...}, "
        "'endpoints': [endpoint ids from list_endpoints]}.",
        max_length=MAX_METADATA_VALUES,
    ),
]
Mode = Annotated[
    Literal["merge", "replace"],
    Field(
        description="merge (default): keep other values and existing entries, union lists, "
        "overwrite given custom fields. replace: the given map becomes all of the tag's metadata."
    ),
]


async def preview_metadata(
    ctx: Context, tag: str, values: dict[str, ValueMetadata], mode: str, dry_run: bool
) -> Preview:
    async def plan() -> WriteResult:
        _, _, _, result = (
            await get_state(ctx)
            .writer(ctx)
            .plan_metadata(tag, values, "replace" if mode == "replace" else "merge")
        )
        return result

    return await preview_if_asking(ctx, dry_run, plan)


async def ask_metadata(
    preview: Annotated[Preview, Resolve(preview_metadata)],
) -> Confirm | Elicit[Confirm]:
    if preview.plan is None:
        return Confirm()
    name = preview.plan.tag.name if preview.plan.tag else ""
    return Elicit(message(f"Change the metadata of virtual tag {name}", preview.plan), Confirm)


async def update_virtual_tag_metadata(
    ctx: Context,
    tag: TagRef,
    values: Values,
    preview: Annotated[Preview, Resolve(preview_metadata)],
    answer: Annotated[ElicitationResult[Confirm], Resolve(ask_metadata)],
    mode: Mode = "merge",
    dry_run: DryRun = False,
    expected_version: ExpectedVersion = None,
    include_body: IncludeBody = False,
) -> WriteResult:
    """Set metadata of a virtual tag's values (endpoint ids from list_endpoints); merges by default (the
    full map is sent, as Finout replaces it). dry_run=true shows per-value changes and an
    expected_version to apply exactly that. Returns a change_id for undo_change."""
    if (no := answered_no(answer, preview)) is not None:
        return no
    return (
        await get_state(ctx)
        .writer(ctx)
        .update_metadata(
            tag,
            values,
            mode,
            dry_run=dry_run,
            expected_version=confirmed_version(answer, preview, expected_version),
            include_body=include_body,
        )
    )


TOOLS = (
    ToolSpec(get_virtual_tag_metadata, READ, "Read virtual tag metadata"),
    ToolSpec(update_virtual_tag_metadata, DESTRUCTIVE_IDEMPOTENT, "Update virtual tag metadata"),
)
