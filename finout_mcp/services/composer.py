"""The composer: an intent (or a raw Finout filter) + the account's catalogue → a valid, canonical
Finout filter, its readable form, and findings.

The filter model is :mod:`finout_mcp.filters` (parsing, canonical form, rendering); key resolution
is :mod:`finout_mcp.services.keys`. What the composer adds is the catalogue: it resolves keys
against the account's keys and virtual tags, then checks the values of the canonical filter
against the values that exist for each key (warnings only: a value may be new data; a virtual
tag's values are exactly what its rules produce, so another value is an error).

Errors are findings (``ok=False``), never exceptions; only a spec that is not an object at
all raises :class:`~finout_mcp.services.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import Field

from finout_mcp.api.models import VIRTUAL_TAGS, VirtualTag
from finout_mcp.filters.findings import Finding
from finout_mcp.filters.parse import Ambiguous, Parsed, parse
from finout_mcp.filters.render import render
from finout_mcp.filters.tree import Cond, leaves, to_finout
from finout_mcp.filters.vocabulary import EQUALITY_OPS
from finout_mcp.services.dependencies import tag_outputs
from finout_mcp.services.diffs import target_text
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence
from finout_mcp.services.keys import KeyCatalog, KeyIndex, key_index, key_ref
from finout_mcp.services.results import Result
from finout_mcp.services.search import FRESH, IndexOwner, SearchIndex, fold, value_search_index

VALUE_FETCH_CONCURRENCY = 5
"""Distinct keys whose values are fetched at once (the Finout client caps at 5 anyway)."""
MAX_VALUE_WARNINGS_PER_CONDITION = 10
"""At most this many ``unknown_value`` warnings per condition (the rest are summarised)."""


class ComposeResult(Result):
    """The canonical filter (None when there are errors), its readable form, and findings."""

    ok: bool
    filter: dict[str, Any] | None = None
    readable: str | None = None
    conditions: int = 0
    depth: int = 0
    findings: list[Finding] = Field(default_factory=list)


# ----------------------------------------------------------------------------- values


@dataclass
class ValueSet:
    """The values of one key, checked through the catalogue's search index of that list.

    A list the catalogue holds is indexed by that catalogue (``owner``): the same index that
    ``list_key_values`` uses for the same list object; any other list (a tag's outputs) gets its
    own.
    """

    values: Sequence[str]
    owner: IndexOwner = FRESH
    _own: SearchIndex[str] | None = field(default=None, compare=False, repr=False)

    @property
    def index(self) -> SearchIndex[str]:
        if self._own is None:
            self._own = value_search_index(self.values, owner=self.owner)
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


# ----------------------------------------------------------------------------- composer


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
        return cls(catalog, key_index(catalog, keys, tags)), findings

    async def fetch(self, pairs: Sequence[tuple[str, str]]) -> None:
        todo = [p for p in dict.fromkeys(pairs) if p not in self.values]
        if not todo:
            return
        limiter = anyio.CapacityLimiter(VALUE_FETCH_CONCURRENCY)

        async def one(cc: str, key: str) -> None:
            async with limiter:
                tag = self.index.tags.get(key) if cc == VIRTUAL_TAGS else None
                if tag is not None:
                    self.values[(cc, key)] = ValueSet(
                        tag_outputs(tag, self.index.tags)
                    )  # our own list: indexed privately
                    return
                try:
                    self.values[(cc, key)] = ValueSet(
                        await self.catalog.values(cc, key), self.catalog
                    )  # the catalogue keeps its index
                except Exception as err:
                    self.values[(cc, key)] = err

        async with anyio.create_task_group() as tg:
            for cc, key in todo:
                tg.start_soon(one, cc, key)


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
    default = fence(target_text(tag.default_value) or "") if tag.default_value else "none"
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


CLOSEST_PER_CANDIDATE = 3


async def _closest_per_candidate(ctx: ComposeContext, ambiguous: Sequence[Ambiguous]) -> None:
    """For each ambiguous key asked with values, say per candidate key which of its values are
    closest to them (``us-east-1``: AWS.region us-east-1, GCP.region us-east1, Azure.region eastus),
    so the model can pick the cost center in one step."""
    await ctx.fetch([(k.cost_center, k.key) for a in ambiguous for k in a.keys])
    for a in ambiguous:
        per: dict[str, list[str]] = {}
        for k in a.keys:
            vs = ctx.values.get((k.cost_center, k.key))
            if not isinstance(vs, ValueSet):
                continue
            exact = [v for v in a.values if v in vs]  # a value that exists is the answer for that value
            close: list[str] = list(exact)
            for v in a.values[:MAX_VALUE_WARNINGS_PER_CONDITION]:
                if v in exact:
                    continue
                close.extend(c for c in vs.closest(v, CLOSEST_PER_CANDIDATE) if c not in close)
            per[key_ref(k)] = close[: CLOSEST_PER_CANDIDATE * 2]
        if not per:
            continue
        a.finding.closest_values = per
        parts = [
            f"{ref}: {', '.join(fence(v) for v in vals) if vals else 'nothing close'}" for ref, vals in per.items()
        ]
        a.finding.message += f" Closest values per cost center: {'; '.join(parts)}."


def _finish(ctx: ComposeContext, parsed: Parsed) -> ComposeResult:
    if not parsed.ok or parsed.canonical is None:
        return ComposeResult(ok=False, conditions=parsed.conditions, depth=parsed.depth, findings=parsed.findings)
    wire = to_finout(parsed.canonical)
    return ComposeResult(
        ok=True,
        filter=wire,
        readable=render(wire, ctx.index.display_name),
        conditions=parsed.conditions,
        depth=parsed.depth,
        findings=parsed.findings,
    )


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
    parsed = await anyio.to_thread.run_sync(parse, spec, ctx.index)
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
