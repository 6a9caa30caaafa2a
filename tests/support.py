"""Test helpers: an in-memory MCP client on the demo sandbox, with a fixed 'today'."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.types import CallToolResult

from finout_mcp.api.models import Resource
from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.server.app import build_server
from finout_mcp.services import costguard
from finout_mcp.services.periods import DateSpan, resolve_span

TODAY = date(2026, 11, 25)

# The contract's tools (DESIGN.md): what every listing must show.
READ_TOOLS = {
    "list_views",
    "query_view_costs",
    "query_costs",
    "list_megabill_keys",
    "list_key_values",
    "compose_filter",
    "list_virtual_tags",
    "get_virtual_tag",
    "lint_virtual_tag",
    "get_virtual_tag_metadata",
    "list_costguard_scans",
    "get_scan_recommendations",
    "summarize_savings",
    "list_endpoints",
    "list_changes",
    "find_cost_anomalies",
    "forecast_costs",
}
WRITE_TOOLS = {
    "create_virtual_tag",
    "update_virtual_tag",
    "clone_virtual_tag",
    "delete_virtual_tag",
    "update_virtual_tag_metadata",
    "create_endpoint",
    "undo_change",
}


@asynccontextmanager
async def demo(
    tmp_path: Path, *, read_only: bool = False, toolsets: list[str] | None = None, sandbox: Sandbox | None = None
) -> AsyncIterator[tuple[Client, Sandbox]]:
    sb = sandbox or Sandbox(seed=7, today=TODAY, compute_s=0)
    # API v2 queries: no compute time and no polling waits (the cadence itself is tested on its own).
    settings = Settings(
        demo=True, read_only=read_only, state_dir=tmp_path / "state", v2_poll_first_s=0, v2_poll_interval_s=0
    )
    server = build_server(settings, sandbox=sb, today=lambda: TODAY, toolsets=toolsets)
    async with Client(server) as client:
        yield client, sb


async def call(client: Client, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured content."""
    result = await client.call_tool(name, args or {})
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, name: str, args: dict[str, Any] | None = None) -> str:
    """Call a tool that must fail with a tool error; return the message."""
    result = await client.call_tool(name, args or {})
    assert result.is_error, f"{name} should have failed: {text(result)[:300]}"
    message = text(result)
    assert "Traceback" not in message
    return message


def another_writer_after_each_put(monkeypatch: Any, sb: Sandbox, default_value: str = "someone-else") -> None:
    """Another writer (a person in Finout's UI) sets the tag's default value right after each of our
    PUTs, before our read-back: the race a write or an undo must report, not hide."""
    from finout_mcp.api.client import FinoutClient

    real_put = FinoutClient.update_virtual_tag

    async def put_then_other_writer(self: FinoutClient, tag_id: str, body: Any) -> Any:
        result = await real_put(self, tag_id, body)
        sb.account.virtual_tags[tag_id]["defaultValue"] = default_value
        return result

    monkeypatch.setattr(FinoutClient, "update_virtual_tag", put_then_other_writer)


def text(result: CallToolResult) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def writes(sb: Sandbox) -> list[tuple[str, str]]:
    """Write requests the sandbox received (method, raw path)."""
    return [
        (r.method, r.raw_path)
        for r in sb.request_log
        if r.method in ("POST", "PUT", "DELETE")
        and not r.raw_path.endswith(("/cost/query-by-view", "/scans-recommendations"))
    ]


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def report(line: str) -> None:
    """A measured figure, shown with ``pytest -s`` (BENCHMARKS.md quotes them)."""
    sys.stderr.write(line.rstrip() + "\n")


def preset_span(period: str, today: date) -> DateSpan:
    """The span of a preset ``period`` relative to ``today``."""
    return resolve_span(period=period, today=today)


def detect_family(resource: Resource, scan_name: str = "") -> str:
    """The scan family :func:`~finout_mcp.services.costguard.resource_reason` words a resource
    by (``ec2``, ``rds``, ``ebs``, ``lb``, ... or ``generic``)."""
    c = costguard._Ctx(resource, scan_name, None)
    return next((name for name, test, _ in costguard._FAMILIES if test(c)), "generic")
