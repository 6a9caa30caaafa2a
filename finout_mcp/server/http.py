"""The HTTP transports (SSE, streamable HTTP), hardened for a server a whole team shares.

What a client — or an attacker — can hold, and for how long:

- **Connections** (:class:`ConnectionGuard`, :func:`hardened_protocol`): a request head must
  arrive within ``FINOUT_MCP_HEADER_TIMEOUT`` (slowloris) and its body within
  ``FINOUT_MCP_BODY_TIMEOUT``, or the connection is closed; at most
  ``FINOUT_MCP_MAX_CONNECTIONS`` are open at once. At the cap a new connection first evicts the
  oldest one that has not sent a complete request yet (an idle or half-sent one), so a flood of
  slow connections cannot lock out a client that speaks promptly; only when every connection is
  busy with a request is the newcomer refused (503). Headers are capped by h11 (16 KiB) and
  bodies by ``FINOUT_MCP_MAX_BODY_BYTES`` (413).
- **Sessions** (:class:`SessionLimits`): at most ``FINOUT_MCP_MAX_SESSIONS`` in total and
  ``FINOUT_MCP_MAX_SESSIONS_PER_CLIENT`` per client (the OAuth subject when signed in, else the
  peer address); a session with no request for ``FINOUT_MCP_SESSION_IDLE_TIMEOUT`` seconds is
  closed (streamable HTTP by the SDK's session manager, SSE by :func:`_idle_watchdog`).
- **State**: every connection and session shares one :class:`~finout_mcp.server.state.AppState`
  (catalogue, request limiter, change log): the app's lifespan holds it for the server's life.
- **Auth**: a static bearer token (``FINOUT_MCP_AUTH_TOKEN``, single user), or OAuth 2.1
  (:mod:`finout_mcp.server.auth`) with RFC 9728 metadata; ``/healthz`` needs neither and never
  calls Finout. Host and Origin headers are checked (DNS rebinding).
- **Logs**: repeated warnings (refused sessions, broken requests, accept() failing for lack of
  file descriptors) are rate limited to one line per kind every few seconds, without tracebacks.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from mcp.server import MCPServer
    from mcp.server.auth.provider import TokenVerifier
    from starlette.applications import Starlette

    from finout_mcp.config import Settings

log = logging.getLogger("finout_mcp.server.http")

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
HEALTH_PATH = "/healthz"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as written in a URL: IPv6 addresses in brackets."""
    host = host.strip("[]")
    return f"[{host}]" if ":" in host else host


# ----------------------------------------------------------------------------- rate-limited logs


class RepeatFilter(logging.Filter):
    """Lets one record per (logger, message template) through every ``interval_s`` seconds; the
    next one says how many were held back. Tracebacks of repeated records are dropped."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}
        self._held: Counter[tuple[str, str]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.interval_s:
            self._held[key] += 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self.interval_s:g} s)"
        if record.levelno < logging.ERROR or held:
            record.exc_info = None
            record.exc_text = None
        return True


_NOISY_LOGGERS = ("uvicorn.error", "asyncio", "mcp.server.streamable_http_manager", "mcp.server.sse", log.name)


def _quiet_accept_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio logs a full traceback each time accept() fails for lack of file descriptors;
    say it once in a while, in one line, and let the repeat filter do the rest."""
    if "accept" in str(context.get("message", "")):
        exc = context.get("exception")
        logging.getLogger("asyncio").warning(
            "cannot accept connections: %s (too many open files? lower FINOUT_MCP_MAX_CONNECTIONS or raise "
            "the open-file limit)",
            type(exc).__name__ if exc else "out of resources",
        )
        return
    loop.default_exception_handler(context)


# ----------------------------------------------------------------------------- connections


