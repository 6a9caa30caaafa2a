"""Key resolution: a condition's key (its Finout key or display name, any case) → one MegabillKey.

:class:`KeyIndex` resolves over the account's keys list and its virtual tags; lookups go through
the catalogue's search index of the same keys list (the one ``list_megabill_keys`` uses). An
index is built once per keys list by the catalogue that holds the list (:func:`key_index`):
nothing is cached here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from finout_mcp.api.models import VIRTUAL_TAGS, MegabillKey, VirtualTag
from finout_mcp.filters.parse import Resolution
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence, neutralise
from finout_mcp.services.search import FRESH, IndexOwner, SearchIndex, fold, key_search_index, search_keys

# " (Account Name)" after a key: the display name this server writes beside keys (key_ref).
_DISPLAY_SUFFIX = re.compile(r"\s*\([^()]*\)\s*$")

T = TypeVar("T")


@runtime_checkable
class KeyCatalog(Protocol):
    """The account's MegaBill catalogue, as the composer and the linter use it."""

    async def keys(self) -> list[MegabillKey]: ...

    async def values(self, cost_center: str, key: str) -> list[str]: ...

    async def virtual_tags(self) -> list[VirtualTag]: ...

    def derived(self, name: Hashable, sources: tuple[object, ...], build: Callable[[], T]) -> T:
        """``build()``, kept under ``name`` while ``sources`` are the very same objects."""
        ...


def key_ref(k: MegabillKey) -> str:
    """``CostCenter.key (Display Name)``: how a key is named in findings and candidates."""
    base = f"{k.cost_center}.{k.key}"
    if not k.display_name or k.display_name == k.key:
        return base
    name = k.display_name
    # Account data: a name with line breaks, control or fence characters is «fenced».
    return f"{base} ({name if neutralise(name) == name else fence(name)})"


