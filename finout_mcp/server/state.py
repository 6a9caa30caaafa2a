"""What every tool needs at run time: per account, the API clients and the cached catalogue;
shared by all accounts, the change log and the request limiter.

One :class:`AppState` per server run, made by the lifespan (``build_lifespan``) and handed to
tools through ``ctx.request_context.lifespan_context``; :func:`get_state` gives a tool the
:class:`AccountState` of the account its call names (:func:`using_account`, set by the server
for each call), so tools never choose an account themselves. The lifespan is shared: however many
times it is entered at once (the SSE transport enters it per connection; the HTTP app holds it
for the server's life), every entry gets the same state — one catalogue per account, one request
limiter, one change log — and the state is closed when the last one leaves. Its parts are built on
first use: the server is spawned on every assistant launch, and ``initialize`` needs none of them,
so start-up does not import httpx, the API models or the services, nor build the demo sandbox.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from finout_mcp.config import Settings, redact_url
from finout_mcp.redact import Scrubber

if TYPE_CHECKING:
    from mcp.server import MCPServer
    from mcp.server.mcpserver import Context

    from finout_mcp.accounts import Account, Accounts
    from finout_mcp.api.budget import RateBudget
    from finout_mcp.api.client import FinoutClient
    from finout_mcp.api.client_v2 import FinoutV2Client
    from finout_mcp.api.limiter import Limiter
    from finout_mcp.sandbox import Sandbox
    from finout_mcp.services.catalog import Catalog
    from finout_mcp.services.changelog import ChangeStore
    from finout_mcp.services.cost_query import CostQueries
    from finout_mcp.services.writes import Writer

log = logging.getLogger("finout_mcp.server")


def utc_today() -> date:
    return datetime.now(UTC).date()


def os_user(_ctx: Any = None) -> str:
    """The actor recorded for writes when no authenticated subject is known: the OS user."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container with an unnamed uid)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def signed_in_or_os_user(ctx: Any = None) -> str:
    """The actor of a write: the OAuth subject who signed in (HTTP with FINOUT_MCP_OAUTH_ISSUER:
    ``Ada <ada@example.com> (sub 1234)``), else the OS user running the server."""
    from finout_mcp.server.auth import principal_of, request_token

    principal = principal_of(request_token(getattr(ctx, "request_context", None)))
    return principal.describe() if principal is not None else os_user()


Actor = Callable[[Any], str]
"""Who is writing, from the request context (an HTTP transport with auth injects its subject)."""


class AccountState:
    """The services of one Finout account: its own HTTP clients, API v2 rate budget, catalogue
    cache (and so its own tag dependency graph) and its view of the change log. Request slots come
    from the run's limiter under the account's key, so each account has its own 5-in-flight cap.

    This is what tools get from :func:`get_state`: the account the call names (or the default)."""

    def __init__(self, run: AppState, account: Account, *, sandbox: Sandbox | None = None) -> None:
        self.run = run
        self.account = account
        self.name = account.name
        self.settings = account.settings
        self._sandbox = sandbox
        self._client: FinoutClient | None = None
        self._client_v2: FinoutV2Client | None = None
        self._budget: RateBudget | None = None
        self._cost_queries: CostQueries | None = None
        self._catalog: Catalog | None = None
        self._changelog: ChangeStore | None = None

    @property
    def today(self) -> Callable[[], date]:
        return self.run.today

    @property
    def secrets(self) -> list[str]:
        return self.run.secrets

    @property
    def scrubber(self) -> Scrubber:
        return self.run.scrubber

    @property
    def sandbox(self) -> Sandbox | None:
        """The in-process sandbox account of demo mode (None otherwise)."""
        if self._sandbox is None and self.settings.demo:
            from finout_mcp.sandbox import Sandbox

            self._sandbox = Sandbox(seed=7)
        return self._sandbox

    @property
    def client(self) -> FinoutClient:
        if self._client is None:
            from finout_mcp.api.client import FinoutClient

            self._client = FinoutClient(self.settings, transport=self._transport(), limiter=self.run.limiter)
        return self._client

    def _transport(self) -> Any:
        if self.settings.demo and self.sandbox is not None:
            import httpx

            return httpx.ASGITransport(app=self.sandbox.app)
        return None

    @property
    def budget(self) -> RateBudget:
        """The Finout API v2 rate budget of this account (Finout counts v2 limits per account)."""
        if self._budget is None:
            from finout_mcp.api.budget import LocalRateBudget

            # Today's query count lives in the state database when one is configured (or for a real
            # account), so a restart does not start it again at 0; the demo without one counts in memory.
            persist = self.settings.state_dir is not None or not self.settings.demo
            self._budget = LocalRateBudget(daily=self.changelog if persist else None)
        return self._budget

    @property
    def client_v2(self) -> FinoutV2Client:
        if self._client_v2 is None:
            from finout_mcp.api.client_v2 import FinoutV2Client
            from finout_mcp.config import ConfigError
            from finout_mcp.services.errors import InputError

            try:
                self._client_v2 = FinoutV2Client(
                    self.settings, transport=self._transport(), budget=self.budget, limiter=self.run.limiter
                )
            except ConfigError as exc:  # no v2 URL can be derived: say which variable to set
                raise InputError(str(exc)) from None
        return self._client_v2

    @property
    def cost_queries(self) -> CostQueries:
        """Ad-hoc cost questions on API v2 (the v2 keys, stored query ids)."""
        if self._cost_queries is None:
            from finout_mcp.services.cost_query import CostQueries

            self._cost_queries = CostQueries(self.client_v2, self.catalog, ttl_s=self.settings.cache_ttl_s)
        return self._cost_queries

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from finout_mcp.services.catalog import Catalog

            self._catalog = Catalog(self.client, ttl_s=self.settings.cache_ttl_s)
        return self._catalog

    @property
    def changelog(self) -> ChangeStore:
        """The change log as this account sees it: its writes record the account, and it lists and
        undoes only this account's changes."""
        if self._changelog is None:
            self._changelog = self.run.changelog.for_account(self.name)
        return self._changelog

    def writer(self, ctx: Context[Any, Any]) -> Writer:
        """The writer for one tool call, recording the caller as the actor."""
        from finout_mcp.services.errors import InputError
        from finout_mcp.services.writes import Writer

        if self.account.read_only:
            raise InputError(
                f"The Finout account {self.name!r} is configured read-only (read_only = true in the accounts "
                "file): nothing was sent.",
                hint="Its read tools work. To change it, ask whoever runs this server to set read_only = false "
                "for it, or make the change in the Finout app; never make it in another customer's account instead.",
            )
        return Writer(self.client, self.catalog, self.changelog, actor=self.run.actor(ctx))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._client_v2 is not None:
            await self._client_v2.aclose()


