"""``undo_change``: revert one recorded write."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import DESTRUCTIVE, DryRun, ToolCollector
from finout_mcp.services.writes import Writer, WriteResult


async def undo_change(
    ctx: Context,
    change_id: Annotated[
        str,
        Field(
            description="The change_id a write returned, e.g. chg_20261125T120501Z_3f9a.",
            min_length=1,
            max_length=200,
        ),
    ],
    dry_run: DryRun = False,
    force: Annotated[
        bool, Field(description="true: undo even if the target changed since (overwrites the later edit).")
    ] = False,
) -> WriteResult:
    """Revert one recorded write: delete a created tag, restore a previous version or metadata, recreate a
    deleted tag. Refused if the target changed since, unless force=true. The undo is recorded too (undo
    it to re-apply)."""
    s = get_state(ctx)
    return await Writer(s.client, s.catalog, s.changelog).undo(change_id, dry_run=dry_run, force=force)


def register(server: ToolCollector, *, read_only: bool) -> None:
    if not read_only:
        server.add_tool(undo_change, annotations=DESTRUCTIVE, title="Undo a recorded write")
