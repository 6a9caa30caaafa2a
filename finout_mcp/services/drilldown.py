"""Which key a view's series is a value of, and the keys to break that series down by.

A view's cost answer names its series ("AmazonRDS", "checkout") but not the key the view groups
by: ``GET /view`` gives a view's name and id only (finout-api.md:59). To suggest a
``query_costs`` call that selects one series, :func:`locate` finds the key by its values, reading
the value lists of the likeliest keys first (at most :data:`MAX_LOOKUPS`, through the catalogue's
cache):

1. keys whose name shares a word with the view's name ("All costs by service" → every ``service``);
2. ``Global.cost_center_type`` (a view grouped by service falls back on it for costs without one:
   "Kubernetes", "Snowflake");
3. virtual tags (views are often grouped by one);
4. the keys views are usually grouped by (:data:`GROUPING_CONCEPTS`: service, vendor, account,
   project, namespace, warehouse...), in that order across cost centers;
5. the other keys, in the catalogue's order.

:func:`breakdown_keys` then picks, among the keys of the cost center the series belongs to, up
to :data:`MAX_BREAKDOWN` that explain what moved inside it (an account or project, a namespace or
warehouse, a usage type...), named as ``CostCenter:key``, the form ``query_costs`` never finds
ambiguous.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from finout_mcp.api.errors import FinoutError
from finout_mcp.api.models import VIRTUAL_TAGS, MegabillKey
from finout_mcp.services.errors import first_error
from finout_mcp.services.fencing import fence
from finout_mcp.services.search import fold

MAX_LOOKUPS = 30  # value lists read to locate one series, at most
BATCH = 5  # read together (the client's in-flight cap)
MAX_BREAKDOWN = 2  # keys to group the located series by
GLOBAL = "Global"
COST_CENTER_TYPE = "cost_center_type"
_GENERIC_WORDS = frozenset({"all", "by", "cost", "costs", "the", "and", "of", "per", "name", "id", "type"})

# One key per family, families in this order: what inside a series usually explains its move.
# Matched against a key's folded display name or key, whole or as a prefix.
BREAKDOWN_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("cost center type",),  # only Global has it: which cloud a virtual tag's value comes from
    ("account name", "project", "subscription", "snowflake account", "organization", "workspace", "account"),
    ("namespace", "warehouse", "resource group"),
    ("usage type", "sku", "meter category", "product", "workload", "database", "operation"),
    ("region", "cluster name", "cluster"),  # where it runs
    ("resource id", "resource type", "resource"),
)
# What views are usually grouped by: a service or vendor, then the kinds above.
GROUPING_CONCEPTS: tuple[str, ...] = ("service", "vendor", *(c for family in BREAKDOWN_FAMILIES for c in family))


class ValueSource(Protocol):
    async def keys(self) -> list[MegabillKey]: ...

    async def values(self, cost_center: str, key: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """The key (and its value) that selects one series of a view."""

    cost_center: str
    key: str
    label: str  # the display name, or the key
    value: str

    @property
    def condition(self) -> dict[str, Any]:
        """A filter intent condition selecting the series (as ``query_costs`` and ``compose_filter`` take it)."""
        return {"key": self.key, "cost_center": self.cost_center, "op": "=", "value": self.value}


def group_name(cost_center: str, key: str) -> str:
    """``CostCenter:key``: a group-by name no other cost center's key can be confused with."""
    return f"{cost_center}:{key}"


