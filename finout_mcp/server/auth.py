"""OAuth 2.1 resource server: who may call, with which scopes, and who a write is recorded for.

finout-mcp validates access tokens; it issues none. Configure your identity provider as the
authorization server (``FINOUT_MCP_OAUTH_ISSUER``); the HTTP app publishes the RFC 9728
protected-resource metadata naming it, and answers 401 with ``WWW-Authenticate`` pointing there
(the SDK's ``RequireAuthMiddleware``), so MCP clients can sign the user in by themselves.

An access token is accepted when it is a JWT signed by a key of the issuer's JWKS (found through
the issuer's RFC 8414 / OpenID metadata, cached, and fetched again when a token names an unknown
``kid`` — at most every :data:`JWKS_MIN_REFRESH_S` seconds), with ``iss`` the issuer, ``aud``
this server (``FINOUT_MCP_OAUTH_AUDIENCE``, default ``FINOUT_MCP_PUBLIC_URL``: RFC 8707), and
``exp``/``nbf`` in force. Scopes come from ``scope`` (space-separated) or ``scp``:
``finout:read`` lists and calls the read tools, ``finout:write`` the writes too. The static
token (``FINOUT_MCP_AUTH_TOKEN``), when also set, keeps working with both scopes.

JOSE library: PyJWT (``pyjwt[crypto]``). The MCP SDK already depends on it, so OAuth adds no
package to the install; it is maintained, verifies RS/PS/ES/EdDSA signatures through
``cryptography``, and checks ``exp``/``nbf``/``iss``/``aud`` itself. It is imported only when
OAuth is configured.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from mcp.server.auth.provider import AccessToken

if TYPE_CHECKING:
    import httpx

    from finout_mcp.config import Settings

log = logging.getLogger("finout_mcp.server.auth")

READ_SCOPE = "finout:read"
WRITE_SCOPE = "finout:write"
ALL_SCOPES = (READ_SCOPE, WRITE_SCOPE)
STATIC_TOKEN_CLIENT = "static-token"
JWKS_MIN_REFRESH_S = 3.0
JWKS_MAX_AGE_S = 3600.0
CLOCK_SKEW_S = 30
_ALGORITHMS_BY_KTY = {"RSA": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"], "OKP": ["EdDSA"]}
_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}


@dataclass(frozen=True)
class Principal:
    """Who a request comes from (the OAuth subject), as recorded with every write."""

    subject: str
    issuer: str | None = None
    email: str | None = None
    name: str | None = None

    def describe(self) -> str:
        """``Ada Lovelace <ada@example.com> (sub 1234)``: readable, and unique through the subject."""
        label = " ".join(p for p in (self.name, f"<{self.email}>" if self.email else None) if p)
        return f"{label} (sub {self.subject})" if label else f"sub {self.subject}"


def principal_of(token: AccessToken | None) -> Principal | None:
    if token is None:
        return None
    claims = token.claims or {}
    if token.client_id == STATIC_TOKEN_CLIENT:
        return Principal(subject="static-token", name="holder of FINOUT_MCP_AUTH_TOKEN")
    return Principal(
        subject=token.subject or token.client_id,
        issuer=_str(claims.get("iss")),
        email=_str(claims.get("email")),
        name=_str(claims.get("name")),
    )


def can_write(token: AccessToken | None) -> bool:
    """No token (stdio, open loopback HTTP): yes. A token: only with ``finout:write``."""
    return token is None or WRITE_SCOPE in token.scopes


def _str(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def scopes_of(claims: dict[str, Any]) -> list[str]:
    """``scope`` (RFC 8693/9068, space-separated) or ``scp`` (a list or a string); write implies read."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        scopes = raw.split()
    elif isinstance(raw, list):
        scopes = [s for s in raw if isinstance(s, str)]
    else:
        scopes = []
    if WRITE_SCOPE in scopes and READ_SCOPE not in scopes:
        scopes.append(READ_SCOPE)
    return scopes


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer publishes its metadata: RFC 8414 (well-known before the path), then OpenID."""
    parts = urlsplit(issuer)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    return [
        f"{base}/.well-known/oauth-authorization-server{path}",
        f"{base}{path}/.well-known/openid-configuration",
        f"{base}/.well-known/openid-configuration{path}",
    ]


class OAuthVerifier:
    """The SDK ``TokenVerifier`` for JWT access tokens of one issuer (and the static token)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        static_token: str | None = None,
        http: httpx.AsyncClient | None = None,
        min_refresh_s: float = JWKS_MIN_REFRESH_S,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._static = static_token.encode() if static_token else None
        self._http = http
        self._own_http = http is None
        self._min_refresh_s = min_refresh_s
        self._jwks_uri: str | None = None
        self._keys: dict[str, Any] = {}  # kid -> PyJWK
        self._fetched_at = -1e9
        self._lock = anyio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, resource: str, static_token: str | None) -> OAuthVerifier:
        assert settings.oauth_issuer is not None
        return cls(settings.oauth_issuer, settings.oauth_audience or resource, static_token=static_token)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def verify_token(self, token: str) -> AccessToken | None:
        if self._static is not None and hmac.compare_digest(token.encode(), self._static):
            return AccessToken(token=token, client_id=STATIC_TOKEN_CLIENT, scopes=list(ALL_SCOPES))
        try:
            return await self._verify_jwt(token)
        except Exception as exc:  # any refusal is a 401; say why in the log, never the token
            log.info("access token refused: %s", _reason(exc))
            return None

    async def _verify_jwt(self, token: str) -> AccessToken | None:
        import jwt

        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None)
        if key is None:
            log.info("access token refused: its key (kid) is not in the issuer's JWKS")
            return None
        algorithms = _algorithms(key)
        if header.get("alg") not in algorithms:
            log.info("access token refused: algorithm %r does not fit the key", header.get("alg"))
            return None
        claims = jwt.decode(
            token,
            key.key,
            algorithms=algorithms,
            audience=self.audience,
            issuer=self.issuer,
            leeway=CLOCK_SKEW_S,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or claims["sub"]),
            scopes=scopes_of(claims),
            expires_at=int(claims["exp"]),
            resource=self.audience,
            subject=str(claims["sub"]),
            claims={k: claims[k] for k in ("iss", "email", "name", "preferred_username") if k in claims},
        )

    async def _key(self, kid: str | None) -> Any:
        """The JWKS key for ``kid`` (the only key when the token names none); refreshes the set when
        it is stale or the kid is unknown, no more often than ``min_refresh_s``."""
        stale = time.monotonic() - self._fetched_at > JWKS_MAX_AGE_S
        if stale or (kid is not None and kid not in self._keys):
            async with self._lock:
                due = time.monotonic() - self._fetched_at >= self._min_refresh_s
                if (stale or kid not in self._keys) and due:
                    await self._refresh()
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        import jwt

        self._fetched_at = time.monotonic()
        http = self._client()
        if self._jwks_uri is None:
            self._jwks_uri = await self._discover(http)
        response = await http.get(self._jwks_uri)
        response.raise_for_status()
        keys: dict[str, Any] = {}
        for jwk in response.json().get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            try:
                parsed = jwt.PyJWK(jwk)
            except jwt.PyJWTError:
                continue
            keys[str(jwk.get("kid", len(keys)))] = parsed
        self._keys = keys
        log.info("fetched %d signing keys of the OAuth issuer", len(keys))

    async def _discover(self, http: httpx.AsyncClient) -> str:
        for url in metadata_urls(self.issuer):
            response = await http.get(url)
            if response.status_code != 200:
                continue
            meta = response.json()
            if meta.get("issuer") != self.issuer:
                raise ValueError("the issuer's metadata names another issuer")
            jwks_uri = meta.get("jwks_uri")
            if isinstance(jwks_uri, str) and jwks_uri.startswith(("https://", "http://")):
                return jwks_uri
        raise ValueError("the issuer publishes no metadata with a jwks_uri")


