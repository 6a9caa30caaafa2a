"""``undo_change``: revert one recorded write."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.server.errors import tool_guard
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import DESTRUCTIVE, DryRun
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
    """Revert one write recorded in the change log: deletes a created tag, restores a previous
    version or metadata, recreates a deleted tag with its metadata. Refuses if the target changed
    since, unless force=true. The undo is itself recorded (undo it to re-apply)."""
    s = get_state(ctx)
    return await Writer(s.client, s.catalog, s.changelog).undo(change_id, dry_run=dry_run, force=force)


def register(server: MCPServer, *, read_only: bool) -> None:
    if not read_only:
        server.add_tool(tool_guard(undo_change), annotations=DESTRUCTIVE, title="Undo a recorded write")
