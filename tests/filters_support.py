"""Test helpers for the filter model: an in-memory catalogue, the filter semantics as an
evaluator (on Finout filters and on intents), and key resolution / rendering over plain lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from finout_mcp.api.models import FinoutFilter, MegabillKey, VirtualTag
from finout_mcp.filters.render import render
from finout_mcp.filters.vocabulary import CONTAINS_OPS, NEGATION, normalize_field, normalize_operator
from finout_mcp.services.keys import KeyIndex

T = TypeVar("T")


class StaticCatalog:
    """An in-memory catalogue (:class:`~finout_mcp.services.keys.KeyCatalog`) with the data at hand."""

    def __init__(
        self,
        keys: Sequence[MegabillKey],
        values: Mapping[tuple[str, str], Sequence[str]] | None = None,
        tags: Sequence[VirtualTag] | None = None,
    ) -> None:
        self._keys = list(keys)
        self._values = {k: list(v) for k, v in (values or {}).items()}
        self._tags = list(tags or [])
        self.value_calls: list[tuple[str, str]] = []

    async def keys(self) -> list[MegabillKey]:
        return self._keys

    async def values(self, cost_center: str, key: str) -> list[str]:
        self.value_calls.append((cost_center, key))
        try:
            return self._values[(cost_center, key)]
        except KeyError:
            raise LookupError(f"unknown key {cost_center}.{key}") from None

    async def virtual_tags(self) -> list[VirtualTag]:
        return self._tags

    def derived(self, name: str, sources: tuple[object, ...], build: Callable[[], T]) -> T:
        return build()  # small lists: built afresh each time


def resolve_key(
    keys: Sequence[MegabillKey], key: str, cost_center: str | None = None, tags: Sequence[VirtualTag] = ()
) -> MegabillKey:
    """One key of ``keys`` (and ``tags``) by key or display name: the composer's resolution."""
    return KeyIndex(keys, tags).require(key, cost_center)


def readable(filter: FinoutFilter, keys: Sequence[MegabillKey]) -> str:
    """A filter's one-line form with the display names of ``keys``."""
    return render(filter, KeyIndex(keys).display_name)


# ----------------------------------------------------------------------------- semantics


def _leaf_truth(op: str, values: Sequence[str], v: str | None) -> bool:
    if op in NEGATION and op not in {"oneOf", "is", "contains", "exists"}:
        return not _leaf_truth(NEGATION[op], values, v)
    if v is None:
        return False
    if op == "exists":
        return True
    if op == "contains":
        return bool(values) and values[0] in v
    return v in values  # oneOf / is


def evaluate(filter: FinoutFilter, row: Mapping[tuple[str, str], str | None]) -> bool:
    """Does a cost row match a Finout filter? ``row`` maps (costCenter, key) → value (missing = None).

    Semantics: oneOf/is/contains/exists are false on a missing key; notOneOf/isNot/notContains/
    notExists are their exact complements (true on a missing key). ``contains`` is a
    case-sensitive substring test. An empty AND is true, an empty OR false.
    """
    if "AND" in filter:
        return all(evaluate(c, row) for c in filter["AND"])
    if "OR" in filter:
        return any(evaluate(c, row) for c in filter["OR"])
    op = filter["operator"]
    raw = filter.get("value")
    values = [] if raw is None else [str(x) for x in raw] if isinstance(raw, list) else [str(raw)]
    return _leaf_truth(op, values, row.get((filter["costCenter"], filter["key"])))


def evaluate_intent(
    intent: Mapping[str, Any],
    row: Mapping[tuple[str, str], str | None],
    keys: Sequence[MegabillKey] | None = None,
    tags: Sequence[VirtualTag] = (),
) -> bool:
    """The same semantics on an intent *before* normalisation (``all``/``any``/``not``, raw
    ``AND``/``OR``, any operator alias, ``value`` or ``values``, scalar or list).

    Keys are resolved with ``keys`` (by key or display name) when given; otherwise a condition
    must name its exact ``cost_center`` and ``key``. The composer must preserve it.
    """
    index = KeyIndex(keys, tags) if keys is not None else None

    def ev(node: Mapping[str, Any]) -> bool:
        for name, body in node.items():
            word = str(name).lower()
            if word in ("all", "and"):
                return all(ev(c) for c in body)
            if word in ("any", "or"):
                return any(ev(c) for c in body)
            if word == "not":
                return not ev(body)
        f: dict[str, Any] = {}
        for name, val in node.items():
            norm = normalize_field(name)
            if norm:
                f[norm] = val
        cc, key = f.get("cost_center"), str(f["key"])
        if index is not None:
            entry = index.resolve(cc, key).entry
            if entry is None:
                raise ValueError(f"unresolvable key {cc}.{key}")
            cc, key = entry.cost_center, entry.key
        op = normalize_operator(str(f["op"]))
        if op is None:
            raise ValueError(f"bad operator {f['op']!r}")
        raw = f.get("value")
        items = [] if raw is None else list(raw) if isinstance(raw, list | tuple) else [raw]
        values = [("true" if x else "false") if isinstance(x, bool) else str(x) for x in items]
        if op in CONTAINS_OPS:
            values = values[:1]
        return _leaf_truth(op, values, row.get((str(cc), key)))

    return ev(intent)
