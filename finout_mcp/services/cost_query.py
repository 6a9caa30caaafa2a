"""Ad-hoc cost questions on Finout API v2: any filter, any group-by, no saved view needed.

Flow of :meth:`CostQueries.ask` (the ``query_costs`` tool)::

    filter intent --composer--> canonical v1 filter --to_v2_filter--> v2 filter (types from the v2 keys)
    group_by names --KeyIndex.resolve--> keys --v2 keys--> dimensions {costCenter, key, type}
    window --split into <= 60-day pieces (whole months when monthly)--> one query each, in parallel within the rate budget
    rows --rows_to_series--> series by group --costs.shape_costs--> the same answer as query_view_costs

A question asked again while Finout still keeps its results (24 h) reuses the stored
``queryId``: its results are read at once, without a new query or any polling.
:class:`QueryStore` is where those ids live; the in-memory one serves a process, and a shared
database can implement the same protocol for replicas.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal, Protocol

import anyio
from pydantic import BaseModel, Field

from finout_mcp.api.client_v2 import FinoutV2Client, QueryOutcome
from finout_mcp.api.errors import FinoutAPIStatusError, MalformedResponseError
from finout_mcp.api.models import VIRTUAL_TAGS, MegabillKey, VirtualTag
from finout_mcp.api.models_v2 import USAGE_MEASUREMENTS, QueryStatusData, V2Key
from finout_mcp.services import costs, periods
from finout_mcp.services.composer import compose
from finout_mcp.services.errors import InputError, first_error
from finout_mcp.services.fencing import fence
from finout_mcp.services.keys import KeyCatalog, KeyIndex, key_index, key_ref

MAX_QUERY_DAYS = 60  # [doc: v2/cu] "Maximum range: 60 days."
MAX_LEAF_CONDITIONS = 30  # [spec]
MAX_VIRTUAL_TAGS = 3  # [spec], across dimensions and filters
MAX_DIMENSIONS = 20  # [spec]
RESULT_LIFETIME_S = 24 * 3600  # [doc: v2/cu] "Results are stored for 24 hours."
REUSE_MARGIN_S = 600  # stop reusing a queryId ten minutes before its results expire
NO_VALUE = "(no value)"
UNSET_NOTE_SHARE = 0.5  # a group-by key without a value on more of the cost than this gets a note

Measurement = Literal[
    "unblendedCost",
    "blendedCost",
    "netUnblendedCost",
    "amortizedCost",
    "netAmortizedCost",
    "listCost",
    "usageAmount",
    "normalizedUsageAmount",
]
Granularity = Literal["auto", "day", "week", "month"]
Progress = Callable[[float, float, str], Awaitable[None]]


# ----------------------------------------------------------------------------- stored query ids


class QueryStore(Protocol):
    """Where the ids of submitted queries are kept until their results expire."""

    def get(self, fingerprint: str) -> str | None: ...

    def put(self, fingerprint: str, query_id: str, expires_at: float) -> None: ...

    def drop(self, fingerprint: str) -> None: ...


class MemoryQueryStore:
    """Query ids of this process, forgotten :data:`REUSE_MARGIN_S` before their results expire."""

    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = 2000) -> None:
        self._clock = clock
        self._max = max_entries
        self._ids: dict[str, tuple[str, float]] = {}

    def get(self, fingerprint: str) -> str | None:
        hit = self._ids.get(fingerprint)
        if hit is None:
            return None
        if hit[1] - REUSE_MARGIN_S <= self._clock():
            del self._ids[fingerprint]
            return None
        return hit[0]

    def put(self, fingerprint: str, query_id: str, expires_at: float) -> None:
        if len(self._ids) >= self._max:
            self._ids.pop(next(iter(self._ids)))
        self._ids[fingerprint] = (query_id, expires_at)

    def drop(self, fingerprint: str) -> None:
        self._ids.pop(fingerprint, None)


def fingerprint(body: dict[str, Any]) -> str:
    """The identity of a query body (same JSON, same question)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _expiry(expired_at: str | None, clock: Callable[[], float]) -> float:
    """When stored results expire: the status's ``expiredAt`` [spec], else 24 h from now [doc]."""
    if expired_at:
        try:
            return datetime.fromisoformat(expired_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return clock() + RESULT_LIFETIME_S


# ----------------------------------------------------------------------------- keys and filters


class V2KeyIndex:
    """The v2 keys by ``(costCenter, key)``, with virtual tags also found by their id alone."""

    def __init__(self, keys: Sequence[V2Key]) -> None:
        self.keys = list(keys)
        self._by_pair = {(k.cost_center, k.key): k for k in keys}
        self._tags = {k.key: k for k in keys if "virtual_tag" in k.types}

    def find(self, cost_center: str, key: str) -> V2Key | None:
        hit = self._by_pair.get((cost_center, key))
        if hit is None and cost_center == VIRTUAL_TAGS:
            hit = self._tags.get(key)  # a tag's v2 cost center may differ from v1's "Virtual Tags"
        return hit

    def dimension(self, cost_center: str, key: str, label: str) -> dict[str, str]:
        """``{costCenter, key, type}`` of a v1 key; InputError when v2 does not list it."""
        found = self.find(cost_center, key)
        if found is None:
            raise InputError(
                f"{label} is not among the Finout API v2 keys, so v2 queries cannot use it.",
                hint="Use another key (list_megabill_keys), or query_view_costs with a saved view.",
            )
        kind = "virtual_tag" if cost_center == VIRTUAL_TAGS and "virtual_tag" in found.types else found.types[0]
        return {"costCenter": found.cost_center, "key": found.key, "type": kind}


def to_v2_filter(node: dict[str, Any], index: V2KeyIndex, display: Callable[[str, str], str]) -> dict[str, Any]:
    """A canonical v1 filter in the v2 grammar: each condition gets its key's ``type``, ``isNot``
    becomes ``notIs``, and single values become one-item arrays (v2 types ``value`` as array)."""
    for word in ("AND", "OR"):
        if word in node:
            return {word: [to_v2_filter(child, index, display) for child in node[word]]}
    cc, key = str(node["costCenter"]), str(node["key"])
    out: dict[str, Any] = index.dimension(cc, key, f"Key {display(cc, key)} ({cc}.{key})")
    op = str(node["operator"])
    out["operator"] = "notIs" if op == "isNot" else op
    if "value" in node:
        value = node["value"]
        out["value"] = value if isinstance(value, list) else [value]
    return out


def _pairs(node: dict[str, Any]) -> list[tuple[str, str]]:
    for word in ("AND", "OR"):
        if word in node:
            return [p for c in node[word] for p in _pairs(c)]
    return [(str(node.get("costCenter")), str(node.get("key")))]


def _colon_form(ref: str) -> str:
    """``AWS.region (Region)`` → ``AWS:region``: a candidate as group_by names it."""
    pair = ref.split(" (", 1)[0]
    cost_center, _, key = pair.partition(".")
    return f"{cost_center}:{key}"


POSITIVE_OPERATORS = frozenset({"is", "oneOf", "exists", "contains", "startsWith", "endsWith"})


def sole_cost_center(node: dict[str, Any] | None) -> str | None:
    """The one cost center a v2 filter restricts costs to, else None: conditions joined by AND
    that require a value (``cost_center_type`` is X, or any positive condition on X's keys)."""
    if node is None:
        return None
    found: set[str] = set()

    def walk(n: dict[str, Any]) -> None:
        if "AND" in n:
            for child in n["AND"]:
                walk(child)
            return
        if "OR" in n or n.get("type") == "virtual_tag" or n.get("operator") not in POSITIVE_OPERATORS:
            return
        cc, key, values = str(n.get("costCenter")), str(n.get("key")), n.get("value")
        if key == "cost_center_type":
            if isinstance(values, list) and len(values) == 1 and n.get("operator") in ("is", "oneOf"):
                found.add(str(values[0]))
        elif cc != "Global":
            found.add(cc)

    walk(node)
    return next(iter(found)) if len(found) == 1 else None


def unset_shares(rows: Sequence[dict[str, Any]], dims: Sequence[dict[str, str]], measurement: str) -> list[float]:
    """Per dimension, the share (0..1) of the rows' absolute cost on which it has no value."""
    cell_name = f"{measurement}_sum"
    total = 0.0
    unset = [0.0] * len(dims)
    names = [f"{d['costCenter']}_{d['type']}_{d['key']}" for d in dims]
    for row in rows:
        cell = row.get(cell_name)
        amount = (
            abs(float(cell["amount"]))
            if isinstance(cell, dict) and isinstance(cell.get("amount"), int | float)
            else 0.0
        )
        total += amount
        for j, name in enumerate(names):
            if not row.get(name):
                unset[j] += amount
    return [u / total if total else 0.0 for u in unset]


def count_leaves(node: dict[str, Any]) -> int:
    for word in ("AND", "OR"):
        if word in node:
            return sum(count_leaves(c) for c in node[word])
    return 1


def virtual_tags_in(node: dict[str, Any]) -> set[str]:
    for word in ("AND", "OR"):
        if word in node:
            return set().union(*(virtual_tags_in(c) for c in node[word])) if node[word] else set()
    return {str(node["key"])} if node.get("type") == "virtual_tag" else set()


# ----------------------------------------------------------------------------- answer


class QueryRun(BaseModel):
    first_day: date
    last_day: date
    query_id: str
    reused: bool = Field(description="true: Finout's stored results of the same query were read again.")
    requests: int
    rows: int


class QueryProvenance(BaseModel):
    source: str = "Finout API v2 Cost and Usage (generate-query, status, results)"
    queries: list[QueryRun]
    requests: int = Field(description="HTTP requests spent on this answer.")
    daily_queries_used: int = Field(description="Cost and Usage queries this account has used today (UTC).")
    daily_queries_cap: int
    daily_budget_used_pct: float


class QueryAsked(BaseModel):
    filter: str | None = Field(default=None, description="The filter, readable.")
    v2_filter: dict[str, Any] | None = Field(default=None, description="The filter as sent to Finout API v2.")
    group_by: list[str] = Field(default_factory=list, description="Dimensions as CostCenter.key (Display Name).")
    measurement: str
    interval: str = Field(description="The interval Finout was asked for (day or month).")


class QueryCostsAnswer(costs.CostAnswer):
    """The answer of ``query_costs``: the shape of ``query_view_costs``, no view, plus the question
    as sent and where the figures came from."""

    view: costs.ViewRef | None = None  # type: ignore[assignment]
    query: QueryAsked
    provenance: QueryProvenance


# ----------------------------------------------------------------------------- rows → series


def rows_to_series(
    rows: Sequence[dict[str, Any]],
    dims: Sequence[dict[str, str]],
    measurement: str,
    interval: str,
    window: periods.DateSpan,
    path: str,
) -> tuple[list[costs.Series], str | None]:
    """Series per group (dimension values joined by " / ") plus "Total", and the usage unit.

    Strict: a row without the interval field or the measurement cell is an error naming the
    field; a dimension field missing from *every* row means Finout names columns differently
    (the ``{costCenter}_{type}_{key}`` rule is [spec]) and is an error too."""
    cell_name = f"{measurement}_sum"
    dim_names = [f"{d['costCenter']}_{d['type']}_{d['key']}" for d in dims]
    first_ms = periods.span_to_ms(window)[0]
    totals: dict[int, float] = {}
    groups: dict[str, dict[int, float]] = {}
    unit: str | None = None
    seen_dims = [False] * len(dims)

    def bad(reason: str) -> MalformedResponseError:
        return MalformedResponseError(f"unexpected results row: {reason}", status=200, method="GET", path=path)

    for i, row in enumerate(rows):
        when = row.get(interval)
        if not isinstance(when, str):
            raise bad(f"data[{i}].{interval} (the {interval} of the row) is missing or not a date string")
        try:
            day = date.fromisoformat(when[:10])
        except ValueError:
            raise bad(f"data[{i}].{interval} is not an ISO date") from None
        ms = max(periods.span_to_ms(periods.DateSpan(day, day))[0], first_ms)
        cell = row.get(cell_name)
        if (
            not isinstance(cell, dict)
            or not isinstance(cell.get("amount"), int | float)
            or isinstance(cell.get("amount"), bool)
        ):
            raise bad(f'data[{i}].{cell_name} is not {{"amount": number}}')
        amount = float(cell["amount"])
        if isinstance(cell.get("unit"), str):
            unit = cell["unit"]
        totals[ms] = totals.get(ms, 0.0) + amount
        if dims:
            parts = []
            for j, name in enumerate(dim_names):
                value = row.get(name)
                if name in row:
                    seen_dims[j] = True
                if value is not None and not isinstance(value, str):
                    value = str(value)
                parts.append(value if value else NO_VALUE)
            label = " / ".join(parts)
            slot = groups.setdefault(label, {})
            slot[ms] = slot.get(ms, 0.0) + amount
    missing = [name for name, seen in zip(dim_names, seen_dims, strict=True) if not seen]
    if rows and missing:
        raise bad(f"no row has the dimension field(s) {', '.join(missing)}")
    series = [costs.Series("Total", [costs.Point(t, v) for t, v in sorted(totals.items())])]
    series += [costs.Series(n, [costs.Point(t, v) for t, v in sorted(pts.items())]) for n, pts in groups.items()]
    return series, unit


# ----------------------------------------------------------------------------- the service


@dataclass
class QueryPiece:
    window: periods.DateSpan
    body: dict[str, Any]
    outcome: QueryOutcome | None = None
    reused: bool = False


class CostQueries:
    """v2 cost questions of one server run: the v2 key index (cached), stored query ids, the client."""

    def __init__(
        self,
        client: FinoutV2Client,
        catalog: KeyCatalog,
        *,
        store: QueryStore | None = None,
        ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.store: QueryStore = store or MemoryQueryStore(clock)
        self._ttl = ttl_s
        self._clock = clock
        self._index: tuple[V2KeyIndex, float] | None = None
        self._lock = anyio.Lock()

    async def key_index(self, *, refresh: bool = False) -> V2KeyIndex:
        async with self._lock:
            if refresh or self._index is None or self._index[1] <= self._clock():
                self._index = (V2KeyIndex(await self.client.list_keys_v2()), self._clock() + self._ttl)
            return self._index[0]

    async def dimension(self, cost_center: str, key: str, label: str) -> dict[str, str]:
        """The v2 ``{costCenter, key, type}`` of a key; a key missing from the cached v2 keys (a tag
        created since) makes the keys be read again once."""
        index = await self.key_index()
        if index.find(cost_center, key) is None:
            index = await self.key_index(refresh=True)
        return index.dimension(cost_center, key, label)

    # ---------------------------------------------------------------- building the query
    async def v2_filter(self, spec: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Compose an intent (or raw filter) and turn it into a v2 filter; ``(filter, readable)``."""
        result = await compose(spec, self.catalog)
        if not result.ok or result.filter is None:
            errors = [f.message for f in result.findings if f.severity == "error"]
            raise InputError(
                "The filter is not valid: " + " ".join(errors[:5]),
                hint="Fix it (compose_filter shows the same findings), then ask again.",
            )
        return await self.to_v2(result.filter), result.readable or ""

    async def to_v2(self, canonical: dict[str, Any]) -> dict[str, Any]:
        """A canonical (v1) filter in the v2 grammar, within the documented limits."""
        index = await self.key_index()
        if any(index.find(cc, k) is None for cc, k in _pairs(canonical)):
            index = await self.key_index(refresh=True)
        keys = await self.catalog.keys()
        names = {(k.cost_center, k.key): k.label for k in keys}
        out = to_v2_filter(canonical, index, lambda cc, k: names.get((cc, k), k))
        leaves = count_leaves(out)
        if leaves > MAX_LEAF_CONDITIONS:
            raise InputError(
                f"The filter has {leaves} conditions; Finout API v2 takes at most {MAX_LEAF_CONDITIONS} per query.",
                hint="Merge conditions on the same key into one 'in' list, or split the question.",
            )
        return out

    async def dimensions(
        self, group_by: Sequence[str], within: str | None = None
    ) -> tuple[list[dict[str, str]], list[str]]:
        """Group-by names → v2 dimensions and their readable names. ``within``: the one cost center
        the filter restricts the question to, which settles a name several cost centers share."""
        if len(group_by) > MAX_DIMENSIONS:
            raise InputError(
                f"{len(group_by)} group-by keys; Finout API v2 takes at most {MAX_DIMENSIONS}.",
                hint="Group by fewer keys.",
            )
        keys: list[MegabillKey] = await self.catalog.keys()
        tags: Sequence[VirtualTag] = await self.catalog.virtual_tags()
        index = key_index(self.catalog, keys, tags)
        dims: list[dict[str, str]] = []
        labels: list[str] = []
        for name in group_by:
            entry = self._group_key(index, name, within)
            label = key_ref(entry)
            dim = await self.dimension(entry.cost_center, entry.key, f"Key {fence(name)}")
            if dim not in dims:
                dims.append(dim)
                labels.append(label)
        return dims, labels

    @staticmethod
    def _group_key(index: KeyIndex, name: str, within: str | None) -> MegabillKey:
        """One group-by name: a key or display name, or ``CostCenter:key``."""
        if not name or not name.strip():
            raise InputError("group_by has an empty key.", hint="Name a key, e.g. 'service' or 'AWS:region'.")
        found = index.resolve(None, name)
        if found.entry is not None:
            return found.entry
        if found.code == "ambiguous_key" and within is not None:
            scoped = index.resolve(within, name)
            if scoped.entry is not None:
                # A virtual tag spans every cost center, so a filter on one cost center does not
                # settle a name that is also a virtual tag's ("Team": AWS.team, or the tag Team).
                tags = [c for c in found.candidates if c.startswith(f"{VIRTUAL_TAGS}.")]
                if not tags or scoped.entry.cost_center == VIRTUAL_TAGS:
                    return scoped.entry
                found = replace(found, candidates=[key_ref(scoped.entry), *tags])
        if ":" in name:
            cost_center, _, text = name.partition(":")
            scoped = index.resolve(cost_center.strip(), text.strip())
            if scoped.entry is not None:
                return scoped.entry
            raise InputError(f"group_by {fence(name)}: {scoped.message}")
        if found.code == "ambiguous_key":
            forms = [_colon_form(ref) for ref in found.candidates]
            raise InputError(
                f"group_by {fence(name)} is ambiguous: it matches {', '.join(found.candidates)}.",
                hint="Name one as 'CostCenter:key': " + ", ".join(repr(f) for f in forms) + ".",
            )
        raise InputError(
            f"group_by {fence(name)}: {found.message}",
            hint="In group_by, name the cost center as 'CostCenter:key', e.g. 'AWS:service'.",
        )

    @staticmethod
    def body(
        window: periods.DateSpan,
        *,
        interval: str,
        measurement: str,
        dims: Sequence[dict[str, str]],
        v2_filter: dict[str, Any] | None,
    ) -> dict[str, Any]:
        start_ms, end_ms = periods.span_to_ms(window)
        body: dict[str, Any] = {
            "date": {"unixTimeMillisecondsStart": start_ms, "unixTimeMillisecondsEnd": end_ms},
            "timeInterval": {"interval": interval},
            "measurements": [{"type": measurement, "operator": "sum"}],
            "rowLimit": 100_000,
        }
        if dims:
            body["dimensions"] = [dict(d) for d in dims]
        if v2_filter is not None:
            body["filters"] = v2_filter
        return body

    # ---------------------------------------------------------------- running
    async def run(
        self,
        body: dict[str, Any],
        on_poll: Callable[[QueryStatusData, float], Awaitable[None]] | None = None,
    ) -> tuple[QueryOutcome, bool]:
        """One query: the stored queryId's results when still kept, else a new query. ``(outcome, reused)``."""
        key = fingerprint(body)
        stored = self.store.get(key)
        if stored is not None:
            try:
                return await self.client.run_query(body, query_id=stored), True
            except FinoutAPIStatusError as exc:
                if exc.status not in (404, 410, 424):
                    raise
                self.store.drop(key)  # gone on Finout's side: ask again
        outcome = await self.client.run_query(body, on_poll=on_poll)
        self.store.put(key, outcome.query_id, _expiry(outcome.expired_at, self._clock))
        return outcome, False

    async def run_windows(
        self,
        pieces: Sequence[QueryPiece],
        progress: Progress | None = None,
    ) -> None:
        """Run every piece concurrently (the rate budget paces them); progress while Finout computes."""
        total = len(pieces)
        done = 0
        state: dict[int, str] = {}

        async def report(message: str) -> None:
            if progress is not None:
                running = sum(0.5 for s in state.values() if s == "running")
                await progress(min(done + running, total), total, message)

        async def one(i: int, piece: QueryPiece) -> None:
            nonlocal done

            async def on_poll(status: QueryStatusData, waited: float) -> None:
                state[i] = "running" if status.status != "completed" else "done"
                await report(
                    f"query {i + 1} of {total} ({piece.window}): Finout says {status.status} after {waited:.0f} s"
                )

            piece.outcome, piece.reused = await self.run(piece.body, on_poll)
            done += 1
            state[i] = "done"
            await report(f"{done} of {total} queries answered")

        try:
            async with anyio.create_task_group() as tg:
                for i, piece in enumerate(pieces):
                    tg.start_soon(one, i, piece)
        except BaseExceptionGroup as group:
            raise first_error(group) from None

    # ---------------------------------------------------------------- the question
    async def ask(
        self,
        *,
        filter: dict[str, Any] | None,
        group_by: Sequence[str],
        window: periods.Window,
        before: periods.Window | None,
        measurement: str,
        granularity: Granularity,
        top_n: int,
        today: date,
        breakdown_series: bool = False,
        progress: Progress | None = None,
    ) -> QueryCostsAnswer:
        v2_filter, readable = (None, None)
        if filter:
            v2_filter, readable = await self.v2_filter(filter)
        dims, labels = await self.dimensions(group_by, within=sole_cost_center(v2_filter))
        tags = {d["key"] for d in dims if d["type"] == "virtual_tag"} | (
            virtual_tags_in(v2_filter) if v2_filter else set()
        )
        if len(tags) > MAX_VIRTUAL_TAGS:
            raise InputError(
                f"The question uses {len(tags)} virtual tags; Finout API v2 allows {MAX_VIRTUAL_TAGS} per query "
                "across group-by and filter.",
                hint="Drop a virtual tag from the group-by or the filter.",
            )
        gran: costs.Granularity = granularity
        days = window.days
        interval = "month" if granularity == "month" or (granularity == "auto" and days > 120) else "day"
        spans = [window.span] + ([before.span] if before else [])
        # monthly buckets: pieces end on month ends, so no month is summed from two queries
        split = periods.split_whole_months if interval == "month" else periods.split_windows
        pieces: list[list[QueryPiece]] = []
        for span in spans:
            pieces.append(
                [
                    QueryPiece(
                        w, self.body(w, interval=interval, measurement=measurement, dims=dims, v2_filter=v2_filter)
                    )
                    for w in split(span, MAX_QUERY_DAYS)
                ]
            )
        flat = [p for group in pieces for p in group]
        await self.run_windows(flat, progress)
        path = "/data/cost-usage/{queryId}/results"
        series: list[list[costs.Series]] = []
        unit: str | None = None
        for group in pieces:
            parts = []
            for p in group:
                assert p.outcome is not None
                part, u = rows_to_series(p.outcome.rows, dims, measurement, interval, p.window, path)
                unit = unit or u
                parts.append(part)
            series.append(costs.merge_series(parts))
        usage = self.client.budget.usage()
        runs = [
            QueryRun(
                first_day=p.window.first,
                last_day=p.window.last,
                query_id=p.outcome.query_id,
                reused=p.reused,
                requests=p.outcome.requests,
                rows=len(p.outcome.rows),
            )
            for p in flat
            if p.outcome is not None
        ]
        extra = {
            "query": QueryAsked(
                filter=readable,
                v2_filter=v2_filter,
                group_by=labels,
                measurement=measurement,
                interval=interval,
            ),
            "provenance": QueryProvenance(
                queries=runs,
                requests=sum(r.requests for r in runs),
                daily_queries_used=usage.daily_used,
                daily_queries_cap=usage.daily_cap,
                daily_budget_used_pct=round(usage.daily_pct, 3),
            ),
        }
        answer = costs.shape_costs(
            series[0],
            window,
            today=today,
            view=None,
            cost_type=measurement,
            top_n=top_n,
            granularity=gran,
            breakdown_series=breakdown_series,
            previous=series[1] if before else None,
            previous_window=before,
            currency=unit if measurement in USAGE_MEASUREMENTS and unit else "USD",
            model=QueryCostsAnswer,
            extra=extra,
        )
        if answer.reconciliation_note:
            answer.reconciliation_note = answer.reconciliation_note.replace("The view's", "The query's").replace(
                "the view's grouping", "the group-by"
            )
        all_rows = [row for p in pieces[0] if p.outcome is not None for row in p.outcome.rows]
        for label, share in zip(labels, unset_shares(all_rows, dims, measurement), strict=True):
            if share > UNSET_NOTE_SHARE:
                answer.notes.append(
                    f"{label}: no value on {share * 100:.0f} % of the matched cost — this key is not set on "
                    "these costs. Try a key of the cost center they come from (group_by 'Cost Center Type' shows "
                    "which), or filter to the costs that carry this key."
                )
        if not dims:
            answer.notes.append("No group_by: only the total and its timeline. Add group_by to split it.")
        if any(r.reused for r in runs):
            answer.notes.append("Finout's stored results of the same query were reused (kept 24 hours).")
        answer.notes.append(usage.sentence())
        return answer
