"""``compose_filter``: turn an intent into a valid Finout filter, checked against the account."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import COMPUTE, FILTER_DESCRIPTION, FilterSpec, ToolSpec
from finout_mcp.services.composer import ComposeResult, compose


async def compose_filter(
    ctx: Context,
    intent: Annotated[FilterSpec, Field(description=FILTER_DESCRIPTION)],
    check_values: Annotated[
        bool, Field(description="true: warn about values that do not exist for their key (closest shown).")
    ] = True,
) -> ComposeResult:
    """Build a valid Finout filter from an intent (or check a raw filter): keys resolved by key or display
    name, operators and values shaped, NOT pushed down, flattened. Returns the filter, a readable form
    and findings: errors block any write; warnings (e.g. a value not seen yet) do not. Use before
    writing virtual tags."""
    state = get_state(ctx)
    return await compose(intent, state.catalog, check_values=check_values)


TOOLS = (ToolSpec(compose_filter, COMPUTE, "Compose a Finout filter"),)
