"""The HTTP transports (SSE, streamable HTTP) with bearer-token auth and DNS-rebinding protection."""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any, Literal

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerTokenMiddleware:
    """Every HTTP request must carry ``Authorization: Bearer <token>`` (constant-time compare)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
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
        hosts.add(host if ":" not in host else f"[{host}]")
    allowed_hosts = sorted({f"{h}:{port}" for h in hosts} | hosts)
    allowed_origins = sorted({f"http://{h}:{port}" for h in hosts} | {f"https://{h}:{port}" for h in hosts})
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )


def build_http_app(
    server: MCPServer[Any],
    transport: Literal["sse", "streamable-http"],
    *,
    host: str,
    port: int,
    token: str | None,
    stateless: bool = False,
    extra_hosts: list[str] | None = None,
) -> ASGIApp:
    security = security_settings(host, port)
    for h in extra_hosts or []:
        security.allowed_hosts.append(h)
        security.allowed_origins.extend([f"http://{h}", f"https://{h}"])
    app: ASGIApp
    if transport == "sse":
        app = server.sse_app(transport_security=security, host=host)
    else:
        app = server.streamable_http_app(
            transport_security=security, host=host, stateless_http=stateless, json_response=stateless
        )
    return BearerTokenMiddleware(app, token) if token else app


async def serve_http(app: ASGIApp, host: str, port: int, log_level: str) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        log_level=log_level.lower(),
        lifespan="on",
    )
    await uvicorn.Server(config).serve()
