"""Every tool of the server, by toolset: the one place a tool is registered.

Each domain module exports its tools with their annotations (``TOOLS``); this module imports
them all, so the import graph shows which tools exist. Toolsets choose domains; the read-only
filter chooses by annotation. The server imports this module on the first ``tools/list`` or
``tools/call`` (building the tools is most of start-up, and ``initialize`` does not need them).

Importing it checks every tool and refuses to start on a mistake (like github-mcp-server's
registry): a tool that changes the account — it answers with a :class:`WriteResult`, the
shape of every write — must say ``readOnlyHint=False``, and any other tool
``readOnlyHint=True``; every tool answers with a :class:`Result` (one envelope for all); names
are unique; the toolsets are the ones ``--toolsets`` accepts.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping, Sequence

from finout_mcp.server.tools import (
    accounts,
    changes,
    composer,
    cost_query,
    costguard,
    endpoints,
    insights,
    megabill,
    metadata,
    views,
    virtual_tags,
)
from finout_mcp.server.tools.common import ToolSpec
from finout_mcp.server.toolsets import TOOLSET_NAMES
from finout_mcp.services.results import Result
from finout_mcp.services.writes import WriteResult


class RegistryError(Exception):
    """A tool registered against the rules above: a mistake in this package, found at start-up."""


def check_toolsets(toolsets: Mapping[str, Sequence[ToolSpec]], names: Sequence[str] = TOOLSET_NAMES) -> None:
    """Raise :class:`RegistryError` naming the first tool (or toolset) that breaks the rules."""
    if tuple(toolsets) != tuple(names):
        raise RegistryError(f"The registry's toolsets {list(toolsets)} are not the known ones {list(names)}.")
    seen: set[str] = set()
    for toolset, specs in toolsets.items():
        for spec in specs:
            if spec.name in seen:
                raise RegistryError(f"Tool {spec.name} is registered twice (again in toolset {toolset}).")
            seen.add(spec.name)
            _check_tool(spec)


def _check_tool(spec: ToolSpec) -> None:
    hint = spec.annotations.read_only_hint
    returns = typing.get_type_hints(spec.fn).get("return")
    returned = getattr(returns, "__name__", repr(returns))
    if not (isinstance(returns, type) and issubclass(returns, Result)):
        raise RegistryError(
            f"Tool {spec.name} answers with {returned}: every tool answers with a Result "
            "(finout_mcp.services.results), the one envelope of tool results."
        )
    writes = issubclass(returns, WriteResult)
    if writes and hint is not False:
        raise RegistryError(
            f"Tool {spec.name} changes the account (it returns {returned}) but is annotated "
            f"readOnlyHint={hint}: give it a write annotation (readOnlyHint=False)."
        )
    if not writes and hint is not True:
        raise RegistryError(
            f"Tool {spec.name} only reads (it returns {returned}) but is annotated "
            f"readOnlyHint={hint}: give it a read annotation (readOnlyHint=True)."
        )


TOOLSETS: dict[str, tuple[ToolSpec, ...]] = {
    "views": views.TOOLS,
    "cost_query": cost_query.TOOLS,
    "megabill": megabill.TOOLS,
    "composer": composer.TOOLS,
    "virtual_tags": virtual_tags.TOOLS,
    "metadata": metadata.TOOLS,
    "costguard": costguard.TOOLS,
    "endpoints": endpoints.TOOLS,
    "changes": changes.TOOLS,
    "insights": insights.TOOLS,
}
ACCOUNT_TOOLS: tuple[ToolSpec, ...] = accounts.TOOLS
"""Listed only with several Finout accounts (and then whatever the toolsets)."""
check_toolsets({**TOOLSETS, "accounts": ACCOUNT_TOOLS}, names=(*TOOLSET_NAMES, "accounts"))


def select(toolsets: Iterable[str], *, read_only: bool, several_accounts: bool = False) -> list[ToolSpec]:
    """The tools of these toolsets, in registry order; with ``read_only``, only the read tools;
    with ``several_accounts``, list_accounts too."""
    chosen = [spec for name in toolsets for spec in TOOLSETS[name] if spec.read_only or not read_only]
    return [*chosen, *ACCOUNT_TOOLS] if several_accounts else chosen