class ConnectionGuard:
    """Counts the connections of one server and closes those that hold it without speaking."""

    def __init__(self, max_connections: int, header_timeout_s: float, body_timeout_s: float) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.open: set[Any] = set()
        # Eviction candidates, oldest first: connections still sending (or not even starting) a
        # request head — a slowloris looks like this — then idle keep-alive connections.
        self.waiting: OrderedDict[Any, None] = OrderedDict()
        self.idle: OrderedDict[Any, None] = OrderedDict()
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def admit(self, conn: Any) -> bool:
        """Register ``conn``; at the cap evict the oldest waiting (else idle) connection, or refuse ``conn``."""
        self.open.add(conn)
        self.waiting[conn] = None
        if len(self.open) <= self.max_connections:
            return True
        for pool in (self.waiting, self.idle):
            for victim in pool:
                if victim is not conn:
                    self.evicted += 1
                    log.warning(
                        "connection limit (%d) reached: closing the oldest connection without a request",
                        self.max_connections,
                    )
                    victim.drop()
                    return True
        self.refused += 1
        log.warning(
            "connection limit (%d) reached and every connection is busy: refusing one", self.max_connections
        )
        return False

    def busy(self, conn: Any) -> None:
        self.waiting.pop(conn, None)
        self.idle.pop(conn, None)

    def resting(self, conn: Any) -> None:
        self.waiting.pop(conn, None)
        self.idle[conn] = None

    def forget(self, conn: Any) -> None:
        self.open.discard(conn)
        self.busy(conn)


def hardened_protocol(guard: ConnectionGuard) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with head and body deadlines and the guard's connection cap."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HardenedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase: str = ""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if not guard.admit(self):
                transport.write(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\n"
                    b"connection: close\r\n\r\n"
                )
                transport.close()
                return
            self._arm("head", guard.header_timeout_s)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                guard.resting(self)  # idle between requests (uvicorn's keep-alive timer runs)
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            guard.forget(self)
            super().connection_lost(exc)

        def drop(self) -> None:
            self._disarm()
            guard.busy(self)
            self.transport.close()

        def _follow(self) -> None:
            state = self.conn.their_state
            if state is h11.IDLE:
                if self._phase != "head" and self.conn.trailing_data[0]:  # a new request has begun
                    guard.busy(self)
                    guard.waiting[self] = None
                    self._arm("head", guard.header_timeout_s)
            elif state is h11.SEND_BODY:
                guard.busy(self)
                if self._phase != "body":
                    self._arm("body", guard.body_timeout_s)
            else:  # the whole request is in: the app answers at its own pace (SSE streams)
                guard.busy(self)
                self._disarm()

        def _arm(self, phase: str, seconds: float) -> None:
            self._disarm()
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            self._phase = ""

        def _expire(self) -> None:
            phase = self._phase
            self._deadline = None
            if not self.transport.is_closing():
                guard.timed_out += 1
                log.info("closing a connection that sent no complete request %s in time", phase)
                guard.busy(self)
                self.transport.close()

    return HardenedH11Protocol


# ----------------------------------------------------------------------------- sessions

_CLIENT: ContextVar[str] = ContextVar("finout_mcp_http_client", default="?")


def client_key(scope: Scope) -> str:
    """Who opens a session: the signed-in principal if any, else the peer address."""
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

    user = scope.get("user")
    if isinstance(user, AuthenticatedUser):
        token = user.access_token
        return f"principal:{token.subject or token.client_id}"
    client = scope.get("client")
    return f"peer:{client[0] if client else '?'}"


