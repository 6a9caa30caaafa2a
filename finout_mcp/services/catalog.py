"""The account catalogue: cached views, keys, values, virtual tags, scans and their findings, plus search.

:class:`Catalog` keeps each list for ``ttl_s`` seconds, coalesces concurrent identical
fetches into one request (single flight), never caches a failure, and resolves a view,
tag or scan given by id or exact name.

:func:`search_keys` / :func:`search_values` rank matches exact > prefix > substring >
fuzzy over case- and separator-folded forms (``"Account Name"``, ``"account_name"`` and
``"account-name"`` all fold to ``"account name"``). The index of a list is built once per
list object and reused, so a search over 50k keys or 200k values takes a few ms.
"""

from __future__ import annotations

import difflib
import math
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence, Sized
from dataclasses import dataclass
from itertools import accumulate, chain
from typing import Any, Generic, Literal, Protocol, TypeVar, cast, overload

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

T = TypeVar("T")

KINDS = ("views", "keys", "values", "virtual_tags", "scans", "recommendations")


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
        self._derived: dict[str, tuple[tuple[object, ...], tuple[int, ...], Any]] = {}

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

    def derived(self, name: str, sources: tuple[object, ...], build: Callable[[], T]) -> T:
        """``build()`` (an index of lists this catalogue handed out), kept under ``name`` while
        ``sources`` are the very same objects, unchanged in length: one per name."""
        sizes = tuple(len(s) if isinstance(s, Sized) else -1 for s in sources)
        hit = self._derived.get(name)
        if hit is not None and hit[1] == sizes and all(a is b for a, b in zip(hit[0], sources, strict=True)):
            return cast(T, hit[2])
        value = build()
        self._derived[name] = (sources, sizes, value)
        return value

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


def closest_names(ref: str, names: Sequence[str], n: int = 5) -> list[str]:
    """Up to ``n`` names closest to ``ref``: containing it first, then by similarity."""
    folded = ref.casefold()
    by_fold: dict[str, str] = {}
    for name in names:
        by_fold.setdefault(name.casefold(), name)
    contains = [orig for f, orig in by_fold.items() if folded in f or (f and f in folded)]
    close = difflib.get_close_matches(folded, list(by_fold), n=n, cutoff=0.4)
    out: list[str] = []
    for name in [*contains[:n], *(by_fold[c] for c in close)]:
        if name not in out:
            out.append(name)
    return out[:n]


# ----------------------------------------------------------------------------- search

_FOLD_TABLE = str.maketrans(dict.fromkeys("_-./:", " "))
FUZZY_CUTOFF = 0.75
FUZZY_MAX_LINES = 600  # candidate lines scored for fuzzy matches, at most
FUZZY_MIN_QUERY = 4  # a search looks for fuzzy matches only for queries this long (folded)
_SCAN_HIT_CAP = 5000


def fold(text: str) -> str:
    """Case- and separator-insensitive form: ``"AWS_Account-Name"`` → ``"aws account name"``."""
    return " ".join(text.casefold().translate(_FOLD_TABLE).split())


def _fold_shared(text: str) -> str:
    """:func:`fold`, returning ``text`` itself when it is already folded (no second copy)."""
    folded = fold(text)
    return text if folded == text else folded


@dataclass
class SearchResult(Generic[T]):
    matches: list[T]
    total: int  # matches found (fuzzy ones are looked for only when too few others)
    truncated: bool
    at_least: bool = False  # counting stopped at the cap: ``total`` is a lower bound
    fuzzy_searched: bool = False  # the similar-spelling tier ran (it runs only when the others found too few)


class _BlobLines(Sequence[str]):
    """Line ``j`` of a search blob, sliced on demand: the lines are not kept twice."""

    __slots__ = ("_blob", "_starts")

    def __init__(self, blob: str, starts: array) -> None:
        self._blob, self._starts = blob, starts

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, j: int) -> str: ...
    @overload
    def __getitem__(self, j: slice) -> list[str]: ...
    def __getitem__(self, j: int | slice) -> str | list[str]:
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        starts = self._starts
        if j < 0:
            j += len(starts)
        end = starts[j + 1] - 1 if j + 1 < len(starts) else len(self._blob) - 1
        return self._blob[starts[j] : end]


