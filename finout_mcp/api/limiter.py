"""Named request budgets: at most N requests in flight per name, in one process or across replicas.

Finout allows five requests in flight per API key. A :class:`Limiter` hands out *slots* of a
named budget (``"finout:<client id>"``); whoever holds a slot may have one request in flight.

- :class:`MemoryLimiter` — one process (stdio, a single HTTP server). Semaphores per name.
- :class:`PostgresLimiter` — every replica that shares ``FINOUT_MCP_DATABASE_URL``. Slot *i* of
  a budget is the session-level advisory lock ``(hash(name), i)``: a replica holds it on one of
  its own connections for as long as the request is in flight, so two replicas together never
  hold more than N, and a replica that dies releases its slots with its connections. Waiting
  replicas poll ``pg_try_advisory_lock`` (a few ms apart, jittered); each replica first takes a
  local slot, so it never keeps more than N connections per budget.

Names are opaque to the limiter; the v2 API or another account uses its own name. psycopg is
imported only when a Postgres limiter is built.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import anyio

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("finout_mcp.api.limiter")


class Limiter(Protocol):
    """At most ``limit`` holders of ``name`` at once."""

    def slot(self, name: str, limit: int) -> Any:
        """An async context manager: entered once a slot of ``name`` is free, left to free it."""

    async def aclose(self) -> None: ...


class MemoryLimiter:
    """Slots of each named budget within this process."""

    def __init__(self) -> None:
        self._semaphores: dict[str, anyio.Semaphore] = {}

    def _semaphore(self, name: str, limit: int) -> anyio.Semaphore:
        sem = self._semaphores.get(name)
        if sem is None:
            sem = self._semaphores[name] = anyio.Semaphore(limit)
        return sem

    @asynccontextmanager
    async def slot(self, name: str, limit: int) -> AsyncIterator[None]:
        async with self._semaphore(name, limit):
            yield

    async def aclose(self) -> None:
        return None


def advisory_key(name: str) -> int:
    """A stable signed 32-bit key for ``name`` (the first half of a two-int advisory lock)."""
    return int.from_bytes(hashlib.sha256(f"finout-mcp:{name}".encode()).digest()[:4], "big", signed=True)


class PostgresLimiter:
    """Slots shared by every process connected to one PostgreSQL database (advisory locks)."""

    POLL_MIN_S = 0.005
    POLL_MAX_S = 0.05

    def __init__(self, url: str) -> None:
        self._url = url
        self._local = MemoryLimiter()
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._in_use: set[psycopg.AsyncConnection[Any]] = set()
        self._closed = False
        self._random = random.Random()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._idle:
            return self._idle.pop()
        import psycopg

        return await psycopg.AsyncConnection.connect(self._url, autocommit=True)

    @asynccontextmanager
    async def slot(self, name: str, limit: int) -> AsyncIterator[None]:
        async with self._local.slot(name, limit):
            key = advisory_key(name)
            conn = await self._connection()
            self._in_use.add(conn)
            held: int | None = None
            try:
                delay = self.POLL_MIN_S
                while held is None:
                    for index in self._random.sample(range(limit), limit):
                        cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (key, index))
                        row = await cur.fetchone()
                        if row and row[0]:
                            held = index
                            break
                    if held is None:
                        await anyio.sleep(self._random.uniform(self.POLL_MIN_S, delay))
                        delay = min(self.POLL_MAX_S, delay * 2)
                yield
            finally:
                await self._release(conn, key, held)

    async def _release(self, conn: psycopg.AsyncConnection[Any], key: int, held: int | None) -> None:
        self._in_use.discard(conn)
        with anyio.CancelScope(shield=True):
            try:
                if held is not None:
                    await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (key, held))
            except Exception as exc:  # a broken connection released its locks with it
                log.warning("releasing a request slot failed (%s); dropping the connection", type(exc).__name__)
                await conn.close()
                return
            if self._closed or conn.closed:
                await conn.close()
            else:
                self._idle.append(conn)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = [*self._idle, *self._in_use], []
        for conn in idle:
            await conn.close()


def build_limiter(database_url: str | None) -> Limiter:
    """The limiter for ``FINOUT_MCP_DATABASE_URL``: shared through Postgres, else this process only."""
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        return PostgresLimiter(database_url)
    return MemoryLimiter()


__all__ = ["Limiter", "MemoryLimiter", "PostgresLimiter", "advisory_key", "build_limiter"]
