"""The sandbox's Finout API v2: Query Language keys/values and asynchronous Cost and Usage queries.

Written from ``finout-api-v2.md`` (never from the client's models). Costs come from the same
cost table as the v1 views (:mod:`finout_mcp.sandbox.costs`), virtual tags evaluated on each
row, so a v2 query and a view always agree. Documented limits are enforced:

- at most 60 days per query; per account and per route 50 (or the documented number of)
  requests a minute, and 10,000 generate-query calls a day — 429 past either, with the v2
  error body and no ``Retry-After`` (none is documented);
- a query is ``queued``, then ``running`` for ``compute_s`` seconds, then ``completed`` (or
  ``failed`` when a failure was scheduled with :meth:`V2Api.fail_next`); results are kept 24 h,
  then ``expired`` (410 ``RESULTS_EXPIRED``); results before completion get 202
  ``QUERY_QUEUED``/``QUERY_RUNNING``, a failed query 424 ``QUERY_FAILED``;
- results are paged by an opaque cursor (``pageSize`` default 100, max 10,000);
- filters follow the v2 grammar (``type`` on every condition, ``notIs``), at most 30 leaf
  conditions and 3 distinct virtual tags across dimensions and filters.

The Query Language page gives its paths both with and without ``/megabill``; the sandbox
serves both unless ``query_language_paths`` is narrowed (tests use that to check the client's
fallback).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finout_mcp.sandbox.costs import DAY_MS, V2_COST_TYPES, stable_uuid
from finout_mcp.sandbox.filters import V2_MAX_LEAVES, V2_MAX_VIRTUAL_TAGS, FilterError, matches, validate_filter_v2

if TYPE_CHECKING:
    from finout_mcp.sandbox.account import Account

MAX_RANGE_MS = 60 * DAY_MS
RESULT_LIFETIME_S = 24 * 3600
DAILY_QUERY_CAP = 10_000
INTERVALS = ("day", "week", "month")
MEASUREMENT_OPERATORS = ("sum", "avg", "min", "max")
USAGE_TYPES = ("usageAmount", "normalizedUsageAmount")
MEASUREMENT_TYPES = (*V2_COST_TYPES, *USAGE_TYPES)
SORT_DIRECTIONS = ("ascending", "descending")
MAX_DIMENSIONS = 20
MAX_MEASUREMENTS = 5
DEFAULT_ROW_LIMIT = 1000
MAX_ROW_LIMIT = 100_000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000

# Route template -> requests per minute (finout-api-v2.md §8), per account and per route.
GENERATE = "/v2/data/cost-usage/generate-query"
STATUS = "/v2/data/cost-usage/{queryId}/status"
RESULTS = "/v2/data/cost-usage/{queryId}/results"
KEYS = "/v2/query-language/keys"
VALUES = "/v2/query-language/values/{costCenter}/{key}"
MB_KEYS = "/v2/megabill/query-language/keys"
MB_VALUES = "/v2/megabill/query-language/values/{costCenter}/{key}"
PER_MINUTE: dict[str, int] = {
    GENERATE: 50,
    STATUS: 50,
    RESULTS: 50,
    KEYS: 50,
    VALUES: 50,
    MB_KEYS: 50,
    MB_VALUES: 50,
}


class V2Error(Exception):
    """A v2 error answer: ``{"requestId", "error": <code>, "message"}`` with this status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class _Query:
    id: str
    start_ms: int
    end_ms: int
    interval: str
    measurements: list[tuple[str, str]]
    dimensions: list[tuple[str, str, str]]
    filters: dict[str, Any] | None
    row_limit: int
    created: float
    fail: bool
    order: list[tuple[str, str]]  # (what, direction): ("time"|"measure"|"dim:<i>", dir)
    rows: list[dict[str, Any]] | None = field(default=None, repr=False)