def candidates(keys: Sequence[MegabillKey], view_name: str) -> list[MegabillKey]:
    """``keys`` in the order :func:`locate` reads them (see the module docstring). A key named exactly like
    the view's words or a usual grouping comes before one that only begins so ("service" before
    "service_12"), so many look-alike keys cannot push the real one out of the lookups. One pass, a few
    microseconds a key; :func:`locate` runs it off the event loop (an account can have 50,000 keys)."""
    view_words = _words(fold(view_name))
    named: list[MegabillKey] = []  # every word of its name begins a word of the view's name
    types: list[MegabillKey] = []
    exact: list[tuple[int, int, MegabillKey]] = []  # named exactly as a usual grouping
    tags: list[MegabillKey] = []
    partly: list[tuple[float, int, MegabillKey]] = []  # some of its words are in the view's name
    begins: list[tuple[int, int, MegabillKey]] = []  # its name begins with a usual grouping
    rest: list[MegabillKey] = []
    # A name can rank early only if it holds the start of a view word or a concept's first word: most
    # keys of a large account (tags, labels) are sent to the rest on that test alone, without folding.
    needles = {w[:3] for w in view_words if len(w) >= 3} | _CONCEPT_FIRST_WORDS
    for n, k in enumerate(keys):
        if k.cost_center not in (GLOBAL, VIRTUAL_TAGS):
            raw = f"{k.key} {k.display_name or ''}".casefold()
            if not any(needle in raw for needle in needles):
                rest.append(k)
                continue
        forms = _forms(k)
        share = max(_shared(form, view_words) for form in forms)
        if share == 1.0:
            named.append(k)
            continue
        if k.cost_center == GLOBAL and k.key == COST_CENTER_TYPE:
            types.append(k)
            continue
        is_exact, kind = _grouping_kind(forms)
        if kind is not None and is_exact:
            exact.append((kind, n, k))
        elif k.cost_center == VIRTUAL_TAGS:
            tags.append(k)
        elif share:
            partly.append((-share, n, k))
        elif kind is not None:
            begins.append((kind, n, k))
        else:
            rest.append(k)
    exact.sort(key=lambda t: t[:2])
    partly.sort(key=lambda t: t[:2])
    begins.sort(key=lambda t: t[:2])
    return [
        *named,
        *types,
        *(k for *_, k in exact),
        *tags,
        *(k for *_, k in partly),
        *(k for *_, k in begins),
        *rest,
    ]


def _words(folded: str) -> list[str]:
    return [w for w in folded.replace("(", " ").replace(")", " ").split() if w not in _GENERIC_WORDS]


def _shared(folded: str, view_words: Sequence[str]) -> float:
    """The share of a name's words that begin a word of the view's name (3+ letters to count)."""
    words = _words(folded)
    if not words:
        return 0.0
    hits = sum(1 for w in words if len(w) >= 3 and any(v.startswith(w) for v in view_words))
    return hits / len(words)


_CONCEPT_RANK = {c: rank for rank, c in reversed(list(enumerate(GROUPING_CONCEPTS)))}  # a concept's first rank
_CONCEPT_FIRST_WORDS = frozenset(c.split(" ")[0] for c in GROUPING_CONCEPTS)


def _grouping_kind(forms: Sequence[str]) -> tuple[bool, int | None]:
    """(is a folded name exactly a concept of :data:`GROUPING_CONCEPTS`, the best rank of the concepts the
    names are or begin with as whole words; the exact ones when there are)."""
    exact: list[int] = []
    begins: list[int] = []
    for form in forms:
        words = form.split(" ")
        if words[0] not in _CONCEPT_FIRST_WORDS:
            continue
        for n in range(1, len(words) + 1):
            rank = _CONCEPT_RANK.get(" ".join(words[:n]))
            if rank is not None:
                (exact if n == len(words) else begins).append(rank)
    if exact:
        return True, min(exact)
    return False, min(begins) if begins else None


def _forms(k: MegabillKey) -> tuple[str, ...]:
    """A key's folded names: its display name (when it has one) and its key."""
    return (fold(k.key),) if k.display_name is None else (fold(k.display_name), fold(k.key))


def _is(forms: Sequence[str], concept: str) -> bool:
    """Is a key of this kind: one of its folded ``forms`` is ``concept``, or begins with it as whole words."""
    return any(f == concept or f.startswith(concept + " ") for f in forms)


