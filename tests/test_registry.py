"""The tool registry: every tool in one place, write and read tools told apart by their annotations,
and a tool registered against the rules refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.types import ToolAnnotations

from finout_mcp.server.tools.common import DESTRUCTIVE, READ, WRITE_IDEMPOTENT, ToolSpec
from finout_mcp.server.tools.registry import TOOLSETS, RegistryError, check_toolsets, select
from finout_mcp.server.toolsets import TOOLSET_NAMES
from finout_mcp.services.results import Envelope
from finout_mcp.services.writes import WriteResult
from tests.support import READ_TOOLS, WRITE_TOOLS, demo


async def delete_everything() -> WriteResult:
    """A write: it answers with the shape of every write."""
    return WriteResult(status="done")


async def list_things() -> Envelope:
    """A read."""
    return Envelope()


async def count_things() -> dict[str, int]:
    """A read whose answer is not a result model."""
    return {"things": 1}


def _one(*specs: ToolSpec) -> dict[str, tuple[ToolSpec, ...]]:
    return {"things": specs}


def test_a_write_tool_annotated_read_only_is_refused() -> None:
    with pytest.raises(RegistryError, match=r"delete_everything changes the account .*readOnlyHint=False"):
        check_toolsets(_one(ToolSpec(delete_everything, READ, "Delete")), names=["things"])


def test_a_write_tool_without_a_read_only_hint_is_refused() -> None:
    unsaid = ToolAnnotations(destructiveHint=True, openWorldHint=False)
    with pytest.raises(RegistryError, match="delete_everything"):
        check_toolsets(_one(ToolSpec(delete_everything, unsaid, "Delete")), names=["things"])


def test_a_read_tool_annotated_as_a_write_or_not_at_all_is_refused() -> None:
    for said in (WRITE_IDEMPOTENT, ToolAnnotations(openWorldHint=False)):
        with pytest.raises(RegistryError, match=r"list_things only reads .*readOnlyHint=True"):
            check_toolsets(_one(ToolSpec(list_things, said, "List")), names=["things"])


def test_a_tool_answering_outside_the_envelope_is_refused() -> None:
    with pytest.raises(RegistryError, match=r"count_things answers with dict.*Result"):
        check_toolsets(_one(ToolSpec(count_things, READ, "Count")), names=["things"])


def test_well_annotated_tools_pass_and_a_name_twice_or_an_unknown_toolset_does_not() -> None:
    good = (ToolSpec(list_things, READ, "List"), ToolSpec(delete_everything, DESTRUCTIVE, "Delete"))
    check_toolsets(_one(*good), names=["things"])
    with pytest.raises(RegistryError, match="list_things is registered twice"):
        check_toolsets({"things": good, "more": good[:1]}, names=["things", "more"])
    with pytest.raises(RegistryError, match="not the known ones"):
        check_toolsets(_one(*good), names=["views"])


def test_the_registry_holds_every_tool_of_every_toolset_and_read_only_keeps_the_read_ones() -> None:
    assert tuple(TOOLSETS) == TOOLSET_NAMES
    every = select(TOOLSET_NAMES, read_only=False)
    assert {s.name for s in every} == READ_TOOLS | WRITE_TOOLS and len(every) == len(READ_TOOLS | WRITE_TOOLS)
    assert {s.name for s in select(TOOLSET_NAMES, read_only=True)} == READ_TOOLS
    assert [s.name for s in select(["changes"], read_only=False)] == ["list_changes", "undo_change"]


async def test_a_read_only_server_lists_only_the_read_tools(tmp_path: Path) -> None:
    async with demo(tmp_path, read_only=True) as (client, _sb):
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == READ_TOOLS
        result = await client.call_tool("undo_change", {"change_id": "chg_x"})
    assert result.is_error
