"""The public contract: tool names, argument names, schemas and annotations.

``snapshots/tools_list.json`` holds the whole ``tools/list`` answer. An intended change is
recorded with ``UPDATE_SNAPSHOTS=1 pytest tests/test_contract.py``; any other change fails.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tests.support import READ_TOOLS, WRITE_TOOLS, call, demo

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"

CONTRACT_ARGS = {
    "list_views": {"search"},
    "query_view_costs": {
        "view",
        "start",
        "end",
        "period",
        "cost_type",
        "compare_previous",
        "compare_start",
        "compare_end",
    },
    "query_costs": {"filter", "group_by", "start", "end", "period", "measurement", "granularity", "top_n"},
    "list_megabill_keys": {"search", "cost_center"},
    "list_key_values": {"cost_center", "key", "search"},
    "compose_filter": {"intent"},
    "get_virtual_tag": {"tag"},
    "lint_virtual_tag": {"tag", "rules"},
    "create_virtual_tag": {"name", "rules", "default_value", "dry_run"},
    "update_virtual_tag": {"tag", "name", "rules", "default_value", "dry_run"},
    "clone_virtual_tag": {"tag", "new_name"},
    "delete_virtual_tag": {"tag", "confirm_name", "force"},
    "get_virtual_tag_metadata": {"tag"},
    "update_virtual_tag_metadata": {"tag", "values", "mode"},
    "get_scan_recommendations": {"scan", "filter", "group_by"},
    "summarize_savings": {"group_by", "top_n"},
    "create_endpoint": {"type", "name", "to"},
    "undo_change": {"change_id", "dry_run", "force"},
    "list_changes": {"tag", "limit"},
    "find_cost_anomalies": {"view", "period", "start", "end"},
    "forecast_costs": {"view", "horizon"},
}


def _listing(tools: list[Any]) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


async def test_tools_list_matches_the_snapshot(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        listing = _listing((await client.list_tools()).tools)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert json.loads(json.dumps(listing, sort_keys=True)) == expected, (
        "tools/list changed: if intended, run UPDATE_SNAPSHOTS=1 pytest tests/test_contract.py and commit"
    )


async def test_names_arguments_and_annotations(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    for name, args in CONTRACT_ARGS.items():
        assert args <= set(tools[name].input_schema["properties"]), name
    for name, tool in tools.items():
        a = tool.annotations
        assert a is not None and tool.description and tool.output_schema, name
        assert a.read_only_hint is (name in READ_TOOLS), name
        for prop, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{name}.{prop} has no description"
    assert tools["delete_virtual_tag"].annotations.destructive_hint  # type: ignore[union-attr]
    assert tools["update_virtual_tag_metadata"].annotations.destructive_hint  # type: ignore[union-attr]
    assert tools["update_virtual_tag"].annotations.destructive_hint  # replaces the rules  # type: ignore[union-attr]
    assert not tools["create_virtual_tag"].annotations.destructive_hint  # type: ignore[union-attr]
    for name in WRITE_TOOLS - {"undo_change"}:
        assert "dry_run" in tools[name].input_schema["properties"], name


async def test_read_only_lists_no_write_tool(tmp_path: Path) -> None:
    async with demo(tmp_path, read_only=True) as (client, _sb):
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == READ_TOOLS
        result = await client.call_tool("create_virtual_tag", {"name": "x", "rules": []})
        assert result.is_error


async def test_toolsets_expose_only_their_domains(tmp_path: Path) -> None:
    async with demo(tmp_path, toolsets=["views", "costguard"]) as (client, _sb):
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {
            "list_views",
            "query_view_costs",
            "list_costguard_scans",
            "get_scan_recommendations",
            "summarize_savings",
        }


async def test_bad_arguments_are_clear_errors_not_tracebacks(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        cases = [
            ("query_view_costs", {"view": "Costs by team", "period": "last_century"}),
            ("query_view_costs", {}),
            ("list_megabill_keys", {"limit": 0}),
            ("create_virtual_tag", {"name": "x", "rules": "not a list"}),
            ("compose_filter", {"intent": {"key": "pl_app", "op": "sounds like", "value": "x"}}),
        ]
        for name, args in cases:
            result = await client.call_tool(name, args)
            message = "".join(getattr(c, "text", "") for c in result.content)
            if name == "compose_filter":
                assert not result.is_error and result.structured_content["ok"] is False  # type: ignore[index]
                assert "oneOf" in message
                continue
            assert result.is_error, name
            assert "Traceback" not in message and message.strip() != f"Error executing tool {name}", message


async def test_the_change_id_example_has_the_shape_writes_return(tmp_path: Path) -> None:
    """A model copies examples: undo_change's must look like the ids that list_changes shows."""
    async with demo(tmp_path) as (client, _sb):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        created = await call(
            client, "create_endpoint", {"type": "email", "name": "Reliability", "to": "sre@example.com"}
        )
    description = tools["undo_change"].input_schema["properties"]["change_id"]["description"]
    example = re.search(r"chg_\S+?(?=[.,;)]?(\s|$))", description)
    assert example is not None, description
    shape = re.compile(r"chg_\d{8}T\d{6}Z_[0-9a-f]{12}")
    assert shape.fullmatch(created["change_id"]) and shape.fullmatch(example.group()), example.group()