async def locate(
    source: ValueSource, view_name: str, series: str, *, max_lookups: int = MAX_LOOKUPS
) -> SeriesKey | None:
    """The key among the likeliest ``max_lookups`` whose values include ``series``; None when none does."""
    keys = await source.keys()
    order = (await anyio.to_thread.run_sync(candidates, keys, view_name))[:max_lookups]  # off the event loop
    hits: set[int] = set()

    async def check(i: int) -> None:
        k = order[i]
        if series in await source.values(k.cost_center, k.key):
            hits.add(i)

    for first in range(0, len(order), BATCH):
        try:
            async with anyio.create_task_group() as tg:
                for i in range(first, min(first + BATCH, len(order))):
                    tg.start_soon(check, i)
        except BaseExceptionGroup as group:  # the client's own error, not a group
            raise first_error(group) from None
        if hits:
            k = order[min(hits)]  # the likeliest key holding it
            return SeriesKey(k.cost_center, k.key, k.label, series)
    return None


@dataclass(frozen=True, slots=True)
class Drill:
    """How to select and split one series: its key, the keys to group it by, or why neither is known."""

    where: SeriesKey | None
    breakdown: list[MegabillKey]
    note: str | None = None


async def drill(source: ValueSource, view_name: str, series: str) -> Drill:
    """:func:`locate` and :func:`breakdown_keys` for ``series``; when the key cannot be found (or its values
    cannot be read) a note says so and how to find it, and the rest of the answer stands."""
    how = (
        "find it with list_megabill_keys and list_key_values(key, search), then query_costs filtered on it "
        f"= {fence(series)} "
    )
    try:
        where = await locate(source, view_name, series)
    except FinoutError as exc:
        reason = f"reading the keys' values failed ({exc.operation}: {exc.status or 'no answer'})"
        return Drill(
            None, [], f"The key behind the series {fence(series)} is not named: {reason}; {how}breaks it down."
        )
    if where is None:
        return Drill(
            None,
            [],
            f"The key behind the series {fence(series)} is not among the values of the {MAX_LOOKUPS} likeliest keys; "
            f"{how}breaks it down.",
        )
    return Drill(where, await anyio.to_thread.run_sync(breakdown_keys, await source.keys(), where))


def cost_center_of(where: SeriesKey) -> str | None:
    """The cost center whose costs the series holds: X for ``cost_center_type = X``, None when it may hold
    several (a virtual tag's value, another Global key)."""
    if where.cost_center == GLOBAL and where.key == COST_CENTER_TYPE:
        return where.value
    return None if where.cost_center in (GLOBAL, VIRTUAL_TAGS) else where.cost_center


def breakdown_keys(keys: Sequence[MegabillKey], where: SeriesKey) -> list[MegabillKey]:
    """Up to :data:`MAX_BREAKDOWN` keys that split the located series: of the cost center it belongs to
    (Global's when it may span several), one per family of :data:`BREAKDOWN_FAMILIES`, skipping the
    series' own family (an account's account id says nothing new)."""
    cost_center = (cost_center_of(where) or GLOBAL).casefold()
    own = [
        (k, _forms(k))
        for k in keys
        if k.cost_center.casefold() == cost_center
        and not (k.cost_center == where.cost_center and k.key == where.key)
    ]
    target = _forms(MegabillKey(where.cost_center, where.key, where.label))
    picked: list[MegabillKey] = []
    for family in BREAKDOWN_FAMILIES:
        if any(_is(target, concept) for concept in family):
            continue
        hit = next((k for concept in family for k, forms in own if _is(forms, concept)), None)
        if hit is not None and hit not in picked:
            picked.append(hit)
        if len(picked) >= MAX_BREAKDOWN:
            break
    return picked or [k for k, _ in own[:MAX_BREAKDOWN]]  # none of the usual kinds: the cost center's first keys
