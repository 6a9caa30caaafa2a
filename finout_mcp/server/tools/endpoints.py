"""Notification endpoints (e-mail, Slack, MS Teams)."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from finout_mcp.api.models import Endpoint
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import READ, WRITE_IDEMPOTENT, DryRun, ToolSpec
from finout_mcp.services.results import Envelope
from finout_mcp.services.safety import mask_endpoint
from finout_mcp.services.writes import WriteResult


class EndpointsResult(Envelope):
    endpoints: list[Endpoint]


async def list_endpoints(
    ctx: Context,
    type: Annotated[
        Literal["email", "slack", "msteams"] | None, Field(description="Only endpoints of this type.")
    ] = None,
) -> EndpointsResult:
    """Notification endpoints (id, type, name, target; Slack webhooks masked). Their ids go in tag
    metadata."""
    eps = (await get_state(ctx).client.list_endpoints()).endpoints
    chosen = [mask_endpoint(e) for e in eps if type is None or e.type == type]
    return EndpointsResult(endpoints=chosen, notes=["Slack webhook URLs are masked (host and last 4 characters)."])


async def create_endpoint(
    ctx: Context,
    type: Annotated[Literal["email", "slack"], Field(description="email or slack (MS Teams cannot be created).")],
    name: Annotated[str, Field(description="A name people will recognise.", min_length=1, max_length=200)],
    to: Annotated[
        str,
        Field(
            description="E-mail address(es), comma-separated; or a Slack webhook https://hooks.slack.com/services/…"
        ),
    ],
    dry_run: DryRun = False,
) -> WriteResult:
    """Create an e-mail or Slack endpoint; address or webhook validated; idempotent by type and name. The
    API cannot delete endpoints: dry_run first."""
    s = get_state(ctx)
    return await s.writer(ctx).create_endpoint(type, name, to, dry_run=dry_run)


TOOLS = (
    ToolSpec(list_endpoints, READ, "List notification endpoints"),
    ToolSpec(create_endpoint, WRITE_IDEMPOTENT, "Create an endpoint"),
)
