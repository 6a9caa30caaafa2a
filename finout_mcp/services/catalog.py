"""The account catalogue: cached views, keys, values, virtual tags, scans and their findings.

:class:`Catalog` keeps each list for ``ttl_s`` seconds, coalesces concurrent identical
fetches into one request (single flight), never caches a failure, and resolves a view,
tag or scan given by id or exact name. It also keeps what is built from the lists it hands out
(:meth:`Catalog.derived`): the search indexes of keys and values, the key resolution, built on
first use and kept while the list is, so a search over 50k keys or 200k values takes a few ms.
How a search ranks is :mod:`finout_mcp.services.search`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import anyio

from finout_mcp.api.models import (
    VIRTUAL_TAGS,
    GroupBy,
    KeyList,
    MegabillKey,
    RecommendationsRequest,
    Scan,
    ScanList,
    ScanRecommendations,
    ValueList,
    View,
    ViewList,
    VirtualTag,
    VirtualTagList,
)
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence
from finout_mcp.services.search import closest_names

T = TypeVar("T")

KINDS = ("views", "keys", "values", "virtual_tags", "scans", "recommendations")
INDEXES_KEPT = 16  # search indexes one catalogue keeps, at most (the least recently used go first)
INDEXED_ITEMS_KEPT = 600_000  # items in all its indexes, at most


class CatalogApi(Protocol):
    async def list_views(self) -> ViewList: ...
    async def list_keys(self) -> KeyList: ...
    async def list_values(self, cost_center: str, key: str) -> ValueList: ...
    async def list_virtual_tags(self) -> VirtualTagList: ...
    async def list_scans(self) -> ScanList: ...
    async def get_scan_recommendations(self, body: RecommendationsRequest) -> ScanRecommendations: ...


class _Flight:
    """One in-progress fetch that other callers wait for."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.value: Any = None
        self.error: Exception | None = None
        self.abandoned = False  # the fetching task was cancelled: waiters retry


@dataclass
class _Derived:
    """Something built from lists the catalogue handed out (a search index), and what it came from."""

    name: Hashable
    sources: tuple[object, ...]  # held: the value is valid while these very objects are passed
    sizes: tuple[int, ...]
    weight: int  # items of the lists it was built from, for the bound on them all
    value: Any