class SearchIndex(Generic[T]):
    """A searchable list: exact > prefix > substring > fuzzy over folded text, all tiers bounded.

    Memory per item: the folded line, its slice of ``blob`` and an offset in ``starts`` (an
    array, not int objects). With one name per item sorted by it (values), the lines *are*
    the sorted forms and the item of form ``j`` is item ``j``: no mapping is stored.
    """

    __slots__ = ("blob", "chars", "form_items", "forms", "items", "lines", "n_names", "starts")

    def __init__(
        self, items: list[T], lines: Sequence[str], n_names: int, forms: Sequence[str], form_items: array | None
    ):
        self.items = items  # line i of the blob is items[i]
        self.lines = lines  # folded text of item i: names (then more text), "\x00"-separated
        self.n_names = n_names  # the first n_names fields of a line are names; 0: the whole line is one
        self.forms = forms  # sorted folded names, for bisect (exact and prefix tiers)
        self.form_items = form_items  # item of forms[j]; None: item j
        # "\n" + lines joined by "\n" + "\n": substring search runs over it in C.
        self.blob = "\n".join(chain(("",), lines, ("",)))
        self.chars = frozenset(self.blob)  # a needle with another character is in no line: no scan
        offsets = accumulate(map(len, lines), lambda pos, size: pos + size + 1, initial=1)
        starts = array("I" if len(self.blob) < 2**32 else "q", offsets)
        starts.pop()
        self.starts = starts  # offset of line i in blob

    # -------------------------------------------------------------- building

    @classmethod
    def sorted_values(cls, items: list[T], fold_item: Callable[[T], str]) -> SearchIndex[T]:
        """``items`` sorted by their one folded name ``fold_item(item)`` (values).

        The blob is built a slice at a time, so at most one slice of folded strings exists at
        once, and the forms are read back from the blob afterwards (bisect works on any
        sequence): 200,000 values never also keep 200,000 folded strings."""
        step = 20_000
        parts = ["\n".join(map(fold_item, items[i : i + step])) for i in range(0, len(items), step)]
        blob = "\n" + "\n".join(parts) + "\n" if items else "\n"
        del parts
        index = cls.__new__(cls)
        index.items, index.n_names, index.form_items = items, 0, None
        index.blob = blob
        index.chars = frozenset(blob)
        starts = array("I" if len(blob) < 2**32 else "q")
        find, pos = blob.find, 1
        for _ in range(len(items)):
            starts.append(pos)
            pos = find("\n", pos) + 1
        index.starts = starts
        index.lines = index.forms = _BlobLines(blob, starts)
        return index

    @classmethod
    def named(cls, items: list[T], names: Sequence[tuple[str, ...]], extra: Sequence[str]) -> SearchIndex[T]:
        """``names[i]``: the folded names of item i (all tiers); ``extra[i]``: more folded text (substring tier)."""
        n_names = len(names[0]) if names else 1
        assert all(len(ns) == n_names for ns in names)
        lines = ["\x00".join((*ns, e)) for ns, e in zip(names, extra, strict=True)]
        pairs = sorted((f, i) for i, ns in enumerate(names) for f in dict.fromkeys(ns) if f)
        forms = [p[0] for p in pairs]
        form_items = array("q", [p[1] for p in pairs])
        index = cls(items, lines, n_names, forms, form_items)
        index.lines = _BlobLines(index.blob, index.starts)  # read lines back from the blob: no second copy
        return index

    # -------------------------------------------------------------- lookups

    def _item(self, j: int) -> int:
        return j if self.form_items is None else self.form_items[j]

    def _names(self, i: int) -> Sequence[str]:
        line = self.lines[i]
        return (line,) if not self.n_names else line.split("\x00")[: self.n_names]

    def _line_hits(self, needle: str, *, collect: int, cap: int) -> tuple[int, list[int]]:
        """(lines containing ``needle`` — counted up to ``cap``, the first ``collect`` line numbers)."""
        find, starts = self.blob.find, self.starts
        hits: list[int] = []
        count = 0
        if not self.chars.issuperset(needle):
            return count, hits
        pos = find(needle)
        while pos != -1:
            count += 1
            if len(hits) < collect:
                hits.append(bisect_right(starts, pos) - 1)
            if count >= cap:
                break
            pos = find(needle, find("\n", pos) + 1)
        return count, hits

    def exact(self, folded: str) -> list[T]:
        """The items with a name equal to ``folded`` (already folded), in index order."""
        lo = bisect_left(self.forms, folded)
        hi = bisect_right(self.forms, folded, lo)
        return [self.items[self._item(j)] for j in range(lo, hi)]

    def has(self, item: T, folded: str) -> bool:
        """Is ``item`` (whose folded name is ``folded``) in the list? Bisect, no set needed."""
        items, forms = self.items, self.forms
        lo = bisect_left(forms, folded)
        hi = bisect_right(forms, folded, lo)
        return any(items[self._item(j)] == item for j in range(lo, hi))

    def contains(self, text: str) -> bool:
        """Does any item contain ``text`` (case- and separator-insensitively)?"""
        q = fold(text)
        return bool(q) and self._line_hits(q, collect=0, cap=1)[0] > 0

    def closest(self, query: str, n: int = 5) -> list[T]:
        """Did-you-mean: up to ``n`` items for a ``query`` that is not one.

        Items containing it first (exact, prefix, inside), then the most similar by spelling and
        by shared words (``data-platform`` → ``data-pipeline``, ``us-east-1`` → ``us-east1``)."""
        found = self.search(query, n, fuzzy_min=len(fold(query)) + 1)  # no ratio-only fuzzy tier here
        taken = list(found.matches)
        if len(taken) < n:
            for i in self._similar(fold(query)):
                item = self.items[i]
                if item not in taken:
                    taken.append(item)
                    if len(taken) >= n:
                        break
        return taken

    def _similar(self, q: str) -> list[int]:
        """Items whose names resemble ``q``, best first: :func:`similarity` ≥ ``SIMILAR_CUTOFF``.

        Candidates: every line of a short list, else the lines sharing a word (3+ letters) or a
        piece of ``q`` with it, at most ``FUZZY_MAX_LINES``."""
        if not q:
            return []
        cand: set[int] = set()
        if len(self.items) <= FUZZY_MAX_LINES:
            cand.update(range(len(self.items)))
        else:
            size = len(q)
            step = math.ceil(size / (2 if size < 9 else 3))
            pieces = [w for w in q.split(" ") if len(w) >= 3] + [q[i : i + step] for i in range(0, size, step)]
            for piece in sorted(set(pieces), key=len, reverse=True):
                if len(piece) < 2 or len(cand) >= FUZZY_MAX_LINES:
                    continue
                _, hits = self._line_hits(piece, collect=FUZZY_MAX_LINES - len(cand), cap=FUZZY_MAX_LINES)
                cand.update(hits)
        scored = []
        for i in cand:
            score = max(similarity(q, form) for form in self._names(i))
            if score >= SIMILAR_CUTOFF:
                scored.append((score, i))
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [i for _, i in scored]

    def search(self, query: str, limit: int, *, fuzzy_min: int = FUZZY_MIN_QUERY) -> SearchResult[T]:
        q = fold(query)
        n = len(self.items)
        if not q:
            return SearchResult(list(self.items[:limit]), n, n > limit)
        taken: list[int] = []
        seen: set[int] = set()

        def take(i: int) -> None:
            if i not in seen and len(taken) < limit:
                seen.add(i)
                taken.append(i)

        forms = self.forms
        lo = bisect_left(forms, q)  # tier 1: exact
        exact_hi = bisect_right(forms, q, lo)
        hi = bisect_left(forms, q + "\U0010ffff", exact_hi)  # tier 2: prefix
        for j in range(lo, hi):
            if len(taken) >= limit:
                break
            take(self._item(j))

        # tier 3: substring (a superset of tiers 1-2, so it also gives the total)
        want = limit + len(seen)
        cap = max(_SCAN_HIT_CAP, want)
        total, hits = self._line_hits(q, collect=want, cap=cap)
        # A very common text (thousands of matches) is not counted to the end: the answer says
        # "more than N", which is all a caller can use, instead of scanning 200,000 values.
        at_least = total >= cap
        for i in hits:
            take(i)

        # tier 4: fuzzy, only when the others found too few
        fuzzy_searched = total < limit and len(q) >= fuzzy_min
        if fuzzy_searched:
            fuzzy = self._fuzzy(q, exclude=seen)
            total += len(fuzzy)
            for i in fuzzy:
                take(i)
        return SearchResult([self.items[i] for i in taken], total, total > len(taken), at_least, fuzzy_searched)

    def _fuzzy(self, q: str, exclude: set[int]) -> list[int]:
        """Items with a name, or a word of one, similar to ``q`` (difflib ratio ≥ 0.75).

        Candidates are all lines of a short list; else the lines containing one piece of
        ``q`` cut in 2 (3 when long): a string within one or two edits of ``q`` keeps at
        least one piece intact. At most ``FUZZY_MAX_LINES`` candidate lines are scored, so
        the work is bounded.
        """
        size = len(q)
        cand: set[int] = set()
        if len(self.items) <= FUZZY_MAX_LINES:
            cand.update(range(len(self.items)))
        else:
            k = 2 if size < 9 else 3
            step = math.ceil(size / k)
            pieces = sorted({q[i : i + step] for i in range(0, size, step)}, key=len, reverse=True)
            for piece in pieces:
                if len(piece) < 2 or len(cand) >= FUZZY_MAX_LINES:
                    continue
                _, hits = self._line_hits(piece, collect=FUZZY_MAX_LINES - len(cand), cap=FUZZY_MAX_LINES)
                cand.update(hits)
        matcher = difflib.SequenceMatcher(autojunk=False)
        matcher.set_seq2(q)
        best: dict[int, float] = {}
        lo_len, hi_len = size * 0.6, size / 0.6  # outside this, ratio < 0.75 for sure
        for i in cand - exclude:
            score = 0.0
            for form in self._names(i):
                for word in (form, *form.split(" ")) if " " in form else (form,):
                    if not lo_len <= len(word) <= hi_len:
                        continue
                    matcher.set_seq1(word)
                    if matcher.real_quick_ratio() >= FUZZY_CUTOFF and matcher.quick_ratio() >= FUZZY_CUTOFF:
                        score = max(score, matcher.ratio())
            if score >= FUZZY_CUTOFF:
                best[i] = score
        return sorted(best, key=lambda i: (-best[i], i))


