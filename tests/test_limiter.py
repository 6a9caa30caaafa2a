"""Named request budgets: in one process, and shared by replicas through a real PostgreSQL server."""

from __future__ import annotations

import random

import anyio

from finout_mcp.api.limiter import MemoryLimiter, PostgresLimiter, build_limiter
from tests.postgres import pg_url

__all__ = ["pg_url"]  # the fixture


class Gauge:
    """How many holders are inside at once, and the most ever seen."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0
        self.done = 0

    async def hold(self, limiter: object, name: str, limit: int, seconds: float) -> None:
        async with limiter.slot(name, limit):  # type: ignore[attr-defined]
            self.now += 1
            self.max = max(self.max, self.now)
            await anyio.sleep(seconds)
            self.now -= 1
            self.done += 1


async def test_memory_limiter_caps_each_name_on_its_own() -> None:
    limiter = MemoryLimiter()
    a, b = Gauge(), Gauge()
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(a.hold, limiter, "key-a", 5, 0.01)
            tg.start_soon(b.hold, limiter, "key-b", 2, 0.01)
    assert (a.max, a.done, b.max, b.done) == (5, 20, 2, 20)


def test_the_database_url_picks_the_limiter() -> None:
    assert isinstance(build_limiter(None), MemoryLimiter)
    assert isinstance(build_limiter("sqlite:////tmp/x.db"), MemoryLimiter)
    assert isinstance(build_limiter("postgresql://u@h/db"), PostgresLimiter)


async def test_two_replicas_never_hold_more_than_five_slots_together(pg_url: str) -> None:
    """Two limiters (as two replicas would have, each with its own connections) and 50 holders
    at once: never more than 5 inside together, and all 50 get through."""
    replicas = [PostgresLimiter(pg_url), PostgresLimiter(pg_url)]
    gauge = Gauge()
    rng = random.Random(3)
    try:
        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(gauge.hold, replicas[i % 2], "finout-key:test", 5, rng.uniform(0.01, 0.04))
    finally:
        for r in replicas:
            await r.aclose()
    assert gauge.done == 50
    assert gauge.max == 5  # shared: the cap is reached, never passed


async def test_a_replica_that_dies_releases_its_slots(pg_url: str) -> None:
    dead = PostgresLimiter(pg_url)
    alive = PostgresLimiter(pg_url)
    try:
        entered = anyio.Event()

        async def hold_forever() -> None:
            async with dead.slot("finout-key:dies", 1):
                entered.set()
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold_forever)
            await entered.wait()
            with anyio.move_on_after(0.3) as blocked:
                async with alive.slot("finout-key:dies", 1):
                    pass
            assert blocked.cancelled_caught  # the other replica holds the only slot
            # The replica dies: its connections close, and PostgreSQL frees its advisory locks.
            for conn in list(dead._in_use):
                await conn.close()
            with anyio.fail_after(10):
                async with alive.slot("finout-key:dies", 1):
                    pass
            tg.cancel_scope.cancel()
    finally:
        await alive.aclose()
        await dead.aclose()