class AppState:
    """One server run: the configured accounts, and what they share — the change log, the request
    limiter (slots are named per API key), who writes and what day it is."""

    def __init__(
        self,
        settings: Settings,
        *,
        accounts: Accounts | None = None,
        sandboxes: Mapping[str, Sandbox] | None = None,
        today: Callable[[], date] | None = None,
        actor: Actor | None = None,
    ) -> None:
        from finout_mcp.accounts import single_account

        self.settings = settings
        self.accounts = accounts or single_account(settings)
        self.actor: Actor = actor or signed_in_or_os_user
        self.today: Callable[[], date] = today or utc_today
        self.secrets: list[str] = list(dict.fromkeys([*settings.secrets(), *self.accounts.secrets()]))
        self.scrubber = Scrubber(self.secrets)  # what leaves a tool is scrubbed with it
        self._sandboxes = dict(sandboxes or {})
        self._states: dict[str, AccountState] = {}
        self._changelog: ChangeStore | None = None
        self._limiter: Limiter | None = None

    def account(self, name: str | None = None) -> AccountState:
        """The services of account ``name`` (None: the default). Raises UnknownAccount."""
        account = self.accounts.pick(name)
        state = self._states.get(account.name)
        if state is None:
            state = AccountState(self, account, sandbox=self._sandboxes.get(account.name))
            self._states[account.name] = state
        return state

    @property
    def limiter(self) -> Limiter:
        """Slots of Finout's per-key request budget: this process's, or every replica's (Postgres)."""
        if self._limiter is None:
            from finout_mcp.api.limiter import build_limiter

            self._limiter = build_limiter(self.settings.database_location())
        return self._limiter

    @property
    def changelog(self) -> ChangeStore:
        """The change log and the per-tag write locks: SQLite in the state dir, or the PostgreSQL
        database every replica shares (FINOUT_MCP_DATABASE_URL). Every account's changes, each
        recorded with its account."""
        if self._changelog is None:
            from finout_mcp.services.changelog import open_change_store

            self._changelog = open_change_store(
                self.settings.resolved_state_dir(),
                self.settings.database_url.get_secret_value() if self.settings.database_url else None,
            )
        return self._changelog

    async def aclose(self) -> None:
        for state in self._states.values():
            await state.aclose()
        if self._changelog is not None:
            self._changelog.close()
        if self._limiter is not None:
            await self._limiter.aclose()


_ACCOUNT: ContextVar[str | None] = ContextVar("finout_mcp_account", default=None)


@contextmanager
def using_account(name: str | None) -> Iterator[None]:
    """Tools called inside get the services of account ``name`` (None: the default)."""
    token = _ACCOUNT.set(name)
    try:
        yield
    finally:
        _ACCOUNT.reset(token)


@dataclass
class StateRef:
    """The running state: handlers without a Context (completions, static resources) find it here,
    and every entry of the lifespan shares it (``users`` counts them)."""

    current: AppState | None = None
    users: int = 0


def get_run(ctx: Context[Any, Any]) -> AppState:
    """The state of the whole run (every account), for the tools about the accounts themselves."""
    state = ctx.request_context.lifespan_context
    if not isinstance(state, AppState):  # pragma: no cover - wiring error, not user input
        raise RuntimeError("server state is not initialised")
    return state


def current_account() -> str | None:
    """The account the running tool call names, when several are configured (None with one)."""
    return _ACCOUNT.get()


def get_state(ctx: Context[Any, Any]) -> AccountState:
    """The services of the account this tool call is for."""
    return get_run(ctx).account(_ACCOUNT.get())


def build_lifespan(
    settings: Settings,
    *,
    accounts: Accounts | None = None,
    sandboxes: Mapping[str, Sandbox] | None = None,
    today: Callable[[], date] | None = None,
    ref: StateRef | None = None,
    actor: Actor | None = None,
) -> Callable[[MCPServer[Any]], Any]:
    """The MCPServer lifespan: one AppState shared by every entry, closed when the last one leaves.
    ``actor`` names who writes (default: the signed-in subject over HTTP with OAuth, else the OS user)."""
    shared = ref if ref is not None else StateRef()

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[AppState]:
        if shared.current is None:
            shared.current = AppState(settings, accounts=accounts, sandboxes=sandboxes, today=today, actor=actor)
            log.info("finout-mcp ready (%s)", "demo sandbox" if settings.demo else redact_url(settings.api_url))
        state = shared.current
        shared.users += 1
        try:
            yield state
        finally:
            shared.users -= 1
            if shared.users == 0 and shared.current is state:
                shared.current = None
                await state.aclose()

    return lifespan
