"""One heavy call must not stall the others: CPU-bound work runs off the event loop, and
oversized arguments are refused before any work."""

from __future__ import annotations

from pathlib import Path

import anyio

from finout_mcp.server.tools.common import MAX_ARGUMENT_CHARS, MAX_METADATA_VALUES
from tests.support import demo, text


async def test_a_huge_filter_does_not_stall_a_small_call(tmp_path: Path) -> None:
    intent = {"any": [{"key": "service", "op": "=", "value": f"s{i}"} for i in range(100_000)]}
    order: list[str] = []
    async with demo(tmp_path) as (client, _sb):
        await client.call_tool("list_views", {})  # warm the catalogue

        async def heavy() -> None:
            await client.call_tool("compose_filter", {"intent": intent})
            order.append("heavy")

        async def light() -> None:
            await anyio.sleep(0.05)  # start once the heavy call is under way
            result = await client.call_tool("list_views", {})
            assert not result.is_error
            order.append("light")

        async with anyio.create_task_group() as tg:
            tg.start_soon(heavy)
            tg.start_soon(light)
    assert order == ["light", "heavy"]


async def test_oversized_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        too_long = await client.call_tool("get_virtual_tag", {"tag": "x" * (MAX_ARGUMENT_CHARS + 1)})
        values = {f"v{i}": {"customMetadata": {"owner": "a"}} for i in range(MAX_METADATA_VALUES + 1)}
        too_many = await client.call_tool(
            "update_virtual_tag_metadata", {"tag": "Team", "values": values, "dry_run": True}
        )
    assert too_long.is_error and "at most" in text(too_long)
    assert too_many.is_error and "values" in text(too_many)
    assert not [r for r in sb.request_log if "virtual-tags" in r.raw_path and r.method != "GET"]
