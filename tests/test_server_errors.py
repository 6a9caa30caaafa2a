"""The server's error translation: API errors carry facts, and the advice that names a tool is
added here, in the server layer — never in ``finout_mcp.api``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import finout_mcp.api
from finout_mcp.api.budget import GENERATE_QUERY, LocalRateBudget
from finout_mcp.api.errors import RateLimitedError
from finout_mcp.sandbox import Sandbox
from finout_mcp.sandbox.faults import Fault
from finout_mcp.server.errors import describe
from finout_mcp.server.tools.registry import TOOLSETS
from tests.support import TODAY, call_error, demo

TAG_RULE = {
    "to": "Checkout",
    "filter": {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "checkout"},
}


def _texts(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module (docstrings, messages, f-string parts), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
    return found


def test_no_text_in_the_api_layer_names_a_tool() -> None:
    tools = {spec.name for specs in TOOLSETS.values() for spec in specs}
    api_dir = Path(finout_mcp.api.__file__).parent
    modules = sorted(api_dir.rglob("*.py"))
    assert len(modules) > 5 and "list_virtual_tags" in tools  # the scan sees the real package and tools
    naming = [
        f"{module.relative_to(api_dir)}:{line} names {tool}"
        for module in modules
        for line, literal in _texts(module)
        for tool in tools
        if tool in literal
    ]
    assert naming == [], "advice naming a tool belongs to finout_mcp.server.errors"


async def test_a_create_that_may_have_happened_says_so_and_names_the_tool_that_lists_tags(tmp_path: Path) -> None:
    sb = Sandbox(seed=7, today=TODAY, compute_s=0)
    sb.faults.script("POST /v1/virtual-tags", [Fault(drop=True)])
    async with demo(tmp_path, sandbox=sb) as (client, _):
        message = await call_error(
            client, "create_virtual_tag", {"name": "Product", "rules": [TAG_RULE], "default_value": "unallocated"}
        )
    assert "may have been created anyway" in message  # the fact, from the API layer
    assert "Check with list_virtual_tags first" in message  # the tool, from the server layer
    assert "temporary" not in message  # a create is never offered as safe to retry blindly


async def test_a_create_endpoint_that_may_have_happened_names_list_endpoints(tmp_path: Path) -> None:
    sb = Sandbox(seed=7, today=TODAY, compute_s=0)
    sb.faults.script("POST /v1/endpoints", [Fault(status=500)])
    async with demo(tmp_path, sandbox=sb) as (client, _):
        message = await call_error(
            client, "create_endpoint", {"type": "email", "name": "Reliability", "to": "sre@example.com"}
        )
    assert "endpoint may have been created anyway" in message and "Check with list_endpoints first" in message


async def test_an_id_finout_does_not_know_points_at_the_tool_that_lists_them(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _):
        message = await call_error(client, "get_scan_recommendations", {"scan": "scan-that-does-not-exist"})
    assert "list_costguard_scans" in message


async def test_a_spent_daily_query_cap_points_at_the_v1_tool_that_still_answers() -> None:
    budget = LocalRateBudget(per_minute={}, per_day={GENERATE_QUERY: 0})
    with pytest.raises(RateLimitedError) as info:
        await budget.acquire(GENERATE_QUERY)
    assert "query_view_costs" not in str(info.value)  # the API layer states the cap
    message = describe(info.value)
    assert "10,000 queries a day" in message and "query_view_costs answers from a saved view" in message
