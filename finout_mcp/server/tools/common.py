"""Shared pieces of the tool modules: annotations, the result envelope, argument types."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

# The Finout account is a closed world: the tools only touch the user's own account.
READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
COMPUTE = READ  # pure computation over cached reads (compose_filter, lint_virtual_tag)
WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)
WRITE_IDEMPOTENT = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False
)
DESTRUCTIVE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False)
DESTRUCTIVE_IDEMPOTENT = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
)


class Envelope(BaseModel):
    """Every result carries notes: what the numbers mean, what was cut, what to call next."""

    notes: list[str] = Field(default_factory=list)


FilterSpec = dict[str, Any]
FILTER_DESCRIPTION = (
    "A filter intent or a raw Finout filter (see resource finout://guide/filters). Intent nodes: "
    '{"all": [...]} (AND), {"any": [...]} (OR), {"not": node}, or a condition '
    '{"key": "<key or display name>", "cost_center": "AWS" (optional if unambiguous), '
    '"op": "in|not in|=|!=|contains|not contains|exists|not exists", "values": [...] or "value": "..."}. '
    "Keys and values are checked against the account."
)

ViewRef = Annotated[str, Field(description="The view's id or exact name (see list_views).", min_length=1)]
TagRef = Annotated[
    str, Field(description="The virtual tag's id or exact name (see list_virtual_tags).", min_length=1)
]
DryRun = Annotated[
    bool,
    Field(description="true: validate and return exactly what would be sent, without changing anything."),
]
Refresh = Annotated[bool, Field(description="true: bypass the 10-minute cache and re-read from Finout.")]
