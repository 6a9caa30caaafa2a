"""The async Finout API v2 client: Query Language keys/values and Cost and Usage queries.

It shares the v1 client's machinery (:class:`~finout_mcp.api.client.FinoutClient`): the same
credentials and headers, secret scrubbing, retries with full jitter, typed errors of
:mod:`finout_mcp.api.errors`. What differs:

- **Base URL**: ``Settings.v2_url()`` (``FINOUT_API_V2_URL``, else ``FINOUT_API_URL`` with
  ``/v1`` made ``/v2``).
- **Rate limits**: every attempt first takes a slot from the shared
  :class:`~finout_mcp.api.budget.RateBudget` of its route (requests per minute, queries per
  day); a 429 pauses the route for every caller, then the call is retried with jitter.
- **Query Language path**: the page gives ``/query-language/...`` ("How it works") and
  ``/megabill/query-language/...`` (its rate-limit table). The documented "How it works" form is
  tried first; on 404 the other is tried, and whichever answered is used from then on.
- **Strict parsing**: :mod:`finout_mcp.api.models_v2`; a response missing a promised field is a
  :class:`MalformedResponseError` naming it.
- **Query lifecycle**: :meth:`FinoutV2Client.run_query` submits, waits a short first wait, polls
  the status at the documented cadence (every 5 s) and pages through the results. A failed
  query and expired results are errors that say to submit a new query.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from finout_mcp.api import budget as routes
from finout_mcp.api.budget import LocalRateBudget, RateBudget
from finout_mcp.api.client import FinoutClient, _Call, _id, parse_retry_after
from finout_mcp.api.errors import (
    APITimeoutError,
    FinoutAPIStatusError,
    MalformedResponseError,
    NotFoundError,
    status_error,
)
from finout_mcp.api.limiter import Limiter
from finout_mcp.api.models_v2 import (
    QueryCreated,
    QueryResultsPage,
    QueryStatusData,
    QueryStatusResponse,
    V2Key,
    V2KeyList,
    V2ValueList,
)
from finout_mcp.config import Settings

log = logging.getLogger("finout_mcp.api.v2")

PAGE_SIZE = 1000  # rows per results page; [spec] max 10,000, default 100
ROW_LIMIT = 100_000  # [spec] max; default 1,000 would cut long grouped answers silently
RATE_LIMIT_PAUSE_S = 5.0  # no Retry-After is documented for v2: pause the route this long after a 429

QUERY_LANGUAGE_PREFIXES = (("query-language",), ("megabill", "query-language"))


class QueryNotReadyError(MalformedResponseError):
    """Results asked for before the query completed (HTTP 202 ``QUERY_QUEUED``/``QUERY_RUNNING``)."""


@dataclass(frozen=True)
class QueryOutcome:
    """Rows of one completed query and what it cost to get them."""

    query_id: str
    rows: list[dict[str, Any]]
    total_rows: int | None
    expired_at: str | None
    requests: int  # HTTP requests this call spent (generate + polls + pages)
    polls: int


class FinoutV2Client(FinoutClient):
    """Async client of the Finout API v2 (use as ``async with FinoutV2Client(settings) as c``).

    ``budget`` is the process's shared :class:`RateBudget` (one is made if none is given);
    ``sleep`` replaces ``anyio.sleep`` for backoff and polling waits.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        budget: RateBudget | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        super().__init__(settings, transport=transport, sleep=sleep, limiter=limiter)
        self._base = settings.v2_url().rstrip("/")
        self.budget: RateBudget = budget or LocalRateBudget(sleep=sleep)
        self._ql_prefix: tuple[str, ...] | None = None  # the Query Language path that answered

    def __repr__(self) -> str:
        return f"FinoutV2Client(api_url={self._base!r})"

    @property
    def query_language_prefix(self) -> str | None:
        """The Query Language path that worked ("/query-language" or "/megabill/query-language")."""
        return "/" + "/".join(self._ql_prefix) if self._ql_prefix else None

    # ------------------------------------------------------------------ hooks
    async def _before_attempt(self, call: _Call) -> None:
        if call.route is not None:
            await self.budget.acquire(call.route)

    def _after_attempt(self, call: _Call, response: httpx.Response) -> None:
        if response.status_code == 429 and call.route is not None:
            wait = parse_retry_after(response.headers.get("retry-after"))
            self.budget.penalise(call.route, RATE_LIMIT_PAUSE_S if wait is None else wait)

    # ------------------------------------------------------------------ query language
    async def list_keys_v2(self) -> list[V2Key]:
        """GET /query-language/keys: every key with the types it supports."""
        response, call = await self._query_language(("keys",), ("keys",))
        return self._parse(response, V2KeyList, call).data.keys

    async def list_values_v2(self, cost_center: str, key: str, key_type: str | None = None) -> list[str]:
        """GET /query-language/values/{costCenter}/{key}[?type=]: the key's values."""
        segs = ("values", _id(cost_center, "cost_center"), _id(key, "key"))
        query = "" if key_type is None else "?" + str(httpx.QueryParams({"type": key_type}))
        response, call = await self._query_language(segs, ("values", "{costCenter}", "{key}"), query)
        return self._parse(response, V2ValueList, call).data.values

    async def _query_language(
        self, segments: tuple[str, ...], template: tuple[str, ...], query: str = ""
    ) -> tuple[httpx.Response, _Call]:
        prefixes = [self._ql_prefix] if self._ql_prefix else list(QUERY_LANGUAGE_PREFIXES)
        first_error: NotFoundError | None = None
        for prefix in prefixes:
            route = "GET /" + "/".join((*prefix, *template))
            call = _Call("GET", self._path(*prefix, *segments) + query, route=route)
            try:
                response = await self._send(call)
            except NotFoundError as exc:
                if first_error is None:
                    first_error = exc
                continue
            if self._ql_prefix is None:
                self._ql_prefix = prefix
                log.info("Query Language v2 answers on %s", self.query_language_prefix)
            return response, call
        assert first_error is not None
        raise first_error

    # ------------------------------------------------------------------ cost and usage
    async def generate_query(self, body: dict[str, Any]) -> str:
        """POST /data/cost-usage/generate-query → the ``queryId``."""
        call = _Call("POST", self._path("data", "cost-usage", "generate-query"), body, route=routes.GENERATE_QUERY)
        return self._parse(await self._send(call), QueryCreated, call).data.query_id

    async def query_status(self, query_id: str) -> QueryStatusData:
        """GET /data/cost-usage/{queryId}/status."""
        call = _Call(
            "GET", self._path("data", "cost-usage", _id(query_id, "query_id"), "status"), route=routes.QUERY_STATUS
        )
        return self._parse(await self._send(call), QueryStatusResponse, call).data

    async def query_results_page(
        self, query_id: str, *, page_size: int = PAGE_SIZE, cursor: str | None = None
    ) -> QueryResultsPage:
        """GET /data/cost-usage/{queryId}/results?pageSize=&cursor= (one page)."""
        params = {"pageSize": str(page_size)}
        if cursor:
            params["cursor"] = cursor
        path = self._path("data", "cost-usage", _id(query_id, "query_id"), "results")
        call = _Call("GET", path + "?" + str(httpx.QueryParams(params)), route=routes.QUERY_RESULTS)
        response = await self._send(call)
        if response.status_code == 202:
            raise QueryNotReadyError(
                "results asked for before the query completed (202)",
                status=202,
                method="GET",
                path=path,
                retryable=True,
                hint="Poll the status until it is completed, then read the results.",
            )
        return self._parse(response, QueryResultsPage, call)

    async def query_results(
        self, query_id: str, *, page_size: int = PAGE_SIZE
    ) -> tuple[list[dict[str, Any]], int]:
        """Every row of a completed query, following the cursor; ``(rows, pages)``."""
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        pages = 0
        seen: set[str] = set()
        while True:
            page = await self.query_results_page(query_id, page_size=page_size, cursor=cursor)
            pages += 1
            rows.extend(page.data)
            if not page.pagination.has_more:
                return rows, pages
            cursor = page.pagination.next_cursor
            if not cursor or cursor in seen:
                raise MalformedResponseError(
                    "pagination.nextCursor is missing or repeats although pagination.hasMore is true",
                    status=200,
                    method="GET",
                    path=self._path("data", "cost-usage", query_id, "results"),
                )
            seen.add(cursor)

    async def wait_for_query(
        self,
        query_id: str,
        *,
        on_poll: Callable[[QueryStatusData, float], Awaitable[None]] | None = None,
    ) -> tuple[QueryStatusData, int]:
        """Poll the status until it is ``completed``: a short first wait, then every
        ``v2_poll_interval_s`` (5 s, as documented). ``(final status, polls)``; failed,
        expired or too slow queries raise errors that say what to do."""
        settings = self._settings
        waited = 0.0
        delay = settings.v2_poll_first_s
        polls = 0
        while True:
            await self._sleep(delay)
            waited += delay
            status = await self.query_status(query_id)
            polls += 1
            if on_poll is not None:
                await on_poll(status, waited)
            if status.status == "completed":
                return status, polls
            if status.status in ("failed", "expired"):
                raise query_gone(status.status, query_id, self._path("data", "cost-usage", query_id, "status"))
            if waited >= settings.v2_query_timeout_s:
                raise APITimeoutError(
                    f"query {query_id} still {status.status} after {waited:.0f} s",
                    method="GET",
                    path=self._path("data", "cost-usage", query_id, "status"),
                    retryable=True,
                    hint="Finout is still computing it; ask again in a minute (the same question reuses the "
                    "query), or narrow the date range or the group-by.",
                )
            delay = settings.v2_poll_interval_s

    async def run_query(
        self,
        body: dict[str, Any],
        *,
        query_id: str | None = None,
        on_poll: Callable[[QueryStatusData, float], Awaitable[None]] | None = None,
    ) -> QueryOutcome:
        """Submit ``body`` (or reuse ``query_id``, whose results are read at once), wait, read all pages.

        A reused query whose results are gone (410/404) raises; the caller submits anew."""
        before = self.stats.requests_sent
        polls = 0
        status: QueryStatusData | None = None
        if query_id is None:
            query_id = await self.generate_query(body)
            status, polls = await self.wait_for_query(query_id, on_poll=on_poll)
        rows, _pages = await self.query_results(query_id)
        return QueryOutcome(
            query_id=query_id,
            rows=rows,
            total_rows=status.total_rows if status else None,
            expired_at=status.expired_at if status else None,
            requests=self.stats.requests_sent - before,
            polls=polls,
        )


def query_gone(state: str, query_id: str, path: str) -> FinoutAPIStatusError:
    """The error for a query that ``failed`` or whose results ``expired``."""
    if state == "failed":
        return status_error(
            424,
            f"query {query_id} failed (QUERY_FAILED)",
            method="GET",
            path=path,
            retryable=False,
            hint="Finout could not compute this query; submit it again, and if it fails again narrow the date "
            "range, the filter or the group-by.",
        )
    return status_error(
        410,
        f"the results of query {query_id} expired (RESULTS_EXPIRED; Finout keeps them 24 hours)",
        method="GET",
        path=path,
        retryable=False,
        hint="Submit the query again (ask the same question again: a new query is made).",
    )


__all__ = ["PAGE_SIZE", "ROW_LIMIT", "FinoutV2Client", "QueryNotReadyError", "QueryOutcome", "query_gone"]
