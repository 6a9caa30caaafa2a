"""Finout API v2 rate limits as documented: requests per minute per route, queries per day.

Finout applies v2 limits "per route, per account" (``finout-api-v2.md`` §8): 50 or 100
requests a minute depending on the route, and at most 10,000 ``generate-query`` calls a day.
Every v2 call of the process goes through one :class:`RateBudget`, which waits until a request
fits in the route's last-minute window (never sends faster than the limit) and refuses a query
past the daily cap. After a 429 the route is paused for everyone (:meth:`RateBudget.penalise`).

:class:`RateBudget` is a protocol so that a shared store (the PostgreSQL database replicas
share) can back it later; :class:`LocalRateBudget` keeps the counts in this process.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from finout_mcp.api.errors import RateLimitedError

MINUTE_S = 60.0
# A window slightly longer than a minute: our clock and Finout's need not agree to the millisecond.
WINDOW_S = 61.0
DAILY_QUERY_CAP = 10_000

GENERATE_QUERY = "POST /data/cost-usage/generate-query"
QUERY_STATUS = "GET /data/cost-usage/{queryId}/status"
QUERY_RESULTS = "GET /data/cost-usage/{queryId}/results"
KEYS = "GET /query-language/keys"
VALUES = "GET /query-language/values/{costCenter}/{key}"
MEGABILL_KEYS = "GET /megabill/query-language/keys"
MEGABILL_VALUES = "GET /megabill/query-language/values/{costCenter}/{key}"

# Requests per minute per route [doc: v2/cu, v2/ql].
PER_MINUTE: dict[str, int] = {
    GENERATE_QUERY: 50,
    QUERY_STATUS: 50,
    QUERY_RESULTS: 50,
    KEYS: 50,
    VALUES: 50,
    MEGABILL_KEYS: 50,
    MEGABILL_VALUES: 50,
}
PER_DAY: dict[str, int] = {GENERATE_QUERY: DAILY_QUERY_CAP}


@dataclass(frozen=True)
class BudgetUsage:
    """How much of the budget is spent: today's queries and the last minute per route."""

    daily_used: int
    daily_cap: int
    last_minute: dict[str, int]

    @property
    def daily_pct(self) -> float:
        return self.daily_used / self.daily_cap * 100.0 if self.daily_cap else 0.0

    def sentence(self) -> str:
        return (
            f"Finout API v2 daily query budget: {self.daily_used:,} of {self.daily_cap:,} used today "
            f"({self.daily_pct:.2f} %, resets at 00:00 UTC)."
        )


class RateBudget(Protocol):
    """The shared v2 budget. ``route`` is a template such as :data:`QUERY_STATUS`."""

    async def acquire(self, route: str) -> None:
        """Wait until one request on ``route`` fits the limits, and count it. Raises
        :class:`RateLimitedError` (not retryable) when the daily cap is spent."""
        ...

    def penalise(self, route: str, seconds: float) -> None:
        """Finout answered 429: hold every request on ``route`` for ``seconds``."""
        ...

    def usage(self) -> BudgetUsage: ...


class DailyCounter(Protocol):
    """Where the day's query count is kept so that it survives a restart (the state database)."""

    def daily_count(self, name: str, day: int) -> int: ...

    def count_one(self, name: str, day: int) -> int: ...


class MemoryDailyCounter:
    """The day's counts of this process only (demo and tests without a state dir)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}

    def daily_count(self, name: str, day: int) -> int:
        return self._counts.get((name, day), 0)

    def count_one(self, name: str, day: int) -> int:
        self._counts[(name, day)] = self._counts.get((name, day), 0) + 1
        return self._counts[(name, day)]


class LocalRateBudget:
    """The budget of one process: sliding one-minute windows, and a per-UTC-day counter kept in
    ``daily`` (the state database, so that a restart does not forget today's queries)."""

    def __init__(
        self,
        per_minute: dict[str, int] | None = None,
        per_day: dict[str, int] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        daily: DailyCounter | None = None,
    ) -> None:
        self.per_minute = dict(PER_MINUTE if per_minute is None else per_minute)
        self.per_day = dict(PER_DAY if per_day is None else per_day)
        self._clock = clock
        self._sleep: Callable[[float], Awaitable[None]] = sleep or anyio.sleep
        self._sent: dict[str, deque[float]] = {}
        self._daily: DailyCounter = daily or MemoryDailyCounter()
        self._paused_until: dict[str, float] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self.sent_log: list[tuple[float, str]] = []  # (time, route) of every admitted request

    def _lock(self, route: str) -> anyio.Lock:
        lock = self._locks.get(route)
        if lock is None:
            lock = self._locks[route] = anyio.Lock()
        return lock

    async def acquire(self, route: str) -> None:
        async with self._lock(route):  # one waiter decides at a time: FIFO per route
            cap = self.per_day.get(route)
            if cap is not None:
                day = int(self._clock() // 86_400)
                if self._daily.daily_count(route, day) >= cap:
                    raise RateLimitedError(
                        f"the daily cap of {cap:,} Cost and Usage queries is spent",
                        status=None,
                        method=route.split(" ", 1)[0],
                        path=route.split(" ", 1)[1],
                        retryable=False,
                        hint="Finout allows 10,000 queries a day per account; it resets at 00:00 UTC. "
                        "Saved views' costs (API v1) can still be read meanwhile.",
                    )
            limit = self.per_minute.get(route)
            while True:
                now = self._clock()
                wait = self._paused_until.get(route, 0.0) - now
                window = self._sent.setdefault(route, deque())
                while window and window[0] <= now - WINDOW_S:
                    window.popleft()
                if limit is not None and len(window) >= limit:
                    wait = max(wait, window[0] + WINDOW_S - now)
                if wait <= 0:
                    break
                await self._sleep(wait)
            window.append(now)
            self.sent_log.append((now, route))
            if cap is not None:
                day = int(now // 86_400)
                self._daily.count_one(route, day)

    def penalise(self, route: str, seconds: float) -> None:
        until = self._clock() + max(0.0, seconds)
        self._paused_until[route] = max(self._paused_until.get(route, 0.0), until)

    def usage(self) -> BudgetUsage:
        now = self._clock()
        day = int(now // 86_400)
        used = self._daily.daily_count(GENERATE_QUERY, day)
        minute = {
            route: sum(1 for t in window if t > now - MINUTE_S) for route, window in self._sent.items() if window
        }
        return BudgetUsage(used, self.per_day.get(GENERATE_QUERY, DAILY_QUERY_CAP), minute)


__all__ = [
    "DAILY_QUERY_CAP",
    "GENERATE_QUERY",
    "KEYS",
    "MEGABILL_KEYS",
    "MEGABILL_VALUES",
    "PER_DAY",
    "PER_MINUTE",
    "QUERY_RESULTS",
    "QUERY_STATUS",
    "VALUES",
    "BudgetUsage",
    "DailyCounter",
    "LocalRateBudget",
    "MemoryDailyCounter",
    "RateBudget",
]
