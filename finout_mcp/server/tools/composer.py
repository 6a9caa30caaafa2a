"""``compose_filter``: turn an intent into a valid Finout filter, checked against the account."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.server.errors import tool_guard
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import COMPUTE, FILTER_DESCRIPTION, FilterSpec
from finout_mcp.services.composer import ComposeResult, compose


async def compose_filter(
    ctx: Context,
    intent: Annotated[FilterSpec, Field(description=FILTER_DESCRIPTION)],
    check_values: Annotated[
        bool, Field(description="true: warn about values that do not exist for their key (closest shown).")
    ] = True,
) -> ComposeResult:
    """Build a valid nested Finout filter from a structured intent (or validate a raw Finout filter):
    keys resolved by key or display name, operators and values shaped, NOT pushed down, output
    flattened. Returns the canonical filter, a readable one-line form, and findings (errors block
    any write; warnings, e.g. a value not seen yet, do not). Use it before create_virtual_tag,
    update_virtual_tag or get_scan_recommendations' filter, and fix every error it reports."""
    state = get_state(ctx)
    return await compose(intent, state.catalog, check_values=check_values)


def register(server: MCPServer, *, read_only: bool) -> None:
    server.add_tool(tool_guard(compose_filter), annotations=COMPUTE, title="Compose a Finout filter")