SIMILAR_CUTOFF = 0.45


def _squash(folded: str) -> str:
    return folded.replace(" ", "")


def similarity(a: str, b: str) -> float:
    """How alike two folded names are, 0..1: the better of their spelling (difflib ratio, with and
    without separators) and, when they share words, the mean of spelling and shared-word share.

    ``data platform`` ~ ``data pipeline`` 0.52 (one word of two shared); ``us east 1`` ~ ``us east1``
    1.0 (same letters); ``us east 1`` ~ ``eastus`` 0.62; unrelated names stay well below 0.45."""
    if a == b:
        return 1.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    spelling = matcher.ratio()
    sa, sb = _squash(a), _squash(b)
    if sa == sb:
        return 1.0
    if (sa, sb) != (a, b):
        matcher.set_seqs(sa, sb)
        spelling = max(spelling, matcher.ratio())
    wa, wb = a.split(" "), b.split(" ")
    shared = sum(
        1
        for w in set(wa)
        if any(w == x or (min(len(w), len(x)) >= 3 and (w.startswith(x) or x.startswith(w))) for x in set(wb))
    )
    if not shared:
        return spelling if spelling >= 0.6 else spelling * 0.75  # spelling alone must be close
    words = shared / max(len(set(wa)), len(set(wb)))
    return max(spelling, (spelling + words) / 2)


