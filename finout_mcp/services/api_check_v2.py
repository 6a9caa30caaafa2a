"""The API v2 part of ``finout-mcp doctor``: one small v2 query, every v2 shape checked strictly.

What ``query_costs`` and the impact estimates rely on comes partly from Finout's pages and
partly from a third-party spec derived from them ([spec] in ``finout-api-v2.md``). Each
:class:`Check` names the assumption it verifies on the live account, so a mismatch says
exactly which reading was wrong. Read-only: one day, one dimension; it spends one or two of the
10,000 daily queries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from finout_mcp.api.client_v2 import FinoutV2Client
from finout_mcp.api.errors import FinoutError
from finout_mcp.api.models_v2 import V2Key
from finout_mcp.services import periods
from finout_mcp.services.cost_query import CostQueries, rows_to_series

MEASUREMENT = "unblendedCost"


@dataclass(frozen=True)
class Check:
    """One verified expectation: ``ok`` is None when it could not be checked (an earlier step failed)."""

    name: str
    ok: bool | None
    detail: str
    assumption: str  # what the code relies on, with its source tag


# Every assumption the v2 code relies on, in the order the checks run (for the report and docs).
ASSUMPTIONS: dict[str, str] = {
    "keys": "[doc] GET keys answers {requestId, data: {keys: [{costCenter, key, displayName, types[]}]}}",
    "keys_path": "[doc, ambiguous] the Query Language path is /query-language (How it works) or "
    "/megabill/query-language (rate-limit table)",
    "values": "[spec] GET values answers {requestId, data: {values: [string]}}, ?type= for multi-type keys",
    "generate": "[spec] generate-query takes date.unixTimeMilliseconds{Start,End}, timeInterval.interval, "
    "measurements[{type, operator}], dimensions[{costCenter, key, type}], rowLimit, and answers data.queryId",
    "filter": "[doc field table] a condition's value is an array, also for is/notIs; conditions carry type",
    "status": "[spec] status answers data.status in queued|running|completed|failed|expired, and when "
    "completed data.completedAt, data.expiredAt, data.totalRows",
    "results": "[spec] results?pageSize=&cursor= answers {pagination: {hasMore, totalRows, nextCursor?}, data: [rows]}",
    "rows": "[spec] a row holds '<interval>': ISO date, '<costCenter>_<type>_<key>': value, "
    "'<measurement>_<operator>': {amount, unit?}",
    "rate_limits": "[doc] 50 requests/minute per route, 10,000 queries/day; no rate-limit headers documented",
}


def _pick_key(keys: list[V2Key]) -> V2Key:
    for k in keys:
        if k.cost_center == "Global" and k.key == "cost_center_type":
            return k
    for k in keys:
        if "billing_dimension" in k.types:
            return k
    return keys[0]


async def check_api_v2(
    client: FinoutV2Client,
    queries: CostQueries,
    *,
    today: date | None = None,
    on_check: Callable[[Check], Awaitable[None]] | None = None,
) -> list[Check]:
    """Run the v2 checks against the account ``client`` talks to; one :class:`Check` per assumption."""
    today = today or datetime.now(UTC).date()
    checks: list[Check] = []

    async def record(name: str, ok: bool | None, detail: str) -> None:
        check = Check(name, ok, detail, ASSUMPTIONS[name])
        checks.append(check)
        if on_check is not None:
            await on_check(check)

    async def skipped(*names: str, why: str) -> list[Check]:
        for name in names:
            await record(name, None, f"not checked: {why}")
        return checks

    rest = ("values", "generate", "filter", "status", "results", "rows")
    try:
        keys = await client.list_keys_v2()
    except FinoutError as exc:
        await record("keys", False, str(exc))
        await record("keys_path", False, "neither /query-language nor /megabill/query-language answered")
        return await skipped(*rest, "rate_limits", why="the keys could not be read")
    if not keys:
        await record("keys", False, "data.keys is an empty list: no key to query with")
        return await skipped("keys_path", *rest, "rate_limits", why="no keys")
    typed = sum(1 for k in keys if k.types)
    await record("keys", True, f"{len(keys)} keys, each with types ({typed} typed)")
    await record("keys_path", True, f"answered on {client.query_language_prefix}")

    key = _pick_key(keys)
    kind = key.types[0]
    try:
        values = await client.list_values_v2(key.cost_center, key.key, kind)
        await record("values", True, f"{len(values)} values of {key.cost_center}.{key.key} (type {kind})")
    except FinoutError as exc:
        values = []
        await record("values", False, str(exc))

    day = today - timedelta(days=2)  # a settled day
    window = periods.DateSpan(day, day)
    dims = [{"costCenter": key.cost_center, "key": key.key, "type": kind}]
    flt: dict[str, Any] | None = None
    if values:
        flt = {"costCenter": key.cost_center, "key": key.key, "type": kind, "operator": "is", "value": [values[0]]}
    body = queries.body(window, interval="day", measurement=MEASUREMENT, dims=dims, v2_filter=flt)
    try:
        query_id = await client.generate_query(body)
        await record("generate", True, f"queryId {query_id} for {day.isoformat()} by {key.cost_center}.{key.key}")
        if flt is not None:
            await record("filter", True, f"accepted is with value {flt['value']!r} (an array) and type {kind!r}")
        else:
            await record("filter", None, "not checked: the key has no values")
    except FinoutError as exc:
        if flt is None or exc.status not in (400, 422):
            await record("generate", False, str(exc))
            return await skipped("filter", "status", "results", "rows", "rate_limits", why="no query was made")
        await record("filter", False, f"a condition with value as an array for 'is' was refused: {exc}")
        body.pop("filters")
        try:
            query_id = await client.generate_query(body)
        except FinoutError as exc2:
            await record("generate", False, str(exc2))
            return await skipped("status", "results", "rows", "rate_limits", why="no query was made")
        await record("generate", True, f"queryId {query_id} (without a filter)")

    try:
        status, polls = await client.wait_for_query(query_id)
    except FinoutError as exc:
        await record("status", False, str(exc))
        return await skipped("results", "rows", "rate_limits", why="the query did not complete")
    missing = [f for f in ("completed_at", "expired_at", "total_rows") if getattr(status, f) is None]
    if missing:
        names = ", ".join(
            "data." + {"completed_at": "completedAt", "expired_at": "expiredAt"}.get(f, "totalRows")
            for f in missing
        )
        await record("status", False, f"completed after {polls} polls, but without {names} (the code copes)")
    else:
        await record("status", True, f"completed after {polls} polls; results kept until {status.expired_at}")

    try:
        rows, pages = await client.query_results(query_id)
        await record("results", True, f"{len(rows)} rows in {pages} page(s); totalRows {status.total_rows}")
    except FinoutError as exc:
        await record("results", False, str(exc))
        return await skipped("rows", "rate_limits", why="the results could not be read")
    try:
        series, _ = rows_to_series(rows, dims, MEASUREMENT, "day", window, "/data/cost-usage/{queryId}/results")
        total = sum(p.cost for p in series[0].data)
        await record("rows", True, f"rows read as documented; total {total:,.2f} over {len(series) - 1} group(s)")
    except FinoutError as exc:
        await record("rows", False, str(exc))
    usage = client.budget.usage()
    await record(
        "rate_limits",
        True,
        f"stayed within the documented limits; {usage.daily_used} queries used by this check. " + usage.sentence(),
    )
    return checks


__all__ = ["ASSUMPTIONS", "Check", "check_api_v2"]
