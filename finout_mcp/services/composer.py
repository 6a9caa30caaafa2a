"""The filter composer: a structured intent (or a raw Finout filter) → a valid, canonical Finout filter.

Pipeline (see DESIGN.md, "The filter intent"):

1. *Guard* — the raw input is walked iteratively (no recursion) and rejected when it nests
   deeper than :data:`MAX_INPUT_NESTING` or holds more than :data:`MAX_INPUT_NODES` objects.
2. *Parse* — every node is validated: keys resolved against the account's MegaBill keys and
   virtual tags (by key or display name, case-insensitively), operators and their aliases
   normalised, values shaped to what the operator needs. Problems become :class:`Finding` s.
3. *Normalise* — :func:`finout_mcp.filters.canonical.canonical`: ``not`` pushed to the leaves
   (De Morgan), AND-in-AND / OR-in-OR merged, one-child groups replaced by their child,
   duplicates dropped.
4. *Check* — limits of the canonical filter, and (optionally) the values against the values
   that exist for each key (warnings only: a value may be new data).

Errors are findings (``ok=False``), never exceptions; only a spec that is not an object at
all raises :class:`~finout_mcp.services.errors.InputError`.

Semantics used by :func:`evaluate` (a missing key is ``None``): ``oneOf``/``is``/``contains``
and ``exists`` are false on a missing key, and their negations are exactly their complements
(so ``notOneOf``/``isNot``/``notContains``/``notExists`` are true on a missing key). This makes
the De Morgan push-down exact.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import anyio
from pydantic import BaseModel, Field

from finout_mcp.api.models import VIRTUAL_TAGS, FinoutFilter, MegabillKey, TagReference, VirtualTag, value_label
from finout_mcp.filters.canonical import canonical
from finout_mcp.filters.tree import Cond, Group, Node, Not, leaves, to_finout, tree_depth
from finout_mcp.filters.vocabulary import (
    CONTAINS_OPS,
    EQUALITY_OPS,
    GROUP_WORDS,
    LIST_OPS,
    NEGATION,
    NO_VALUE_OPS,
    NOT_WORD,
    OPERATOR_ALIASES,
    OPERATORS,
    READABLE_OPS,
    SINGLE_OPS,
    normalize_field,
    normalize_operator,
)
from finout_mcp.services.catalog import (
    SearchIndex,
    build_value_index,
    fold,
    key_search_index,
    search_keys,
    value_search_index,
)
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence, neutralise

# ----------------------------------------------------------------------------- limits
# Finout documents no limits on filters or tags; these are OUR assumptions, chosen to be far
# above any sane hand-written filter and low enough to keep the API and the UI responsive.

MAX_DEPTH = 8
"""Max group nesting of the canonical filter (a bare condition has depth 0). Our assumption."""
MAX_CONDITIONS = 500
"""Max leaf conditions in one canonical filter. Our assumption: Finout documents none."""
MAX_VALUES = 1000
"""Max values in one oneOf/notOneOf. Our assumption: Finout documents none."""
MAX_RULES = 1000
"""Max rules in one virtual tag. Our assumption: Finout documents none."""
MAX_INPUT_NESTING = 64
"""Input guard: max nesting of the raw input (objects, and lists directly inside lists)."""
MAX_INPUT_NODES = 20_000
"""Input guard: max objects + lists in the raw input, checked before any recursion."""
VALUE_FETCH_CONCURRENCY = 5
"""Distinct keys whose values are fetched at once (the Finout client caps at 5 anyway)."""
MAX_VALUE_WARNINGS_PER_CONDITION = 10
"""At most this many ``unknown_value`` warnings per condition (the rest are summarised)."""

# ----------------------------------------------------------------------------- models


class Finding(BaseModel):
    """One problem found in a filter or a tag. Errors block any write; warnings do not."""

    severity: Literal["error", "warning"]
    code: str
    message: str
    path: str = Field(default="", description='Where in the input, e.g. "all[1].any[0]"; "" is the root.')
    candidates: list[str] = Field(default_factory=list)
    closest_values: dict[str, list[str]] | None = Field(
        default=None,
        description="For an ambiguous key with values: per candidate key, its existing values closest to "
        "the ones asked for (an exact one first).",
    )


class ComposeResult(BaseModel):
    """The canonical filter (None when there are errors), its readable form, and findings."""

    ok: bool
    filter: dict[str, Any] | None = None
    readable: str | None = None
    conditions: int = 0
    depth: int = 0
    findings: list[Finding] = Field(default_factory=list)


# ----------------------------------------------------------------------------- catalogue


@runtime_checkable
class KeyCatalog(Protocol):
    """The account's MegaBill catalogue. Implementations should return the *same* list object
    from ``keys()`` while it is unchanged (the composer caches its index by identity)."""

    async def keys(self) -> list[MegabillKey]: ...

    async def values(self, cost_center: str, key: str) -> list[str]: ...

    async def virtual_tags(self) -> list[VirtualTag]: ...


class StaticCatalog:
    """An in-memory :class:`KeyCatalog` (tests, the sandbox, anything with the data at hand)."""

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


# ----------------------------------------------------------------------------- key index


def key_ref(k: MegabillKey) -> str:
    """``CostCenter.key (Display Name)``: how a key is named in findings and candidates."""
    base = f"{k.cost_center}.{k.key}"
    if not k.display_name or k.display_name == k.key:
        return base
    name = k.display_name
    # Account data: a name with line breaks, control or fence characters is «fenced».
    return f"{base} ({name if neutralise(name) == name else fence(name)})"


@dataclass
class _Resolution:
    entry: MegabillKey | None = None
    code: str = ""
    message: str = ""
    candidates: list[str] = field(default_factory=list)
    matches: list[MegabillKey] = field(default_factory=list)  # an ambiguous key's candidates


class KeyIndex:
    """Key resolution over the keys list and the virtual tags.

    Lookups go through the catalogue's search index of the same keys list (the one
    ``list_megabill_keys`` uses): no tables of its own beyond the cost centers and the few
    virtual tags the keys list lacks or names differently.
    """

    def __init__(self, keys: Sequence[MegabillKey], tags: Sequence[VirtualTag]) -> None:
        self._keys = keys
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
        return [k for pool in self._pools() for k in key_search_index(pool).exact(q)]

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
            for k in search_keys(pool, query, cost_center=cost_center, limit=n).matches:
                if cost_center is not None and k.cost_center != cost_center:
                    continue
                ref = key_ref(self.entry(k.cost_center, k.key) or k)
                if ref not in out:
                    out.append(ref)
        return out[:n]

    def resolve(self, cost_center: str | None, key: str) -> _Resolution:
        cc: str | None = None
        if cost_center is not None:
            cc = self.cost_centers.get(cost_center.strip().lower())
            if cc is None:
                known = sorted(self.cost_centers.values(), key=str.lower)
                close = difflib.get_close_matches(cost_center, known, n=3, cutoff=0.5)
                return _Resolution(
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
                    return _Resolution(
                        code="ambiguous_key",
                        message=(
                            f"Key {key!r} is ambiguous: it is the key {refs[0]} and the display name of "
                            f"{', '.join(refs[1:])}. Set cost_center to pick one."
                        ),
                        candidates=refs,
                    )
            if len(uniq) == 1:
                return _Resolution(entry=uniq[0])
            if len(uniq) > 1:
                refs = [key_ref(e) for e in uniq]
                return _Resolution(
                    code="ambiguous_key",
                    message=(
                        f"Key {key!r} is ambiguous: it matches {', '.join(refs)}. "
                        "Set cost_center (and use the exact key) to pick one."
                    ),
                    candidates=refs,
                    matches=uniq,
                )
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
        return _Resolution(code="unknown_key", message=msg, candidates=list(dict.fromkeys(elsewhere + candidates)))


_INDEX_CACHE: list[tuple[Sequence[MegabillKey], int, Sequence[VirtualTag], int, KeyIndex]] = []
_INDEX_CACHE_SIZE = 4


def key_index(keys: Sequence[MegabillKey], tags: Sequence[VirtualTag] = ()) -> KeyIndex:
    """The :class:`KeyIndex` of these lists, cached by identity (and length) of both."""
    for cached_keys, n_keys, cached_tags, n_tags, index in _INDEX_CACHE:
        if cached_keys is keys and cached_tags is tags and n_keys == len(keys) and n_tags == len(tags):
            return index
    index = KeyIndex(keys, tags)
    _INDEX_CACHE.insert(0, (keys, len(keys), tags, len(tags), index))
    del _INDEX_CACHE[_INDEX_CACHE_SIZE:]
    return index


def resolve_key(
    keys: Sequence[MegabillKey], key: str, cost_center: str | None = None, tags: Sequence[VirtualTag] = ()
) -> MegabillKey:
    """One key by its key or display name (any case), optionally within ``cost_center``.

    The same resolution the composer applies to conditions, through the same cached index.
    Unknown or ambiguous -> :class:`InputError` naming the candidates and the fix.
    """
    if not key or not key.strip():
        raise InputError("No key given.", hint="Pass a key or display name from list_megabill_keys.")
    found = key_index(keys, tags).resolve(cost_center if cost_center and cost_center.strip() else None, key)
    if found.entry is None:
        raise InputError(found.message)
    return found.entry


# ----------------------------------------------------------------------------- internal tree


# ----------------------------------------------------------------------------- input guard


def guard_input(spec: Any) -> Finding | None:
    """Reject absurd input before any recursion: iterative walk, early exit."""
    stack: list[tuple[Any, int]] = [(spec, 1)]
    count = 0
    while stack:
        obj, depth = stack.pop()
        count += 1
        if count > MAX_INPUT_NODES:
            return Finding(
                severity="error",
                code="too_large",
                message=(
                    f"The filter is too large (more than {MAX_INPUT_NODES} objects); a filter may hold "
                    f"at most {MAX_CONDITIONS} conditions. Use oneOf value lists instead."
                ),
            )
        if depth > MAX_INPUT_NESTING:
            return Finding(
                severity="error",
                code="too_deep",
                message=(
                    f"The filter nests deeper than {MAX_INPUT_NESTING} levels; a canonical filter may be "
                    f"at most {MAX_DEPTH} groups deep. Flatten it: all/any take lists of any length."
                ),
            )
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for v in obj.values() if isinstance(v, dict | list | tuple))
        elif isinstance(obj, list | tuple):
            stack.extend(
                (v, depth + 1 if isinstance(v, list | tuple) else depth)
                for v in obj
                if isinstance(v, dict | list | tuple)
            )
    return None


# ----------------------------------------------------------------------------- values


@dataclass
class ValueSet:
    """The values of one key, checked through the catalogue's search index of that list.

    A list the catalogue holds (``shared``) uses the cached index that ``list_key_values``
    builds for the same list object; any other list (a tag's outputs) gets its own.
    """

    values: Sequence[str]
    shared: bool = True
    _own: SearchIndex[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, values: Sequence[str]) -> ValueSet:
        """A set over a list of our own (not the catalogue's): indexed privately."""
        return cls(values, shared=False)

    @property
    def index(self) -> SearchIndex[str]:
        if self.shared:
            return value_search_index(self.values)
        if self._own is None:
            self._own = build_value_index(self.values)
        return self._own

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and self.index.has(value, fold(value))

    def closest(self, value: str, n: int = 5) -> list[str]:
        return self.index.closest(value, n)

    def any_contains(self, sub: str) -> bool:
        """Does a value contain ``sub``, case- and separator-insensitively?"""
        if not fold(sub):  # only separators: compare them plainly
            s = sub.casefold()
            return any(s in v.casefold() for v in self.values if isinstance(v, str))
        return self.index.contains(sub)


def value_set(values: Sequence[str]) -> ValueSet:
    """The :class:`ValueSet` of a catalogue's values list (its index is cached by the list's identity)."""
    return ValueSet(values)


def tag_outputs(tag: VirtualTag, tags: Mapping[str, VirtualTag]) -> list[str]:
    """Every value a virtual tag can take: its rules' ``to`` strings, referenced tags' outputs,
    and its default value."""
    out: dict[str, None] = {}
    seen: set[str] = set()
    stack = [tag]
    while stack:
        t = stack.pop()
        if t.id in seen:
            continue
        seen.add(t.id)
        for rule in t.rules:
            if isinstance(rule.to, TagReference):
                ref = tags.get(rule.to.key)
                if ref is not None:
                    stack.append(ref)
            elif rule.to:
                out[rule.to] = None
        if isinstance(t.default_value, TagReference):  # "else, the value of that other tag"
            ref = tags.get(t.default_value.key)
            if ref is not None:
                stack.append(ref)
        elif t.default_value:
            out[t.default_value] = None
    return list(out)


# ----------------------------------------------------------------------------- composer


def _fmt(v: Any) -> str:
    try:
        return json.dumps(v)[:80]
    except (TypeError, ValueError):
        return type(v).__name__


class ComposeContext:
    """What one compose (or one lint of many rules) shares: the index and fetched values."""

    def __init__(self, catalog: KeyCatalog, index: KeyIndex) -> None:
        self.catalog = catalog
        self.index = index
        self.values: dict[tuple[str, str], ValueSet | BaseException] = {}

    @classmethod
    async def build(cls, catalog: KeyCatalog) -> tuple[ComposeContext, list[Finding]]:
        findings: list[Finding] = []
        keys = await catalog.keys()
        try:
            tags: Sequence[VirtualTag] = await catalog.virtual_tags()
        except Exception as err:
            tags = ()
            findings.append(
                Finding(
                    severity="warning",
                    code="virtual_tags_unavailable",
                    message=f"Could not list virtual tags ({type(err).__name__}); tag names not resolved.",
                )
            )
        return cls(catalog, key_index(keys, tags)), findings

    async def fetch(self, pairs: Sequence[tuple[str, str]]) -> None:
        todo = [p for p in dict.fromkeys(pairs) if p not in self.values]
        if not todo:
            return
        limiter = anyio.CapacityLimiter(VALUE_FETCH_CONCURRENCY)

        async def one(cc: str, key: str) -> None:
            async with limiter:
                tag = self.index.tags.get(key) if cc == VIRTUAL_TAGS else None
                if tag is not None:
                    self.values[(cc, key)] = ValueSet.of(tag_outputs(tag, self.index.tags))
                    return
                try:
                    self.values[(cc, key)] = value_set(await self.catalog.values(cc, key))
                except Exception as err:
                    self.values[(cc, key)] = err

        async with anyio.create_task_group() as tg:
            for cc, key in todo:
                tg.start_soon(one, cc, key)


class _Parser:
    def __init__(self, index: KeyIndex) -> None:
        self.index = index
        self.findings: list[Finding] = []
        # ambiguous keys of conditions with values: (the error, the candidate keys, the values asked for)
        self.ambiguous: list[tuple[Finding, list[MegabillKey], tuple[str, ...]]] = []

    def error(self, code: str, message: str, path: str, candidates: Sequence[str] = ()) -> None:
        self.findings.append(
            Finding(severity="error", code=code, message=message, path=path, candidates=list(candidates))
        )

    def warn(self, code: str, message: str, path: str, candidates: Sequence[str] = ()) -> None:
        self.findings.append(
            Finding(severity="warning", code=code, message=message, path=path, candidates=list(candidates))
        )

    def parse(self, node: Any, path: str) -> Node | None:
        if not isinstance(node, dict):
            self.error(
                "bad_node",
                f"Expected an object (a condition, or all/any/not), got {_fmt(node)}. A condition is "
                '{"key": ..., "op": ..., "values": [...]}; a group is {"all": [...]} or {"any": [...]}.',
                path,
            )
            return None
        names = {str(k): k for k in node}
        structural = [k for k in names if k.lower() in GROUP_WORDS or k.lower() == NOT_WORD]
        if len(structural) > 1 or (structural and len(names) > 1):
            self.error(
                "mixed_node",
                f"A node must be exactly one of all, any, not or a condition; this one has {sorted(names)}. "
                "Split it: wrap the parts in all:[...] or any:[...].",
                path,
            )
            return None
        prefix = f"{path}." if path else ""
        if structural:
            word = structural[0]
            body = node[names[word]]
            sub = f"{prefix}{word}"
            if word.lower() == NOT_WORD:
                if not isinstance(body, dict):
                    self.error(
                        "bad_not",
                        f"not takes one node (an object), got {_fmt(body)}. To negate several, use "
                        '{"not": {"all": [...]}} or {"not": {"any": [...]}}.',
                        sub,
                    )
                    return None
                child = self.parse(body, sub)
                return Not(child) if child is not None else None
            op = GROUP_WORDS[word.lower()]
            if not isinstance(body, list | tuple):
                self.error("bad_group", f"{word} takes a list of nodes, got {_fmt(body)}.", sub)
                return None
            if not body:
                self.error(
                    "empty_group",
                    f"{word} is empty; give it at least one condition, or remove it.",
                    sub,
                )
                return None
            kids = [self.parse(c, f"{sub}[{i}]") for i, c in enumerate(body)]
            if any(k is None for k in kids):
                return None
            return Group(op, tuple(k for k in kids if k is not None))
        return self.condition(node, path)

    def condition(self, node: dict[Any, Any], path: str) -> Cond | None:
        fields: dict[str, Any] = {}
        for raw_name, val in node.items():
            norm = normalize_field(raw_name)
            if norm is None:
                self.warn(
                    "unknown_field",
                    f"Ignored unknown field {str(raw_name)!r}; a condition has key, cost_center, op, values.",
                    path,
                )
                continue
            if norm in fields and norm == "value" and fields[norm] != val:
                self.error(
                    "conflicting_values",
                    "Both value and values are given with different contents; give only one.",
                    path,
                )
                return None
            fields[norm] = val
        fields.pop("display_name", None)  # GET responses carry it; never sent back
        ok = True
        key = fields.get("key")
        if not isinstance(key, str) or not key.strip():
            self.error(
                "missing_key",
                f"A condition needs a key (the Finout key or its display name), got {_fmt(key)}."
                if "key" in fields
                else 'A condition needs "key" (the Finout key or its display name), e.g. '
                '{"key": "Account Name", "op": "in", "values": ["prod"]}.',
                path,
            )
            ok = False
        cc = fields.get("cost_center")
        if cc is not None and (not isinstance(cc, str) or not cc.strip()):
            self.error("bad_cost_center", f"cost_center must be a non-blank string, got {_fmt(cc)}.", path)
            ok = False
            cc = None
        op_raw = fields.get("op")
        op: str | None = None
        valid = ", ".join(OPERATORS) + "; aliases: " + ", ".join(OPERATOR_ALIASES)
        if op_raw is None:
            self.error("missing_operator", f'A condition needs "op", one of: {valid}.', path)
            ok = False
        elif not isinstance(op_raw, str) or (op := normalize_operator(op_raw)) is None:
            self.error(
                "unknown_operator",
                f"Unknown operator {_fmt(op_raw)}. Valid operators: {valid}.",
                path,
                list(OPERATORS),
            )
            ok = False
        entry: MegabillKey | None = None
        res: _Resolution | None = None
        if isinstance(key, str) and key.strip():
            res = self.index.resolve(cc if isinstance(cc, str) else None, key)
            if res.entry is None:
                self.error(res.code, res.message, path, res.candidates)
                ok = False
            entry = res.entry
        shaped = self.shape(op, fields, path) if op is not None else None
        if entry is None and res is not None and res.matches and shaped is not None and shaped[1]:
            self.ambiguous.append((self.findings[-1], res.matches, shaped[1]))
        if not ok or entry is None or shaped is None:
            return None
        return Cond(entry.cost_center, entry.key, shaped[0], shaped[1], path)

    def shape(self, op: str, fields: dict[str, Any], path: str) -> tuple[str, tuple[str, ...]] | None:
        has = "value" in fields
        raw = fields.get("value")
        if op in NO_VALUE_OPS:
            if has and raw is not None and raw != "" and raw != []:
                self.error(
                    "unexpected_value",
                    f"{op} takes no value, got {_fmt(raw)}. Drop the value, or use is/oneOf to match values.",
                    path,
                )
                return None
            return op, ()
        if raw is None:
            need = '"values": ["..."]' if op in LIST_OPS else '"value": "..."'
            self.error("missing_value", f"{op} needs a value: give {need}.", path)
            return None
        items = list(raw) if isinstance(raw, list | tuple) else [raw]
        if not items:
            self.error(
                "empty_values",
                f"{op} got an empty list; give at least one value, or drop the condition.",
                path,
            )
            return None
        out: list[str] = []
        for item in items:
            if isinstance(item, bool):
                out.append("true" if item else "false")
            elif isinstance(item, int | float):
                out.append(str(item))
            elif isinstance(item, str):
                if not item.strip():
                    self.error(
                        "blank_value",
                        f"{op} got a blank value {item!r}; to match a missing key use notExists, "
                        "otherwise give a real value.",
                        path,
                    )
                    return None
                out.append(item)
            else:
                self.error(
                    "bad_value",
                    f"Values must be strings (numbers are accepted), got {_fmt(item)}.",
                    path,
                )
                return None
        distinct = sorted(set(out))
        if op in SINGLE_OPS and len(distinct) == 1:
            return op, (distinct[0],)
        if op in CONTAINS_OPS:
            group = "any" if op == "contains" else "all"
            self.error(
                "contains_needs_one_value",
                f"{op} takes one string, got {len(distinct)}; "
                f"use {group}:[...] of {op} conditions, one per string.",
                path,
            )
            return None
        if op == "is":
            op = "oneOf"
        elif op == "isNot":
            op = "notOneOf"
        if len(distinct) > MAX_VALUES:
            self.error(
                "too_many_values",
                f"{op} has {len(distinct)} values; at most {MAX_VALUES} are allowed per condition "
                "(our limit). Split it into several conditions under any:[...] (or all:[...] for notOneOf).",
                path,
            )
            return None
        return op, tuple(distinct)


async def _check_values(ctx: ComposeContext, conds: Sequence[Cond]) -> list[Finding]:
    todo = [c for c in conds if c.op in EQUALITY_OPS or c.op == "contains"]
    if not todo:
        return []
    await ctx.fetch([(c.cost_center, c.key) for c in todo])
    findings: list[Finding] = []
    reported_unavailable: set[tuple[str, str]] = set()
    seen: set[Cond] = set()
    for c in todo:
        if c in seen:
            continue
        seen.add(c)
        pair = (c.cost_center, c.key)
        name = f"{c.cost_center}.{ctx.index.display_name(*pair) or c.key}"
        vs = ctx.values.get(pair)
        if not isinstance(vs, ValueSet):
            if pair not in reported_unavailable:
                reported_unavailable.add(pair)
                findings.append(
                    Finding(
                        severity="warning",
                        code="values_unavailable",
                        message=f"Could not fetch the values of {name}"
                        + (f" ({type(vs).__name__})" if vs is not None else "")
                        + "; values were not checked.",
                        path=c.path,
                    )
                )
            continue
        tag = ctx.index.tags.get(c.key) if c.cost_center == VIRTUAL_TAGS else None
        if tag is not None:
            findings.extend(_unproduced_tag_values(tag, c, vs))
            continue
        if c.op == "contains":
            if not vs.any_contains(c.values[0]):
                findings.append(
                    Finding(
                        severity="warning",
                        code="no_matching_value",
                        message=f"No existing value of {name} contains {c.values[0]!r} (it may be new data).",
                        path=c.path,
                        candidates=vs.closest(c.values[0]),
                    )
                )
            continue
        missing = [v for v in c.values if v not in vs]
        for v in missing[:MAX_VALUE_WARNINGS_PER_CONDITION]:
            close = vs.closest(v)
            msg = f"{name} has no value {fence(v)} yet (it may be new data)."
            if close:
                msg += f" Closest existing: {', '.join(close)}."
            findings.append(
                Finding(severity="warning", code="unknown_value", message=msg, path=c.path, candidates=close)
            )
        if len(missing) > MAX_VALUE_WARNINGS_PER_CONDITION:
            rest = len(missing) - MAX_VALUE_WARNINGS_PER_CONDITION
            findings.append(
                Finding(
                    severity="warning",
                    code="unknown_value",
                    message=f"…and {rest} more values of {name} that do not exist yet.",
                    path=c.path,
                )
            )
    return findings


def _unproduced_tag_values(tag: VirtualTag, c: Cond, vs: ValueSet) -> list[Finding]:
    """A virtual tag's values are exactly what its rules and default produce: a condition on any
    other value can never match (an error, not "new data")."""
    produced = ", ".join(fence(v) for v in list(vs.values)[:12]) or "none"
    default = fence(value_label(tag.default_value) or "") if tag.default_value else "none"
    cause = (
        f"no rule of virtual tag {fence(tag.name)} produces it (its rules' values and its default {default}"
        f" are all it can take: {produced}), so the condition can never match"
    )
    hint = " Use one of those values, or add a rule to that tag that produces it."
    if c.op == "contains":
        if vs.any_contains(c.values[0]):
            return []
        return [
            Finding(
                severity="error",
                code="unproduced_tag_value",
                message=f"No value of tag {fence(tag.name)} contains {fence(c.values[0])}: {cause}.{hint}",
                path=c.path,
                candidates=vs.closest(c.values[0]),
            )
        ]
    return [
        Finding(
            severity="error",
            code="unproduced_tag_value",
            message=f"Virtual tag value {fence(v)}: {cause}.{hint}",
            path=c.path,
            candidates=vs.closest(v),
        )
        for v in c.values
        if v not in vs
    ]


@dataclass
class _Parsed:
    """What the CPU-bound first half of composing found (see :func:`compose_in`)."""

    early: ComposeResult | None = None
    findings: list[Finding] = field(default_factory=list)
    canonical: Cond | Group | None = None
    conditions: int = 0
    depth: int = 0
    # ambiguous keys asked with values: (the error, the candidate keys, the values asked for)
    ambiguous: list[tuple[Finding, list[MegabillKey], tuple[str, ...]]] = field(default_factory=list)


def _parse_spec(ctx: ComposeContext, spec: dict[str, Any]) -> _Parsed:
    too_big = guard_input(spec)
    if too_big is not None:
        return _Parsed(early=ComposeResult(ok=False, findings=[too_big]))
    parser = _Parser(ctx.index)
    if not spec:
        parser.error("bad_node", 'The filter is empty; give a condition or {"all": [...]}/{"any": [...]}.', "")
        return _Parsed(early=ComposeResult(ok=False, findings=parser.findings))
    tree = parser.parse(spec, "")
    out = _Parsed(findings=parser.findings, ambiguous=parser.ambiguous)
    if tree is not None:
        out.canonical = canonical(tree)
        out.conditions = len(leaves(out.canonical))
        out.depth = tree_depth(out.canonical)
        if out.conditions > MAX_CONDITIONS:
            parser.error(
                "too_many_conditions",
                f"The filter has {out.conditions} conditions; at most {MAX_CONDITIONS} are allowed (our limit). "
                "Merge conditions on the same key into one oneOf with a list of values.",
                "",
            )
        if out.depth > MAX_DEPTH:
            parser.error(
                "filter_too_deep",
                f"The canonical filter nests {out.depth} groups deep; "
                f"at most {MAX_DEPTH} are allowed (our limit). "
                "Simplify it: move conditions up, use oneOf lists instead of any:[...] of = conditions.",
                "",
            )
    return out


def _finish(ctx: ComposeContext, parsed: _Parsed) -> ComposeResult:
    ok = not any(f.severity == "error" for f in parsed.findings)
    if not ok or parsed.canonical is None:
        return ComposeResult(ok=False, conditions=parsed.conditions, depth=parsed.depth, findings=parsed.findings)
    wire = to_finout(parsed.canonical)
    return ComposeResult(
        ok=True,
        filter=wire,
        readable=_render(wire, ctx.index.display_name),
        conditions=parsed.conditions,
        depth=parsed.depth,
        findings=parsed.findings,
    )


CLOSEST_PER_CANDIDATE = 3


async def _closest_per_candidate(
    ctx: ComposeContext, ambiguous: Sequence[tuple[Finding, list[MegabillKey], tuple[str, ...]]]
) -> None:
    """For each ambiguous key asked with values, say per candidate key which of its values are
    closest to them (``us-east-1``: AWS.region us-east-1, GCP.region us-east1, Azure.region eastus),
    so the model can pick the cost center in one step."""
    await ctx.fetch([(k.cost_center, k.key) for _, keys, _ in ambiguous for k in keys])
    for finding, keys, asked in ambiguous:
        per: dict[str, list[str]] = {}
        for k in keys:
            vs = ctx.values.get((k.cost_center, k.key))
            if not isinstance(vs, ValueSet):
                continue
            exact = [v for v in asked if v in vs]  # a value that exists is the answer for that value
            close: list[str] = list(exact)
            for v in asked[:MAX_VALUE_WARNINGS_PER_CONDITION]:
                if v in exact:
                    continue
                close.extend(c for c in vs.closest(v, CLOSEST_PER_CANDIDATE) if c not in close)
            per[key_ref(k)] = close[: CLOSEST_PER_CANDIDATE * 2]
        if not per:
            continue
        finding.closest_values = per
        parts = [
            f"{ref}: {', '.join(fence(v) for v in vals) if vals else 'nothing close'}" for ref, vals in per.items()
        ]
        finding.message += f" Closest values per cost center: {'; '.join(parts)}."


async def compose_in(ctx: ComposeContext, spec: Any, *, check_values: bool = True) -> ComposeResult:
    """Compose with a shared context (the linter composes many rules against one).

    Parsing and rendering run in a worker thread: a 100,000-condition intent takes seconds of
    CPU, and the event loop must keep serving every other session meanwhile.
    """
    if not isinstance(spec, dict):
        raise InputError(
            f"A filter must be a JSON object, got {type(spec).__name__}.",
            hint='Give an intent such as {"all": [{"key": "Account Name", "op": "in", "values": ["prod"]}]} '
            'or a raw Finout filter {"AND": [...]}.',
        )
    parsed = await anyio.to_thread.run_sync(_parse_spec, ctx, spec)
    if parsed.early is not None:
        return parsed.early
    if check_values and parsed.canonical is not None:
        parsed.findings.extend(await _check_values(ctx, leaves(parsed.canonical)))
    if check_values and parsed.ambiguous:
        await _closest_per_candidate(ctx, parsed.ambiguous)
    return await anyio.to_thread.run_sync(_finish, ctx, parsed)


async def compose(spec: dict[str, Any], catalog: KeyCatalog, *, check_values: bool = True) -> ComposeResult:
    """Validate and canonicalise an intent or raw Finout filter against the account's catalogue.

    Returns ``ok=False`` with error findings (and ``filter=None``) when the filter cannot be used;
    raises :class:`InputError` only when ``spec`` is not an object at all.
    """
    if not isinstance(spec, dict):
        raise InputError(
            f"A filter must be a JSON object, got {type(spec).__name__}.",
            hint='Give an intent such as {"all": [{"key": "Account Name", "op": "in", "values": ["prod"]}]}.',
        )
    ctx, findings = await ComposeContext.build(catalog)
    result = await compose_in(ctx, spec, check_values=check_values)
    if findings:
        result.findings = findings + result.findings
    return result


# ----------------------------------------------------------------------------- readable


def _fmt_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v)
    if neutralise(s) != s:  # account data with line breaks, control or fence characters
        return fence(s)
    if not s or s != s.strip() or any(ch in s for ch in ',[]()"'):
        return json.dumps(s)
    return s


def _render(node: Any, display: Callable[[str, str], str | None], top: bool = True) -> str:
    if not isinstance(node, dict):
        return "?"
    for word in ("AND", "OR"):
        if word in node and isinstance(node[word], list):
            parts = [_render(c, display, top=False) for c in node[word]]
            text = f" {word} ".join(parts)
            return text if top or len(parts) <= 1 else f"({text})"
    cc = str(node.get("costCenter", node.get("cost_center", "?")))
    key = str(node.get("key", "?"))
    label = str(display(cc, key) or node.get("displayName") or key)
    if neutralise(label) != label:
        label = fence(label)
    op = str(node.get("operator", node.get("op", "?")))
    value = node.get("value")
    head = f"{cc}.{label} {READABLE_OPS.get(op, op)}"
    if op in NO_VALUE_OPS:
        return head
    if isinstance(value, list):
        return f"{head} [{', '.join(_fmt_value(v) for v in value)}]"
    return f"{head} {_fmt_value(value)}"


def readable(filter: FinoutFilter, keys: Sequence[MegabillKey]) -> str:
    """One line, display names: ``AWS.Account Name in [a, b] AND (AWS.Service = X OR ...)``.

    Tolerant of raw filters as returned by GET (``displayName`` used when the key is unknown).
    """
    index = key_index(keys)
    return _render(filter, index.display_name)


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
    must name its exact ``cost_center`` and ``key``. For tests: the composer must preserve it.
    """
    index = key_index(keys, tags) if keys is not None else None

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