class KeyIndex:
    """Key resolution over the keys list and the virtual tags.

    Lookups go through the catalogue's search index of the same keys list (the one
    ``list_megabill_keys`` uses): no tables of its own beyond the cost centers and the few
    virtual tags the keys list lacks or names differently.
    """

    def __init__(
        self, keys: Sequence[MegabillKey], tags: Sequence[VirtualTag] = (), *, owner: IndexOwner = FRESH
    ) -> None:
        self._keys = keys
        self._owner = owner  # who keeps the search index of ``keys``: the catalogue that handed them out
        self._searched: dict[int, SearchIndex[MegabillKey]] = {}  # pool number -> its index, once fetched
        self.tags: dict[str, VirtualTag] = {t.id: t for t in tags}
        self.cost_centers: dict[str, str] = {}
        tag_names: dict[str, str | None] = {}
        for k in keys:
            self.cost_centers.setdefault(k.cost_center.lower(), k.cost_center)
            if k.cost_center == VIRTUAL_TAGS:
                tag_names.setdefault(k.key, k.display_name)
        self._extra: list[MegabillKey] = []  # tags the keys list lacks, or names differently
        for t in tags:
            if t.id in tag_names and tag_names[t.id] == t.name:
                continue
            tag_names.setdefault(t.id, t.name)
            self._extra.append(MegabillKey(cost_center=VIRTUAL_TAGS, key=t.id, display_name=t.name))
            self.cost_centers.setdefault(VIRTUAL_TAGS.lower(), VIRTUAL_TAGS)

    def _pools(self) -> tuple[Sequence[MegabillKey], ...]:
        return (self._keys, self._extra) if self._extra else (self._keys,)

    def _matches(self, text: str) -> list[MegabillKey]:
        """Keys (then extra tags) whose key or display name folds to ``fold(text)``."""
        q = fold(text)
        if not q:  # only separators: no folded form to look up
            low = text.lower()
            return [
                k for pool in self._pools() for k in pool if low in (k.key.lower(), (k.display_name or "").lower())
            ]
        return [k for n in range(len(self._pools())) for k in self._index(n).exact(q)]

    def _index(self, n: int) -> SearchIndex[MegabillKey]:
        """The search index of pool ``n`` (0: the keys list, through its owner; 1: the extra tags)."""
        index = self._searched.get(n)
        if index is None:
            index = key_search_index(self._pools()[n], owner=self._owner if n == 0 else FRESH)
            self._searched[n] = index
        return index

    def entry(self, cc: str, key: str) -> MegabillKey | None:
        """The key ``(cc, key)``: from the keys list when it is there, else from the tags."""
        for k in self._matches(key):
            if k.cost_center == cc and k.key == key:
                return k
        return None

    def display_name(self, cc: str, key: str) -> str | None:
        entry = self.entry(cc, key)
        return entry.display_name if entry else None

    def fuzzy(self, query: str, cost_center: str | None, n: int = 5) -> list[str]:
        """Closest keys to ``query`` by key and display name, as ``CC.key (Name)`` refs: the
        catalogue's key search over the keys list, then over the tags it lacks."""
        out: list[str] = []
        for pool in self._pools():
            if len(out) >= n:
                break
            owner = self._owner if pool is self._keys else FRESH
            for k in search_keys(pool, query, cost_center=cost_center, limit=n, owner=owner).matches:
                if cost_center is not None and k.cost_center != cost_center:
                    continue
                ref = key_ref(self.entry(k.cost_center, k.key) or k)
                if ref not in out:
                    out.append(ref)
        return out[:n]

    def resolve(self, cost_center: str | None, key: str) -> Resolution:
        cc: str | None = None
        if cost_center is not None:
            cc = self.cost_centers.get(cost_center.strip().lower())
            if cc is None:
                known = sorted(self.cost_centers.values(), key=str.lower)
                close = difflib.get_close_matches(cost_center, known, n=3, cutoff=0.5)
                return Resolution(
                    code="unknown_cost_center",
                    message=(
                        f"Unknown cost center {cost_center!r}. Known cost centers: {', '.join(known)}. "
                        "Use one of them as cost_center, or leave cost_center out to infer it from the key."
                    ),
                    candidates=close or known,
                )
        k = key.strip()
        low = k.lower()
        # (matched text, entry): by key, then by display name, case-insensitively
        found = [(m, self.entry(m.cost_center, m.key) or m) for m in self._matches(k)]
        by_key = [(m.key, e) for m, e in found if m.key.lower() == low]
        by_name = [(m.display_name, e) for m, e in found if m.display_name and m.display_name.lower() == low]

        def tiers(pool: Sequence[tuple[str | None, MegabillKey]]) -> list[list[MegabillKey]]:
            scoped = [(text, e) for text, e in pool if cc is None or e.cost_center == cc]
            return [[e for text, e in scoped if text == k], [e for _, e in scoped]]

        for rank, tier in enumerate((*tiers(by_key), *tiers(by_name))):
            uniq = list(dict.fromkeys(tier))
            if len(uniq) == 1 and cc is None and rank < 2:
                # The key of one cost center, and what people call a key of another (AWS `region` vs
                # GCP `gcp_region` shown as "Region"): without cost_center, neither is the answer.
                named = [e for _, e in by_name if e.cost_center != uniq[0].cost_center]
                if named:
                    uniq = list(dict.fromkeys([uniq[0], *named]))
                    refs = [key_ref(e) for e in uniq]
                    return Resolution(
                        code="ambiguous_key",
                        message=(
                            f"Key {key!r} is ambiguous: it is the key {refs[0]} and the display name of "
                            f"{', '.join(refs[1:])}. Set cost_center to pick one."
                        ),
                        candidates=refs,
                    )
            if len(uniq) == 1:
                return Resolution(entry=uniq[0])
            if len(uniq) > 1:
                refs = [key_ref(e) for e in uniq]
                return Resolution(
                    code="ambiguous_key",
                    message=(
                        f"Key {key!r} is ambiguous: it matches {', '.join(refs)}. "
                        "Set cost_center (and use the exact key) to pick one."
                    ),
                    candidates=refs,
                    matches=uniq,
                )
        as_ref = self._as_reference(k, cc)
        if as_ref is not None:
            return as_ref
        where = f" in cost center {cc}" if cc else ""
        candidates = self.fuzzy(k, cc)
        elsewhere: list[str] = []
        if cc is not None:
            elsewhere = list(dict.fromkeys(key_ref(e) for _, e in (*by_key, *by_name)))
        msg = f"Unknown key {key!r}{where}."
        if elsewhere:
            msg += f" It exists under another cost center: {', '.join(elsewhere)}."
        if candidates:
            msg += f" Did you mean: {', '.join(candidates)}?"
        msg += " Use list_megabill_keys(search=...) to find the exact key."
        return Resolution(code="unknown_key", message=msg, candidates=list(dict.fromkeys(elsewhere + candidates)))

    def _as_reference(self, text: str, cc: str | None) -> Resolution | None:
        """A key written the way this server writes keys back: ``Kubernetes.Namespace``,
        ``AWS.aws_account_name (Account Name)`` (a did-you-mean copied whole). Only when the part
        before the first dot is a cost center (and agrees with ``cost_center``, if given)."""
        head, dot, rest = text.partition(".")
        named = self.cost_centers.get(head.strip().lower()) if dot else None
        if named is None or (cc is not None and cc != named):
            return None
        rest = _DISPLAY_SUFFIX.sub("", rest).strip()
        found = self.resolve(named, rest) if rest else None
        return found if found is not None and found.entry is not None else None

    def require(self, key: str, cost_center: str | None = None) -> MegabillKey:
        """One key by its key or display name (any case), optionally within ``cost_center``: the
        resolution the composer applies to conditions. Unknown or ambiguous -> :class:`InputError`
        naming the candidates and the fix."""
        if not key or not key.strip():
            raise InputError("No key given.", hint="Pass a key or display name from list_megabill_keys.")
        found = self.resolve(cost_center if cost_center and cost_center.strip() else None, key)
        if found.entry is None:
            raise InputError(found.message)
        return found.entry


def key_index(
    catalog: KeyCatalog, keys: Sequence[MegabillKey], tags: Sequence[VirtualTag] | None = None
) -> KeyIndex:
    """The :class:`KeyIndex` of the catalogue's keys list (and virtual tags, when given): built once
    while they are the lists the catalogue holds, and kept by it (one per kind)."""
    name = "key_index" if tags is None else "key_index+tags"
    return catalog.derived(name, (keys, tags or ()), lambda: KeyIndex(keys, tags or (), owner=catalog))


async def find_key(catalog: KeyCatalog, key: str, cost_center: str | None = None) -> MegabillKey:
    """One key of the catalogue by its key or display name (:meth:`KeyIndex.require`)."""
    return key_index(catalog, await catalog.keys()).require(key, cost_center)
