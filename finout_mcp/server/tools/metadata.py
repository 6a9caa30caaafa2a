"""Virtual tag metadata: owners, budgets, notification endpoints per tag value."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.api.models import ValueMetadata
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import DESTRUCTIVE_IDEMPOTENT, READ, DryRun, Envelope, TagRef, ToolCollector
from finout_mcp.services.writes import Writer, WriteResult


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


async def update_virtual_tag_metadata(
    ctx: Context,
    tag: TagRef,
    values: Annotated[
        dict[str, ValueMetadata],
        Field(
            description="Per tag value (names without dots): {'groups': [...], 'customMetadata': {...}, "
            "'endpoints': [endpoint ids from list_endpoints]}."
        ),
    ],
    mode: Annotated[
        Literal["merge", "replace"],
        Field(
            description="merge (default): keep other values and existing entries, union lists, "
            "overwrite given custom fields. replace: the given map becomes all of the tag's metadata."
        ),
    ] = "merge",
    dry_run: DryRun = False,
) -> WriteResult:
    """Set metadata of a virtual tag's values (endpoint ids from list_endpoints); merges by default (the
    full map is sent, as Finout replaces it). Returns a change_id for undo_change."""
    s = get_state(ctx)
    return await Writer(s.client, s.catalog, s.changelog).update_metadata(tag, values, mode, dry_run=dry_run)


def register(server: ToolCollector, *, read_only: bool) -> None:
    server.add_tool(get_virtual_tag_metadata, annotations=READ, title="Read virtual tag metadata")
    if not read_only:
        server.add_tool(
            update_virtual_tag_metadata,
            annotations=DESTRUCTIVE_IDEMPOTENT,
            title="Update virtual tag metadata",
        )