class RateLimiter:
    """Sliding one-minute windows per (account, route) and a daily count of generate-query."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._minute: dict[tuple[str, str], deque[float]] = {}
        self._day: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self.daily_cap = DAILY_QUERY_CAP

    def admit(self, account: str, route: str) -> str | None:
        """None when the request is within the limits (and counts it), else the reason."""
        limit = PER_MINUTE.get(route)
        if limit is None:
            return None
        now = self._clock()
        with self._lock:
            window = self._minute.setdefault((account, route), deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit:
                return f"Rate limit exceeded: {limit} requests per minute on {route}"
            if route == GENERATE:
                day = int(now // 86_400)
                if self._day.get((account, day), 0) >= self.daily_cap:
                    return f"Rate limit exceeded: {self.daily_cap} queries per day"
                self._day[(account, day)] = self._day.get((account, day), 0) + 1
            window.append(now)
        return None


class V2Api:
    """State and handlers of the v2 routes; the app dispatches to :meth:`handle`."""

    def __init__(
        self, account: Account, *, clock: Callable[[], float] | None = None, compute_s: float = 1.5
    ) -> None:
        self.account = account
        self.clock: Callable[[], float] = clock or time.time
        self.compute_s = compute_s  # how long a query stays queued/running ("compute time")
        self.limiter = RateLimiter(lambda: self.clock())
        self.query_language_paths: set[str] = {"plain", "megabill"}
        self.queries: dict[str, _Query] = {}
        self._failures = 0
        self._counter = 0

    def routes(self) -> list[str]:
        return [GENERATE, STATUS, RESULTS, KEYS, VALUES, MB_KEYS, MB_VALUES]

    def fail_next(self, n: int = 1) -> None:
        """The next ``n`` queries end ``failed`` instead of ``completed``."""
        self._failures += n

    # ------------------------------------------------------------------ dispatch
    def handle(self, route: str, method: str, params: dict[str, str], query: dict[str, str], body: Any) -> Any:
        """The JSON payload (without requestId) of a 200 answer; raises V2Error otherwise."""
        if route in (KEYS, VALUES) and "plain" not in self.query_language_paths:
            raise V2Error(404, "NOT_FOUND", f"Not found: {route}")
        if route in (MB_KEYS, MB_VALUES) and "megabill" not in self.query_language_paths:
            raise V2Error(404, "NOT_FOUND", f"Not found: {route}")
        if (method != "POST" and route == GENERATE) or (method != "GET" and route != GENERATE):
            raise V2Error(405, "METHOD_NOT_ALLOWED", f"Method {method} not allowed on {route}")
        if route in (KEYS, MB_KEYS):
            return {"data": {"keys": self._keys()}}
        if route in (VALUES, MB_VALUES):
            return {"data": {"values": self._values(params["costCenter"], params["key"], query.get("type"))}}
        if route == GENERATE:
            return {"data": {"queryId": self._generate(body)}}
        q = self.queries.get(params["queryId"])
        if q is None:
            raise V2Error(404, "QUERY_NOT_FOUND", f"Query {params['queryId']} not found")
        if route == STATUS:
            return {"data": self._status(q)}
        return self._results(q, query)

    # ------------------------------------------------------------------ query language
    def key_types(self, cost_center: str, key: str) -> list[str] | None:
        from finout_mcp.sandbox.catalog import key_types

        if not self.account.key_exists(cost_center, key):
            return None
        return key_types(cost_center, key)

    def _keys(self) -> list[dict[str, Any]]:
        return [{**k, "types": self.key_types(k["costCenter"], k["key"]) or []} for k in self.account.keys]

    def _values(self, cost_center: str, key: str, kind: str | None) -> list[str]:
        types = self.key_types(cost_center, key)
        if types is None:
            raise V2Error(400, "INVALID_KEY", f"Key {key!r} not found in cost center {cost_center!r}")
        if kind is None and len(types) > 1:
            raise V2Error(400, "TYPE_REQUIRED", f"Key {key!r} supports several types {types}; pass ?type=")
        if kind is not None and kind not in types:
            raise V2Error(400, "INVALID_TYPE", f"Key {key!r} has type(s) {types}, not {kind!r}")
        return self.account.key_values(cost_center, key) or []

    # ------------------------------------------------------------------ generate
    def _generate(self, body: Any) -> str:
        if not isinstance(body, dict):
            raise V2Error(400, "INVALID_REQUEST", "Request body must be a JSON object")
        allowed = {"date", "timeInterval", "measurements", "dimensions", "filters", "rowLimit"}
        extra = set(body) - allowed
        if extra:
            raise V2Error(400, "INVALID_REQUEST", f"Unexpected field(s) {sorted(extra)}")
        start, end = self._date(body.get("date"))
        order: list[tuple[str, str]] = []
        ti = body.get("timeInterval")
        if (
            not isinstance(ti, dict)
            or ti.get("interval") not in INTERVALS
            or set(ti) - {"interval", "sortDirection"}
        ):
            raise V2Error(400, "INVALID_REQUEST", f"timeInterval must be {{'interval': one of {list(INTERVALS)}}}")
        if "sortDirection" in ti:
            order.append(("time", self._direction(ti["sortDirection"], "timeInterval.sortDirection")))
        measurements = self._measurements(body.get("measurements"), order)
        tags: set[str] = set()
        dimensions = self._dimensions(body.get("dimensions", []), order, tags)
        filters = body.get("filters")
        if filters is not None:
            try:
                leaves = validate_filter_v2(filters, self.key_types, virtual_tags=tags)
            except FilterError as exc:
                raise V2Error(422, "INVALID_FILTER", str(exc)) from None
            if leaves > V2_MAX_LEAVES:
                raise V2Error(
                    422, "TOO_MANY_CONDITIONS", f"filters has {leaves} conditions; at most {V2_MAX_LEAVES}"
                )
        if len(tags) > V2_MAX_VIRTUAL_TAGS:
            raise V2Error(
                422, "TOO_MANY_VIRTUAL_TAGS", f"{len(tags)} virtual tags used; at most {V2_MAX_VIRTUAL_TAGS}"
            )
        row_limit = body.get("rowLimit", DEFAULT_ROW_LIMIT)
        if not isinstance(row_limit, int) or isinstance(row_limit, bool) or not 1 <= row_limit <= MAX_ROW_LIMIT:
            raise V2Error(400, "INVALID_REQUEST", f"rowLimit must be an integer from 1 to {MAX_ROW_LIMIT}")
        self._counter += 1
        qid = stable_uuid(self.account.seed, "query", self._counter, self.clock())
        fail = self._failures > 0
        if fail:
            self._failures -= 1
        self.queries[qid] = _Query(
            qid,
            start,
            end,
            ti["interval"],
            measurements,
            dimensions,
            filters,
            row_limit,
            self.clock(),
            fail,
            order,
        )
        return qid

    @staticmethod
    def _direction(value: Any, where: str) -> str:
        if value not in SORT_DIRECTIONS:
            raise V2Error(400, "INVALID_REQUEST", f"{where} must be one of {list(SORT_DIRECTIONS)}")
        return str(value)

    @staticmethod
    def _date(date: Any) -> tuple[int, int]:
        if not isinstance(date, dict) or set(date) != {"unixTimeMillisecondsStart", "unixTimeMillisecondsEnd"}:
            raise V2Error(
                400,
                "INVALID_REQUEST",
                "date must be {'unixTimeMillisecondsStart': ms, 'unixTimeMillisecondsEnd': ms}",
            )
        start, end = date["unixTimeMillisecondsStart"], date["unixTimeMillisecondsEnd"]
        for name, value in (("unixTimeMillisecondsStart", start), ("unixTimeMillisecondsEnd", end)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise V2Error(400, "INVALID_REQUEST", f"date.{name} must be epoch milliseconds")
        if start > end:
            raise V2Error(400, "INVALID_REQUEST", "date.unixTimeMillisecondsStart is after the end")
        if end - start > MAX_RANGE_MS:
            days = (end - start) / DAY_MS
            raise V2Error(
                400, "INVALID_DATE_RANGE", f"Date range too long ({days:.1f} days): maximum range is 60 days"
            )
        return start, end

    def _measurements(self, value: Any, order: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_MEASUREMENTS:
            raise V2Error(
                400, "INVALID_REQUEST", f"measurements must be an array of 1 to {MAX_MEASUREMENTS} items"
            )
        out = []
        for i, m in enumerate(value):
            if not isinstance(m, dict) or set(m) - {"type", "operator", "sortDirection"}:
                raise V2Error(
                    400, "INVALID_REQUEST", f"measurements[{i}] must be {{type, operator?, sortDirection?}}"
                )
            if m.get("type") not in MEASUREMENT_TYPES:
                raise V2Error(
                    400, "INVALID_REQUEST", f"measurements[{i}].type must be one of {list(MEASUREMENT_TYPES)}"
                )
            op = m.get("operator", "sum")
            if op not in MEASUREMENT_OPERATORS:
                raise V2Error(
                    400,
                    "INVALID_REQUEST",
                    f"measurements[{i}].operator must be one of {list(MEASUREMENT_OPERATORS)}",
                )
            if "sortDirection" in m:
                order.append(
                    (f"measure:{i}", self._direction(m["sortDirection"], f"measurements[{i}].sortDirection"))
                )
            out.append((str(m["type"]), str(op)))
        return out

    def _dimensions(self, value: Any, order: list[tuple[str, str]], tags: set[str]) -> list[tuple[str, str, str]]:
        if not isinstance(value, list) or len(value) > MAX_DIMENSIONS:
            raise V2Error(400, "INVALID_REQUEST", f"dimensions must be an array of at most {MAX_DIMENSIONS} items")
        out = []
        for i, d in enumerate(value):
            if not isinstance(d, dict) or set(d) - {"costCenter", "key", "type", "sortDirection", "displayName"}:
                raise V2Error(400, "INVALID_REQUEST", f"dimensions[{i}] must be {{costCenter, key, type}}")
            cc, key, kind = d.get("costCenter"), d.get("key"), d.get("type")
            if not all(isinstance(x, str) and x for x in (cc, key, kind)):
                raise V2Error(400, "INVALID_REQUEST", f"dimensions[{i}] needs non-empty costCenter, key and type")
            assert isinstance(cc, str) and isinstance(key, str) and isinstance(kind, str)
            types = self.key_types(cc, key)
            if types is None:
                raise V2Error(422, "INVALID_DIMENSION", f"dimensions[{i}]: unknown key {key!r} in {cc!r}")
            if kind not in types:
                raise V2Error(
                    422, "INVALID_DIMENSION", f"dimensions[{i}]: key {key!r} has type(s) {types}, not {kind!r}"
                )
            if kind == "virtual_tag":
                tags.add(key)
            if "sortDirection" in d:
                order.append((f"dim:{i}", self._direction(d["sortDirection"], f"dimensions[{i}].sortDirection")))
            out.append((cc, key, kind))
        return out

    # ------------------------------------------------------------------ status & results
    def _state(self, q: _Query) -> str:
        age = self.clock() - q.created
        if age < self.compute_s * 0.3:
            return "queued"
        if age < self.compute_s:
            return "running"
        if q.fail:
            return "failed"
        if age > self.compute_s + RESULT_LIFETIME_S:
            return "expired"
        return "completed"

    @staticmethod
    def _iso(seconds: float) -> str:
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _status(self, q: _Query) -> dict[str, Any]:
        state = self._state(q)
        out: dict[str, Any] = {"status": state}
        if state == "completed":
            done = q.created + self.compute_s
            out["completedAt"] = self._iso(done)
            out["expiredAt"] = self._iso(done + RESULT_LIFETIME_S)
            out["totalRows"] = len(self._rows(q))
        return out

    def _results(self, q: _Query, query: dict[str, str]) -> dict[str, Any]:
        state = self._state(q)
        if state in ("queued", "running"):
            raise V2Error(
                202, f"QUERY_{state.upper()}", f"Query is {state}; poll the status endpoint until completed"
            )
        if state == "failed":
            raise V2Error(424, "QUERY_FAILED", "The query failed; submit a new query")
        if state == "expired":
            raise V2Error(410, "RESULTS_EXPIRED", "Results expired (kept 24 hours); submit a new query")
        size_text = query.get("pageSize")
        size = DEFAULT_PAGE_SIZE
        if size_text is not None:
            if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
                raise V2Error(400, "INVALID_REQUEST", f"pageSize must be an integer from 1 to {MAX_PAGE_SIZE}")
            size = int(size_text)
        offset = 0
        cursor = query.get("cursor")
        if cursor:
            try:
                qid, _, pos = base64.urlsafe_b64decode(cursor.encode()).decode().rpartition(":")
                offset = int(pos)
            except (ValueError, UnicodeDecodeError):
                raise V2Error(400, "INVALID_CURSOR", "cursor is not one this API returned") from None
            if qid != q.id or offset < 0:
                raise V2Error(400, "INVALID_CURSOR", "cursor belongs to another query")
        rows = self._rows(q)
        page = rows[offset : offset + size]
        more = offset + size < len(rows)
        pagination: dict[str, Any] = {"hasMore": more, "totalRows": len(rows)}
        if more:
            pagination["nextCursor"] = base64.urlsafe_b64encode(f"{q.id}:{offset + size}".encode()).decode()
        return {"pagination": pagination, "data": page}

    # ------------------------------------------------------------------ computing
    def _rows(self, q: _Query) -> list[dict[str, Any]]:
        if q.rows is None:
            q.rows = self.compute(q)
        return q.rows

    @staticmethod
    def bucket(day: dt.date, interval: str) -> str:
        if interval == "week":
            day = day - dt.timedelta(days=day.weekday())
        elif interval == "month":
            day = day.replace(day=1)
        return day.isoformat()

    def compute(self, q: _Query) -> list[dict[str, Any]]:
        table = self.account.costs
        acc: dict[tuple[str, tuple[str | None, ...]], list[list[float]]] = {}
        units: dict[tuple[str, tuple[str | None, ...]], set[str]] = {}
        for day in table.days(q.start_ms, q.end_ms):
            label = self.bucket(day, q.interval)
            for line in table.lines:
                attrs = self.account.row(line, day)
                if q.filters is not None and not matches(q.filters, attrs):
                    continue
                dims = tuple(attrs.get((cc, key)) for cc, key, _ in q.dimensions)
                cost = table.cost(line, day)
                stats = acc.setdefault((label, dims), [[0.0, 0.0, math.inf, -math.inf] for _ in q.measurements])
                units.setdefault((label, dims), set()).add(line.unit)
                for i, (kind, _op) in enumerate(q.measurements):
                    value = cost / line.unit_price if kind in USAGE_TYPES else cost * V2_COST_TYPES[kind]
                    s = stats[i]
                    s[0] += value
                    s[1] += 1
                    s[2] = min(s[2], value)
                    s[3] = max(s[3], value)
        rows = []
        for (label, dims), stats in acc.items():
            row: dict[str, Any] = {q.interval: label}
            row_units = units[(label, dims)]
            unit = next(iter(row_units)) if len(row_units) == 1 else "Units"
            for (cc, key, kind), dim_value in zip(q.dimensions, dims, strict=True):
                row[f"{cc}_{kind}_{key}"] = dim_value
            for (kind, op), s in zip(q.measurements, stats, strict=True):
                amount = {"sum": s[0], "avg": s[0] / s[1], "min": s[2], "max": s[3]}[op]
                cell: dict[str, Any] = {"amount": round(amount, 6)}
                if kind in USAGE_TYPES:
                    cell["unit"] = unit
                row[f"{kind}_{op}"] = cell
            rows.append(row)
        first = f"{q.measurements[0][0]}_{q.measurements[0][1]}"
        rows.sort(key=lambda r: -float(r[first]["amount"]))  # documented default: descending by measurement
        for what, direction in reversed(q.order):

            def sort_key(r: dict[str, Any], w: str = what) -> Any:
                return self._sort_key(r, w, q)

            rows.sort(key=sort_key, reverse=direction == "descending")
        return rows[: q.row_limit]

    @staticmethod
    def _sort_key(row: dict[str, Any], what: str, q: _Query) -> Any:
        if what == "time":
            return row[q.interval]
        kind, _, index = what.partition(":")
        if kind == "measure":
            t, op = q.measurements[int(index)]
            return row[f"{t}_{op}"]["amount"]
        cc, key, typ = q.dimensions[int(index)]
        return row.get(f"{cc}_{typ}_{key}") or ""
