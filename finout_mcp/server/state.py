"""What every tool needs at run time: the API client, the cached catalogue, the change log.

Built once per server run by the lifespan (``build_lifespan``) and handed to tools through
``ctx.request_context.lifespan_context``. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import httpx

from finout_mcp.api.client import FinoutClient
from finout_mcp.config import Settings
from finout_mcp.services.catalog import Catalog
from finout_mcp.services.changelog import ChangeLog

if TYPE_CHECKING:
    from mcp.server import MCPServer
    from mcp.server.mcpserver import Context

    from finout_mcp.sandbox import Sandbox

log = logging.getLogger("finout_mcp.server")


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass
class AppState:
    settings: Settings
    client: FinoutClient
    catalog: Catalog
    changelog: ChangeLog
    today: Callable[[], date] = utc_today
    sandbox: Sandbox | None = None
    secrets: list[str] = field(default_factory=list)


@dataclass
class StateRef:
    """Where handlers without a Context (completions) find the running state."""

    current: AppState | None = None


def get_state(ctx: Context[Any, Any]) -> AppState:
    state = ctx.request_context.lifespan_context
    if not isinstance(state, AppState):  # pragma: no cover - wiring error, not user input
        raise RuntimeError("server state is not initialised")
    return state


def build_lifespan(
    settings: Settings,
    *,
    sandbox: Sandbox | None = None,
    today: Callable[[], date] | None = None,
    ref: StateRef | None = None,
) -> Callable[[MCPServer[Any]], Any]:
    """The MCPServer lifespan: opens the Finout client (or the in-process sandbox in demo mode)."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[AppState]:
        sb = sandbox
        transport: httpx.AsyncBaseTransport | None = None
        if settings.demo:
            if sb is None:
                from finout_mcp.sandbox import Sandbox

                sb = Sandbox(seed=7)
            transport = httpx.ASGITransport(app=sb.app)
        async with FinoutClient(settings, transport=transport) as client:
            catalog = Catalog(client, ttl_s=settings.cache_ttl_s)
            secrets = [s.get_secret_value() for s in (settings.secret_key, settings.auth_token) if s is not None]
            state = AppState(
                settings=settings,
                client=client,
                catalog=catalog,
                changelog=ChangeLog(settings.resolved_state_dir()),
                today=today or utc_today,
                sandbox=sb,
                secrets=[s for s in secrets if s],
            )
            log.info("finout-mcp ready (%s)", "demo sandbox" if settings.demo else settings.api_url)
            if ref is not None:
                ref.current = state
            try:
                yield state
            finally:
                if ref is not None:
                    ref.current = None

    return lifespan