class Catalog:
    """Per-server cache of the account's catalogue (one per Finout client)."""

    def __init__(
        self, api: CatalogApi, *, ttl_s: float = 600, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._api = api
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[Any, float]] = {}
        self._inflight: dict[tuple[str, ...], _Flight] = {}
        self._generation: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._derived: list[_Derived] = []  # least recently used first

    # ------------------------------------------------------------------ cache core

    async def _get(self, key: tuple[str, ...], fetch: Callable[[], Awaitable[T]], refresh: bool) -> T:
        while True:
            if not refresh:
                hit = self._cache.get(key)
                if hit is not None and hit[1] > self._clock():
                    return cast(T, hit[0])
            flight = self._inflight.get(key)
            if flight is None:
                break
            await flight.event.wait()
            if flight.abandoned:
                continue
            if flight.error is not None:
                raise flight.error
            return cast(T, flight.value)

        flight = _Flight()
        self._inflight[key] = flight
        generation = self._generation[key[0]]
        try:
            value = await fetch()
        except Exception as exc:
            flight.error = exc
            raise
        except BaseException:
            flight.abandoned = True
            raise
        else:
            flight.value = value
            if self._generation[key[0]] == generation:  # not invalidated meanwhile
                self._cache[key] = (value, self._clock() + self._ttl)
            return value
        finally:
            if self._inflight.get(key) is flight:
                del self._inflight[key]
            flight.event.set()

    def invalidate(self, what: str | None = None) -> None:
        """Forget cached data after a write.

        ``what``: one of ``views``, ``keys``, ``values``, ``virtual_tags``, ``scans``,
        ``recommendations``, or ``None`` for everything. ``virtual_tags`` also drops the keys
        (every tag is a key) and the cached values of ``Virtual Tags`` keys; ``scans`` also
        drops the scans' recommendations.
        """
        if what is not None and what not in KINDS:
            raise ValueError(f"unknown catalogue kind {what!r}; expected one of {KINDS}")
        kinds = set(KINDS) if what is None else {what}
        if what == "virtual_tags":
            kinds.add("keys")
        if what == "scans":
            kinds.add("recommendations")

        def drop(k: tuple[str, ...]) -> bool:
            if k[0] in kinds:
                return True
            return what == "virtual_tags" and k[0] == "values" and k[1] == VIRTUAL_TAGS

        for store in (self._cache, self._inflight):
            for k in [k for k in store if drop(k)]:
                del store[k]  # an in-flight fetch keeps running, but new callers start afresh
        for kind in kinds | ({"values"} if what == "virtual_tags" else set()):
            self._generation[kind] += 1
        self._derived = [d for d in self._derived if not self._stale(d)]

    # ------------------------------------------------------------------ search indexes

    def derived(self, name: Hashable, sources: tuple[object, ...], build: Callable[[], T]) -> T:
        """``build()`` (an index of lists this catalogue handed out), kept under ``name`` while
        ``sources`` are the very same objects, unchanged in length. At most :data:`INDEXES_KEPT`
        are kept, built from :data:`INDEXED_ITEMS_KEPT` list items in all, the least recently
        used dropped first; one built from a list the catalogue no longer holds (refreshed or
        invalidated) goes when another of its name is built, or at an invalidation."""
        sizes = tuple(len(s) if isinstance(s, Sized) else -1 for s in sources)
        for n, d in enumerate(self._derived):
            if d.name == name and all(a is b for a, b in zip(d.sources, sources, strict=True)):
                del self._derived[n]
                if d.sizes == sizes:
                    self._derived.append(d)
                    return cast(T, d.value)
                break  # the list changed in place: the stale value goes before the new one is built
        value = build()
        self._derived = [d for d in self._derived if d.name != name or not self._stale(d)]
        weight = sum(n for s, n in zip(sources, sizes, strict=True) if isinstance(s, list))
        self._derived.append(_Derived(name, sources, sizes, weight, value))
        while len(self._derived) > 1 and (
            len(self._derived) > INDEXES_KEPT or sum(d.weight for d in self._derived) > INDEXED_ITEMS_KEPT
        ):
            del self._derived[0]
        return value

    def _stale(self, d: _Derived) -> bool:
        """Built from a list this catalogue no longer holds (refreshed or invalidated since)."""
        held = [entry[0] for entry in self._cache.values()]
        return any(isinstance(s, list) and not any(s is h for h in held) for s in d.sources)

    # ------------------------------------------------------------------ lists

    async def views(self, *, refresh: bool = False) -> list[View]:
        async def fetch() -> list[View]:
            return list((await self._api.list_views()).data)

        return await self._get(("views",), fetch, refresh)

    async def keys(self, *, refresh: bool = False) -> list[MegabillKey]:
        async def fetch() -> list[MegabillKey]:
            return list((await self._api.list_keys()).keys)

        return await self._get(("keys",), fetch, refresh)

    async def values(self, cost_center: str, key: str, *, refresh: bool = False) -> list[str]:
        async def fetch() -> list[str]:
            return list((await self._api.list_values(cost_center, key)).values)

        return await self._get(("values", cost_center, key), fetch, refresh)

    async def virtual_tags(self, *, refresh: bool = False) -> list[VirtualTag]:
        async def fetch() -> list[VirtualTag]:
            return list((await self._api.list_virtual_tags()).virtual_tags)

        return await self._get(("virtual_tags",), fetch, refresh)

    async def scans(self, *, refresh: bool = False) -> list[Scan]:
        async def fetch() -> list[Scan]:
            return list((await self._api.list_scans()).scans)

        return await self._get(("scans",), fetch, refresh)

    async def recommendations(
        self, scan_id: str, group_by: GroupBy | None = None, *, refresh: bool = False
    ) -> ScanRecommendations:
        """A scan's recommendations (all resources, no filter), grouped by ``group_by`` if given."""

        async def fetch() -> ScanRecommendations:
            return await self._api.get_scan_recommendations(
                RecommendationsRequest(scan_id=scan_id, group_by=group_by)
            )

        gb = (group_by.cost_center, group_by.key) if group_by else ("", "")
        return await self._get(("recommendations", scan_id, *gb), fetch, refresh)

    def known_recommendations(self, scan_id: str) -> ScanRecommendations | None:
        """A scan's recommendations if a fresh copy is cached (any grouping: the totals are the same);
        never fetches."""
        now = self._clock()
        for key, (value, expires) in self._cache.items():
            if key[0] == "recommendations" and key[1] == scan_id and expires > now:
                return cast(ScanRecommendations, value)
        return None

    # ------------------------------------------------------------------ resolution

    async def resolve_view(self, ref: str) -> View:
        """A view by id or exact name (case-insensitive if unambiguous)."""
        return await self._resolve("view", ref, self.views, lambda v: v.id, lambda v: v.name, "list_views")

    async def resolve_tag(self, ref: str, *, fresh: bool = False) -> VirtualTag:
        """A virtual tag (from the list) by id or exact name; ``fresh``: from a new read of the list,
        never the cache (what writes use: a tag may have been renamed since the list was cached)."""
        return await self._resolve(
            "virtual tag",
            ref,
            self.virtual_tags,
            lambda t: t.id,
            lambda t: t.name,
            "list_virtual_tags",
            fresh=fresh,
        )

    async def resolve_scan(self, ref: str) -> Scan:
        """A CostGuard scan by id or exact name."""
        return await self._resolve(
            "scan", ref, self.scans, lambda s: s.scan_id, lambda s: s.scan_name, "list_costguard_scans"
        )

    async def _resolve(
        self,
        kind: str,
        ref: str,
        load: Callable[..., Awaitable[list[T]]],
        id_of: Callable[[T], str],
        name_of: Callable[[T], str],
        list_tool: str,
        *,
        fresh: bool = False,
    ) -> T:
        hint = f"Call {list_tool} to see them all, then pass the id or the exact name."
        ref = (ref or "").strip()
        if not ref:
            raise InputError(f"No {kind} given.", hint=hint)
        items = await load(refresh=fresh)
        found = _find(kind, ref, items, id_of, name_of, hint)
        if found is None and not fresh:  # maybe created since we cached the list
            items = await load(refresh=True)
            found = _find(kind, ref, items, id_of, name_of, hint)
        if found is not None:
            return found
        raise InputError(
            f"No {kind} has the id or name {fence(ref)}.",
            candidates=[fence(n) for n in closest_names(ref, [name_of(i) for i in items])],
            hint=hint,
        )


def _find(
    kind: str,
    ref: str,
    items: Sequence[T],
    id_of: Callable[[T], str],
    name_of: Callable[[T], str],
    hint: str,
) -> T | None:
    for it in items:
        if id_of(it) == ref:
            return it
    for it in items:
        if name_of(it) == ref:
            return it
    folded = ref.casefold()
    same = [it for it in items if name_of(it).casefold() == folded]
    if len(same) == 1:
        return same[0]
    if len(same) > 1:
        listed = ", ".join(f"{fence(name_of(i))} (id {fence(id_of(i))})" for i in same[:5])
        raise InputError(
            f"{len(same)} {kind}s are named {fence(ref)} when case is ignored: {listed}.",
            hint="Pass the id, or the name with its exact case.",
        )
    return None