def _algorithms(key: Any) -> list[str]:
    alg = getattr(key, "algorithm_name", None)
    jwk = getattr(key, "_jwk_data", {}) or {}
    if isinstance(jwk.get("alg"), str):
        return [jwk["alg"]]
    kty = jwk.get("kty")
    if kty == "EC":
        return [_EC_ALGORITHMS.get(str(jwk.get("crv")), "ES256")]
    return _ALGORITHMS_BY_KTY.get(str(kty), [alg] if isinstance(alg, str) else [])


def _reason(exc: Exception) -> str:
    """A short, token-free reason for the log."""
    name = type(exc).__name__
    return {
        "ExpiredSignatureError": "expired",
        "ImmatureSignatureError": "not valid yet (nbf)",
        "InvalidAudienceError": "issued for another audience",
        "InvalidIssuerError": "issued by another issuer",
        "InvalidSignatureError": "bad signature",
        "DecodeError": "not a JWT",
        "MissingRequiredClaimError": "a required claim is missing",
    }.get(name, name)


# ----------------------------------------------------------------------------- per request

_PRINCIPAL: ContextVar[Principal | None] = ContextVar("finout_mcp_principal", default=None)


def current_principal() -> Principal | None:
    """The signed-in caller of the tool call being served (None over stdio or without OAuth)."""
    return _PRINCIPAL.get()


def request_token(ctx: Any) -> AccessToken | None:
    """The access token a request was authenticated with (HTTP transports), else None."""
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict) or "user" not in scope:
        return None
    user = scope.get("user")
    token = getattr(user, "access_token", None)
    return token if isinstance(token, AccessToken) else None


class ScopeGate:
    """SDK server middleware: a caller without ``finout:write`` neither lists nor calls the write
    tools, and every request runs knowing its :class:`Principal` (for the change log)."""

    def __init__(self, write_tools: Callable[[], frozenset[str]]) -> None:
        self._write_tools = write_tools

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        token = request_token(ctx)
        read_only = not can_write(token)
        if read_only and ctx.method == "tools/call":
            params = ctx.params if isinstance(ctx.params, dict) else {}
            name = params.get("name")
            if isinstance(name, str) and name in self._write_tools():
                from mcp.types import CallToolResult, TextContent

                return CallToolResult(
                    content=[
                        TextContent(
                            type="text",
                            text=f"{name} changes the Finout account and needs the {WRITE_SCOPE} scope; this "
                            f"sign-in granted {READ_SCOPE} only. Use the read tools, or ask your administrator "
                            f"for {WRITE_SCOPE} and sign in again.",
                        )
                    ],
                    is_error=True,
                )
        reset = _PRINCIPAL.set(principal_of(token))
        try:
            result = await call_next(ctx)
        finally:
            _PRINCIPAL.reset(reset)
        if read_only and ctx.method == "tools/list":
            hidden = self._write_tools()
            if isinstance(result, dict) and isinstance(result.get("tools"), list):
                result = {**result, "tools": [t for t in result["tools"] if t.get("name") not in hidden]}
            elif hasattr(result, "tools"):
                result = result.model_copy(update={"tools": [t for t in result.tools if t.name not in hidden]})
        return result


__all__ = [
    "ALL_SCOPES",
    "READ_SCOPE",
    "WRITE_SCOPE",
    "OAuthVerifier",
    "Principal",
    "ScopeGate",
    "can_write",
    "current_principal",
    "principal_of",
    "request_token",
    "scopes_of",
]