MatchKind = Literal["exact", "prefix", "inside", "fuzzy"]


def match_kind(query: str, *names: str | None) -> MatchKind:
    """How ``query`` matched an item with these names (folded, as the searches compare)."""
    q = fold(query)
    forms = [fold(n) for n in names if n]
    if any(f == q for f in forms):
        return "exact"
    if any(f.startswith(q) for f in forms):
        return "prefix"
    if any(q in f for f in forms):
        return "inside"
    return "fuzzy"


_INDEX_CACHE: OrderedDict[tuple[str, int, str | None], tuple[Sequence[Any], int, SearchIndex[Any]]] = OrderedDict()
_INDEX_CACHE_SIZE = 16
_INDEX_CACHE_ITEMS = 600_000  # items indexed in all, at most (older indexes are dropped first)


def _cached_index(
    kind: str, seq: Sequence[T], subset: str | None, build: Callable[[], SearchIndex[T]]
) -> SearchIndex[T]:
    """The index of ``seq`` (and filter ``subset``), reused while the same list object is passed."""
    ck = (kind, id(seq), subset)
    hit = _INDEX_CACHE.get(ck)
    if hit is not None and hit[0] is seq and hit[1] == len(seq):
        _INDEX_CACHE.move_to_end(ck)
        return cast(SearchIndex[T], hit[2])
    _INDEX_CACHE.pop(ck, None)  # a stale index goes before the new one is built
    idx = build()
    _INDEX_CACHE[ck] = (seq, len(seq), idx)  # holds seq, so its id cannot be reused meanwhile
    while len(_INDEX_CACHE) > 1 and (
        len(_INDEX_CACHE) > _INDEX_CACHE_SIZE or sum(e[1] for e in _INDEX_CACHE.values()) > _INDEX_CACHE_ITEMS
    ):
        _INDEX_CACHE.popitem(last=False)
    return idx


