"""A tiny OAuth authorization server for the tests: RFC 8414 metadata and a JWKS on loopback.

It issues no tokens over HTTP; the test signs them itself with :meth:`LocalIssuer.token`
(RS256, a ``kid`` in the header) and rotates keys with :meth:`LocalIssuer.rotate`. It runs
uvicorn in a thread of the test process, so a ``finout-mcp`` subprocess fetches from it as it
would from a real identity provider. It counts the JWKS fetches.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import free_port


class LocalIssuer:
    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._keys: dict[str, Any] = {}  # kid -> private key
        self.published: list[str] = []  # kids in the JWKS
        self.jwks_fetches = 0
        self.add_key("key-1", publish=True)
        app = Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", self._metadata),
                Route("/jwks", self._jwks),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def add_key(self, kid: str, *, publish: bool) -> None:
        self._keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def rotate(self, kid: str) -> None:
        """Publish ``kid`` (already made with add_key) and retire every other key."""
        self.published = [kid]

    def token(self, *, kid: str = "key-1", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "sub": "user-1", "iat": now, "exp": now + 600, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self._keys[kid], algorithm="RS256", headers={"kid": kid})

    async def _metadata(self, _request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _jwks(self, _request: Request) -> JSONResponse:
        self.jwks_fetches += 1
        keys = []
        for kid in self.published:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return JSONResponse({"keys": keys})

    def __enter__(self) -> LocalIssuer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the local issuer did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