class SessionLimits:
    """At most ``total`` open sessions, and ``per_client`` for any one client."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self.by_client: Counter[str] = Counter()
        self.refused = 0

    @property
    def open(self) -> int:
        return sum(self.by_client.values())

    def try_open(self, client: str) -> bool:
        if self.open >= self.total:
            self.refused += 1
            log.warning("session limit (%d in total) reached: refusing a new session", self.total)
            return False
        if self.by_client[client] >= self.per_client:
            self.refused += 1
            log.warning("a client reached its session limit (%d): refusing a new session", self.per_client)
            return False
        self.by_client[client] += 1
        return True

    def close(self, client: str) -> None:
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]


def _session_manager_class() -> type[Any]:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    class BoundedSessionManager(StreamableHTTPSessionManager):
        """The SDK's session manager, with the sessions of each client counted and capped."""

        def __init__(self, *args: Any, limits: SessionLimits, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.limits = limits
            self._clients: dict[str, str] = {}

        async def _handle_stateful_request(self, scope: Scope, receive: Receive, send: Send) -> None:
            token = _CLIENT.set(client_key(scope))
            try:
                await super()._handle_stateful_request(scope, receive, send)
            finally:
                _CLIENT.reset(token)

        def _admit_session(self, requestor: Any) -> Any:
            client = _CLIENT.get()
            if not self.limits.try_open(client):
                return None
            transport = super()._admit_session(requestor)
            if transport is None:
                self.limits.close(client)
                return None
            self._clients[str(transport.mcp_session_id)] = client
            return transport

        async def _discard_session(self, session_id: str, transport: Any) -> None:
            client = self._clients.pop(session_id, None)
            if client is not None:
                self.limits.close(client)
            await super()._discard_session(session_id, transport)

    return BoundedSessionManager


async def _idle_watchdog(read: Any, idle_s: float, serve: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``serve`` on a copy of ``read`` and stop it once the client has sent nothing for ``idle_s``."""
    import anyio

    relay_send, relay_receive = anyio.create_memory_object_stream[Any](16)
    last = time.monotonic()

    async def pump() -> None:
        nonlocal last
        async with relay_send:
            async for message in read:
                last = time.monotonic()
                await relay_send.send(message)

    async with anyio.create_task_group() as tg:

        async def run() -> None:
            async with relay_receive:
                await serve(relay_receive)
            tg.cancel_scope.cancel()

        tg.start_soon(pump)
        tg.start_soon(run)
        while True:
            await anyio.sleep(max(0.05, last + idle_s - time.monotonic()))
            if time.monotonic() - last >= idle_s:
                log.info("closing an SSE session idle for %g s", idle_s)
                tg.cancel_scope.cancel()
                return


# ----------------------------------------------------------------------------- auth


class BearerTokenMiddleware:
    """Every HTTP request must carry ``Authorization: Bearer <token>`` (constant-time compare);
    the health check excepted."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        supplied = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    supplied = rest.strip()
                break
        if not hmac.compare_digest(supplied, self._token):
            body = json.dumps(
                {
                    "error": "unauthorized",
                    "message": "Send the header Authorization: Bearer <FINOUT_MCP_AUTH_TOKEN>.",
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="finout-mcp"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def security_settings(host: str, port: int) -> TransportSecuritySettings:
    """DNS-rebinding protection: only our own Host and Origin are accepted."""
    hosts = {"127.0.0.1", "localhost", "[::1]"}
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        hosts.add(url_host(host))
    allowed_hosts = sorted({f"{h}:{port}" for h in hosts} | hosts)
    allowed_origins = sorted({f"http://{h}:{port}" for h in hosts} | {f"https://{h}:{port}" for h in hosts})
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )


# ----------------------------------------------------------------------------- the app


def _exact_url(url: str) -> Any:
    """``url`` as a pydantic URL without a slash added to an empty path: issuer and resource
    identifiers are compared as exact strings (RFC 8414, RFC 9728)."""
    from pydantic import AnyHttpUrl, BaseModel, ConfigDict

    class _Exact(BaseModel):
        model_config = ConfigDict(url_preserve_empty_path=True)
        url: AnyHttpUrl

    return _Exact(url=url).url


class HTTPApp:
    """The ASGI app of one HTTP server, with the guards that serve_http hands to uvicorn."""

    def __init__(self, app: ASGIApp, guard: ConnectionGuard, sessions: SessionLimits) -> None:
        self.app = app
        self.guard = guard
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def build_http_app(
    server: MCPServer[Any],
    transport: Literal["sse", "streamable-http"],
    *,
    host: str,
    port: int,
    token: str | None,
    settings: Settings,
    stateless: bool = False,
    extra_hosts: list[str] | None = None,
    verifier: TokenVerifier | None = None,
) -> HTTPApp:
    """The ASGI app serving ``server`` over ``transport``, with every limit of ``settings``.

    With ``settings.oauth_issuer`` (or an explicit ``verifier``) requests need an OAuth access
    token (or the static token); otherwise, with ``token``, the static bearer token.
    """
    from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
    from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
    from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Mount, Route

    from finout_mcp import __version__

    security = security_settings(host, port)
    for h in extra_hosts or []:
        security.allowed_hosts.append(h)
        security.allowed_origins.extend([f"http://{h}", f"https://{h}"])
    guard = ConnectionGuard(settings.max_connections, settings.header_timeout_s, settings.body_timeout_s)
    sessions = SessionLimits(settings.max_sessions, settings.max_sessions_per_client)
    lowlevel = server._lowlevel_server
    path = "/sse" if transport == "sse" else "/mcp"
    resource = settings.resource_url(f"http://{url_host(host)}:{port}{path}")

    if verifier is None and settings.oauth_enabled:
        from finout_mcp.server.auth import OAuthVerifier

        verifier = OAuthVerifier.from_settings(settings, resource=resource, static_token=token)

    protect: Callable[[ASGIApp], ASGIApp] = lambda app: app  # noqa: E731
    middleware: list[Middleware] = []
    routes: list[Route | Mount] = []
    if verifier is not None:
        from finout_mcp.server.auth import ALL_SCOPES, READ_SCOPE

        metadata_url = build_resource_metadata_url(_exact_url(resource))
        middleware = [
            Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(verifier)),
            Middleware(AuthContextMiddleware),
        ]

        def protect(app: ASGIApp) -> ASGIApp:
            return RequireAuthMiddleware(app, [READ_SCOPE], metadata_url)

        issuer = settings.oauth_issuer or getattr(verifier, "issuer", None)
        routes.extend(
            create_protected_resource_routes(
                resource_url=_exact_url(resource),
                authorization_servers=[_exact_url(issuer)] if issuer else [],
                scopes_supported=list(ALL_SCOPES),
                resource_name="finout-mcp",
            )
        )

    async def health(_request: Request) -> Response:
        # Never calls Finout or the database: a load balancer probes this every few seconds.
        return JSONResponse({"status": "ok", "version": __version__, "transport": transport})

    routes.append(Route(HEALTH_PATH, health, methods=["GET"]))

    session_manager: Any = None
    if transport == "sse":
        from mcp.server.sse import SseServerTransport

        sse = SseServerTransport(
            "/messages/", security_settings=security, max_request_body_size=settings.max_body_bytes
        )

        async def handle_sse(scope: Scope, receive: Receive, send: Send) -> None:
            client = client_key(scope)
            if not sessions.try_open(client):
                await JSONResponse({"error": "too many open sessions"}, status_code=503)(scope, receive, send)
                return
            try:
                async with sse.connect_sse(scope, receive, send) as (read, write):

                    async def serve(stream: Any) -> None:
                        await lowlevel.run(stream, write, lowlevel.create_initialization_options())

                    await _idle_watchdog(read, settings.session_idle_timeout_s, serve)
            finally:
                sessions.close(client)

        class SSEEndpoint:
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                await handle_sse(scope, receive, send)

        routes.append(Route("/sse", protect(SSEEndpoint()), methods=["GET"]))
        routes.append(Mount("/messages/", app=protect(sse.handle_post_message)))
    else:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp

        session_manager = _session_manager_class()(
            app=lowlevel,
            json_response=stateless,
            stateless=stateless,
            security_settings=security,
            max_request_body_size=settings.max_body_bytes,
            session_idle_timeout=settings.session_idle_timeout_s,
            max_sessions=settings.max_sessions,
            limits=sessions,
        )
        routes.append(Route("/mcp", endpoint=protect(StreamableHTTPASGIApp(session_manager))))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # One server state for every connection and session, built once, kept for the server's life.
        async with lowlevel.lifespan(lowlevel):
            if session_manager is not None:
                async with session_manager.run():
                    yield
            else:
                yield
        if verifier is not None and hasattr(verifier, "aclose"):
            await verifier.aclose()

    app: ASGIApp = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    if token and verifier is None:
        app = BearerTokenMiddleware(app, token)
    return HTTPApp(app, guard, sessions)


async def serve_http(app: HTTPApp, host: str, port: int, log_level: str) -> None:
    import uvicorn

    repeat = RepeatFilter()
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).addFilter(repeat)
    asyncio.get_running_loop().set_exception_handler(_quiet_accept_errors)
    config = uvicorn.Config(
        app,
        host=host.strip("[]"),
        port=port,
        http=hardened_protocol(app.guard),
        log_config=None,
        access_log=False,
        log_level=log_level.lower(),
        lifespan="on",
        timeout_keep_alive=5,
        # The guard evicts idle connections at the cap; uvicorn's own 503 cap is a backstop above it.
        limit_concurrency=app.guard.max_connections + 64,
        backlog=min(2048, app.guard.max_connections * 2),
    )
    await uvicorn.Server(config).serve()