def key_search_index(keys: Sequence[MegabillKey], cost_center: str | None = None) -> SearchIndex[MegabillKey]:
    """The (cached) search index of ``keys``, only those of ``cost_center`` (case-insensitive) if given."""
    cc = cost_center.strip().casefold() if cost_center and cost_center.strip() else None

    def build() -> SearchIndex[MegabillKey]:
        rows = [
            (fold(k.cost_center), fold(k.label), _fold_shared(k.key), k)
            for k in keys
            if cc is None or k.cost_center.casefold() == cc
        ]
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        return SearchIndex.named([r[3] for r in rows], [(r[1], r[2]) for r in rows], [r[0] for r in rows])

    return _cached_index("keys", keys, cc, build)


def build_value_index(values: Sequence[str]) -> SearchIndex[str]:
    """A new search index of ``values`` (non-strings skipped), sorted by folded form."""
    vals = [v for v in values if isinstance(v, str)]
    vals.sort(key=fold)  # the sort keys are the only full set of folded strings, and only for now
    return SearchIndex.sorted_values(vals, fold)


def value_search_index(values: Sequence[str]) -> SearchIndex[str]:
    """The (cached) search index of ``values``: the same object ``search_values`` uses for that list."""
    return _cached_index("values", values, None, lambda: build_value_index(values))


def search_keys(
    keys: Sequence[MegabillKey], query: str | None, *, cost_center: str | None = None, limit: int = 50
) -> SearchResult[MegabillKey]:
    """Keys matching ``query`` over key, display name and cost center, best first.

    ``cost_center`` filters case-insensitively. Within a tier keys are ordered by cost
    center then display name; with no query, all (filtered) keys in their original order.
    """
    cc = cost_center.strip().casefold() if cost_center and cost_center.strip() else None
    limit = max(0, limit)
    if query is None or not fold(query):
        items = list(keys) if cc is None else [k for k in keys if k.cost_center.casefold() == cc]
        return SearchResult(items[:limit], len(items), len(items) > limit)
    return key_search_index(keys, cost_center).search(query, limit)


def search_values(values: Sequence[str], query: str | None, limit: int = 50) -> SearchResult[str]:
    """Values matching ``query``: exact, prefix, substring, then fuzzy; alphabetical within a tier."""
    limit = max(0, limit)
    if query is None or not fold(query):
        return SearchResult(list(values[:limit]), len(values), len(values) > limit)
    return value_search_index(values).search(query, limit)


def search_named(items: Sequence[T], query: str | None, name: Callable[[T], str]) -> list[T]:
    """Items whose name matches ``query``, best match first (same ranking as :func:`search_values`);
    all of them, in order, without a query. Items sharing a name stay together."""
    if query is None or not fold(query):
        return list(items)
    by_name: dict[str, list[T]] = {}
    for item in items:
        by_name.setdefault(name(item), []).append(item)
    ranked = search_values(list(by_name), query, limit=len(by_name) or 1).matches
    return [item for n in ranked for item in by_name[n]]


def group_by_cost_center(keys: Sequence[MegabillKey]) -> dict[str, list[MegabillKey]]:
    """Keys grouped by cost center, in first-seen order (for the compact listing)."""
    out: dict[str, list[MegabillKey]] = {}
    for k in keys:
        out.setdefault(k.cost_center, []).append(k)
    return out
