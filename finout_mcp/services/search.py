"""Search over the catalogue's lists: exact > prefix > substring > fuzzy, over folded forms.

Names are compared case- and separator-insensitively: ``"Account Name"``, ``"account_name"``
and ``"account-name"`` all fold to ``"account name"`` (:func:`fold`). A :class:`SearchIndex`
ranks the matches of a query in tiers, each bounded, so a search over 50,000 keys or 200,000
values takes a few ms once the index is built; :func:`similarity` and
:meth:`SearchIndex.closest` give did-you-mean candidates for a name that is not there.

Building an index costs about a second for the largest lists, so the index of a list the
catalogue handed out is kept by that catalogue (:meth:`~finout_mcp.services.catalog.Catalog.derived`):
pass it as ``owner`` to :func:`key_search_index`, :func:`value_search_index`, :func:`search_keys` or
:func:`search_values`. Without one, each call builds a new index (:data:`FRESH`): right for
short lists nobody keeps. Nothing here is cached.
"""

from __future__ import annotations

import difflib
import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain
from typing import Generic, Literal, Protocol, TypeVar, overload

from finout_mcp.api.models import MegabillKey

T = TypeVar("T")

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


MatchKind = Literal["exact", "prefix", "inside", "fuzzy"]


@dataclass
class SearchResult(Generic[T]):
    matches: list[T]
    total: int  # matches found (fuzzy ones are looked for only when too few others)
    truncated: bool
    at_least: bool = False  # counting stopped at the cap: ``total`` is a lower bound
    fuzzy_searched: bool = False  # the similar-spelling tier ran (it runs only when the others found too few)
    # How each match matched, in the order of ``matches`` (the tier that took it; empty without a
    # query): a name equal to the query, starting with it, containing it (or the item's other
    # text does, e.g. a key's cost center), or only a similar spelling.
    kinds: list[MatchKind] = field(default_factory=list)


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
        kinds: list[MatchKind] = []
        seen: set[int] = set()

        def take(i: int, kind: MatchKind) -> None:
            if i not in seen and len(taken) < limit:
                seen.add(i)
                taken.append(i)
                kinds.append(kind)

        forms = self.forms
        lo = bisect_left(forms, q)  # tier 1: exact
        exact_hi = bisect_right(forms, q, lo)
        hi = bisect_left(forms, q + "\U0010ffff", exact_hi)  # tier 2: prefix
        for j in range(lo, hi):
            if len(taken) >= limit:
                break
            take(self._item(j), "exact" if j < exact_hi else "prefix")

        # tier 3: substring (a superset of tiers 1-2, so it also gives the total)
        want = limit + len(seen)
        cap = max(_SCAN_HIT_CAP, want)
        total, hits = self._line_hits(q, collect=want, cap=cap)
        # A very common text (thousands of matches) is not counted to the end: the answer says
        # "more than N", which is all a caller can use, instead of scanning 200,000 values.
        at_least = total >= cap
        for i in hits:
            take(i, "inside")  # a name equal to or starting with q was taken above (or taken is full)

        # tier 4: fuzzy, only when the others found too few
        fuzzy_searched = total < limit and len(q) >= fuzzy_min
        if fuzzy_searched:
            fuzzy = self._fuzzy(q, exclude=seen)
            total += len(fuzzy)
            for i in fuzzy:
                take(i, "fuzzy")
        matches = [self.items[i] for i in taken]
        return SearchResult(matches, total, total > len(taken), at_least, fuzzy_searched, kinds)

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


# ----------------------------------------------------------------------------- building


def cost_center_subset(cost_center: str | None) -> str | None:
    """The form a cost center filter compares in (casefolded), or ``None`` for all keys."""
    return cost_center.strip().casefold() if cost_center and cost_center.strip() else None


def build_key_index(keys: Sequence[MegabillKey], cost_center: str | None = None) -> SearchIndex[MegabillKey]:
    """A new search index of ``keys``, only those of ``cost_center`` (case-insensitive) if given."""
    cc = cost_center_subset(cost_center)
    rows = [
        (fold(k.cost_center), fold(k.label), _fold_shared(k.key), k)
        for k in keys
        if cc is None or k.cost_center.casefold() == cc
    ]
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return SearchIndex.named([r[3] for r in rows], [(r[1], r[2]) for r in rows], [r[0] for r in rows])


def build_value_index(values: Sequence[str]) -> SearchIndex[str]:
    """A new search index of ``values`` (non-strings skipped), sorted by folded form."""
    vals = [v for v in values if isinstance(v, str)]
    vals.sort(key=fold)  # the sort keys are the only full set of folded strings, and only for now
    return SearchIndex.sorted_values(vals, fold)


class IndexOwner(Protocol):
    """Who keeps the indexes of its lists: the catalogue that handed them out, or :data:`FRESH`."""

    def derived(self, name: Hashable, sources: tuple[object, ...], build: Callable[[], T]) -> T:
        """``build()``, kept under ``name`` while ``sources`` are the very same objects."""
        ...


class _Fresh:
    """Keeps nothing: every call builds anew (for short lists no catalogue holds)."""

    def derived(self, name: Hashable, sources: tuple[object, ...], build: Callable[[], T]) -> T:
        return build()


FRESH: IndexOwner = _Fresh()


def key_search_index(
    keys: Sequence[MegabillKey], cost_center: str | None = None, *, owner: IndexOwner = FRESH
) -> SearchIndex[MegabillKey]:
    """The search index of ``keys`` (only those of ``cost_center``, any case, if given), kept by
    ``owner`` while the same list is passed: built once per list the catalogue hands out."""
    name = ("key index", cost_center_subset(cost_center))
    return owner.derived(name, (keys,), lambda: build_key_index(keys, cost_center))


def value_search_index(values: Sequence[str], *, owner: IndexOwner = FRESH) -> SearchIndex[str]:
    """The search index of ``values``, kept by ``owner`` while the same list is passed."""
    return owner.derived(("value index",), (values,), lambda: build_value_index(values))


# ----------------------------------------------------------------------------- searching


def search_keys(
    keys: Sequence[MegabillKey],
    query: str | None,
    *,
    cost_center: str | None = None,
    limit: int = 50,
    owner: IndexOwner = FRESH,
) -> SearchResult[MegabillKey]:
    """Keys matching ``query`` over key, display name and cost center, best first.

    ``cost_center`` filters case-insensitively. Within a tier keys are ordered by cost
    center then display name; with no query, all (filtered) keys in their original order.
    ``owner``: the catalogue that handed out ``keys`` (it keeps their index).
    """
    cc = cost_center_subset(cost_center)
    limit = max(0, limit)
    if query is None or not fold(query):
        items = list(keys) if cc is None else [k for k in keys if k.cost_center.casefold() == cc]
        return SearchResult(items[:limit], len(items), len(items) > limit)
    return key_search_index(keys, cost_center, owner=owner).search(query, limit)


def search_values(
    values: Sequence[str], query: str | None, limit: int = 50, *, owner: IndexOwner = FRESH
) -> SearchResult[str]:
    """Values matching ``query``: exact, prefix, substring, then fuzzy; alphabetical within a tier.
    ``owner``: the catalogue that handed out ``values`` (it keeps their index)."""
    limit = max(0, limit)
    if query is None or not fold(query):
        return SearchResult(list(values[:limit]), len(values), len(values) > limit)
    return value_search_index(values, owner=owner).search(query, limit)


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
