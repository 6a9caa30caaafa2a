"""The MegaBill catalogue: ``list_megabill_keys`` and ``list_key_values``."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from finout_mcp.api.models import MegabillKey
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import READ, Refresh, ToolSpec
from finout_mcp.services.fencing import fence, fence_all
from finout_mcp.services.keys import find_key
from finout_mcp.services.results import Envelope
from finout_mcp.services.search import (
    FUZZY_MIN_QUERY,
    MatchKind,
    SearchResult,
    fold,
    group_by_cost_center,
    search_keys,
    search_values,
    value_search_index,
)

SEARCHED_DESCRIPTION = (
    "With a search: the kinds of match that were looked for (case and separators ignored): exact, prefix "
    "(starts with it), inside (contains it anywhere), and fuzzy (similar spelling) when it was searched too; "
    "the notes say whether every match is listed."
)


def searched_kinds(found: SearchResult[Any]) -> list[MatchKind]:
    """The tiers a search ran: the first three always, fuzzy only when they found too few."""
    kinds: list[MatchKind] = ["exact", "prefix", "inside"]
    return [*kinds, "fuzzy"] if found.fuzzy_searched else kinds


def search_note(search: str, found: SearchResult[Any], noun: str) -> str:
    """What a search looked for and whether every match is listed, in one sentence for the model."""
    text = f"Searched {noun}s for {fence(search)} (case and separators ignored): exact, prefix and inside matches"
    if found.fuzzy_searched:
        text += ", and similar spellings (fuzzy)."
    elif len(fold(search)) < FUZZY_MIN_QUERY:
        text += f"; similar spellings (fuzzy) are searched only for {FUZZY_MIN_QUERY} characters or more."
    else:
        text += f"; similar spellings (fuzzy) were not searched: {found.total} {noun}s already contain it."
    if not found.matches:
        return text + f" No {noun} matched."
    if noun == "value":  # keys carry their match inside each entry; values in a list beside them
        text += " match[i] says how values[i] matched."
    if found.truncated:
        of = f"more than {found.total}" if found.at_least else str(found.total)
        return text + f" Showing {len(found.matches)} of {of} matching {noun}s: raise limit or narrow the search."
    return text + f" All {len(found.matches)} matching {noun}s are listed."


class KeyEntry(BaseModel):
    key: str = Field(description="What filters use.")
    name: str | None = Field(default=None, description="Display name, when it differs from the key.")
    match: MatchKind | None = Field(
        default=None, description="With a search: how it matched (exact, prefix, inside, fuzzy)."
    )


class KeysResult(Envelope):
    cost_centers: dict[str, list[KeyEntry]] = Field(description="Matching keys grouped by cost center.")
    total: int = Field(description="Keys matching the search (before the limit; a lower bound when very many).")
    shown: int
    truncated: bool
    searched: list[MatchKind] | None = Field(default=None, description=SEARCHED_DESCRIPTION)


class ValuesResult(Envelope):
    cost_center: str
    key: str
    display_name: str | None
    values: list[str]
    match: list[MatchKind] | None = Field(
        default=None,
        description="With a search: how each value matched, in the same order (exact, prefix, inside, fuzzy).",
    )
    total: int = Field(description="Values matching the search (before the limit; a lower bound when very many).")
    truncated: bool
    searched: list[MatchKind] | None = Field(default=None, description=SEARCHED_DESCRIPTION)


async def list_megabill_keys(
    ctx: Context,
    search: Annotated[
        str | None,
        Field(description="Text to find in key, display name or cost center; exact, prefix, then fuzzy."),
    ] = None,
    cost_center: Annotated[
        str | None, Field(description="Only this cost center, e.g. AWS, GCP, Kubernetes, Virtual Tags.")
    ] = None,
    limit: Annotated[int, Field(description="Maximum keys to return.", ge=1, le=1000)] = 50,
    refresh: Refresh = False,
) -> KeysResult:
    """Find MegaBill keys, the dimensions to filter and group by: e.g. 'Account Name' = aws_account_name,
    pod labels pl_<label>, enrichment keys f_<name>, virtual tags (cost center 'Virtual Tags'). Use
    before list_key_values, compose_filter or create_virtual_tag."""
    state = get_state(ctx)
    keys = await state.catalog.keys(refresh=refresh)
    found = search_keys(keys, search, cost_center=cost_center, limit=limit, owner=state.catalog)
    searched = search is not None and bool(fold(search))

    kind_of = {id(k): kind for k, kind in zip(found.matches, found.kinds, strict=True)} if searched else {}

    def how(k: MegabillKey) -> MatchKind | None:
        return kind_of.get(id(k))

    grouped = {
        cc: [
            KeyEntry(key=k.key, name=k.display_name if k.display_name not in (None, k.key) else None, match=how(k))
            for k in ks
        ]
        for cc, ks in group_by_cost_center(found.matches).items()
    }
    notes = []
    if searched and search is not None:
        notes.append(search_note(search, found, "key"))
    elif found.truncated:
        of = f"more than {found.total}" if found.at_least else str(found.total)
        notes.append(f"Showing {len(found.matches)} of {of}; narrow the search or raise limit.")
    if not found.matches:
        notes.append("No key matched; try a shorter search or drop cost_center.")
    return KeysResult(
        cost_centers=grouped,
        total=found.total,
        shown=len(found.matches),
        truncated=found.truncated,
        searched=searched_kinds(found) if searched else None,
        notes=notes,
    )


async def list_key_values(
    ctx: Context,
    key: Annotated[
        str, Field(description="The key or its display name, e.g. aws_account_name or 'Account Name'.")
    ],
    cost_center: Annotated[
        str | None, Field(description="The key's cost center; may be left out when the key is unambiguous.")
    ] = None,
    search: Annotated[
        str | None,
        Field(
            description="Text to find among the values: exact, prefix and inside matches (case and separators "
            "ignored), then similar spellings when those find fewer than limit."
        ),
    ] = None,
    limit: Annotated[int, Field(description="Maximum values to return.", ge=1, le=5000)] = 100,
    refresh: Refresh = False,
) -> ValuesResult:
    """The values a MegaBill key takes in this account, to pick exact values for filters. Unsure of the
    key? list_megabill_keys first."""
    state = get_state(ctx)
    k = await find_key(state.catalog, key, cost_center)
    values = await state.catalog.values(k.cost_center, k.key, refresh=refresh)
    found = search_values(values, search, limit=limit, owner=state.catalog)
    searched = bool(search and fold(search))
    notes = []
    if searched and search is not None:
        notes.append(search_note(search, found, "value"))
    elif found.truncated:
        of = f"more than {found.total}" if found.at_least else str(found.total)
        notes.append(f"Showing {len(found.matches)} of {of} values; use search to narrow, or raise limit.")
    if searched and search is not None and not found.matches:
        close = value_search_index(values, owner=state.catalog).closest(search, 5)
        if close:
            notes.append(f"No value contains {fence(search)}; closest existing: {fence_all(close)}.")
    return ValuesResult(
        cost_center=k.cost_center,
        key=k.key,
        display_name=k.display_name,
        values=list(found.matches),
        match=list(found.kinds) if searched else None,
        total=found.total,
        truncated=found.truncated,
        searched=searched_kinds(found) if searched else None,
        notes=notes,
    )


TOOLS = (
    ToolSpec(list_megabill_keys, READ, "Find MegaBill keys"),
    ToolSpec(list_key_values, READ, "List a key's values"),
)
