"""OAuth 2.1 sign-in, end to end: a finout-mcp subprocess as the resource server, and a local
issuer (metadata + JWKS on loopback, started by the test) as the authorization server.

Valid, expired, not-yet-valid, wrong-audience, wrong-issuer, unknown-key and rotated-key tokens;
the RFC 9728 metadata and the 401 that points at it; scopes deciding which tools a caller sees.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from finout_mcp.server.auth import JWKS_MIN_REFRESH_S
from tests.conftest import FinoutProcess, serve, start_http
from tests.oauth_issuer import LocalIssuer
from tests.support import READ_TOOLS, WRITE_TOOLS

pytestmark = pytest.mark.slow

STATIC = "static-" + "5" * 32
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalIssuer, FinoutProcess]]:
    tmp = tmp_path_factory.mktemp("oauth")
    with LocalIssuer() as issuer:
        proc = start_http(
            tmp,
            "oauth",
            "--transport",
            "streamable-http",
            "--log-level",
            "INFO",
            FINOUT_MCP_OAUTH_ISSUER=issuer.issuer,
            FINOUT_MCP_AUTH_TOKEN=STATIC,
        )
        with serve(proc):
            yield issuer, proc


def resource(proc: FinoutProcess) -> str:
    return f"{proc.url}/mcp"


def post(proc: FinoutProcess, token: str | None) -> httpx.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(resource(proc), json=INIT, headers=headers, timeout=30)


async def tools_seen(proc: FinoutProcess, token: str) -> tuple[set[str], Any]:
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(resource(proc), http_client=http)) as client,
    ):
        names = {t.name for t in (await client.list_tools()).tools}
        write = await client.call_tool(
            "create_endpoint", {"type": "email", "name": "oauth-test", "to": "a@example.com", "dry_run": True}
        )
        read = await client.call_tool("list_views", {})
        assert not read.is_error
        return names, write


def test_protected_resource_metadata_names_the_issuer(setup: tuple[LocalIssuer, FinoutProcess]) -> None:
    issuer, proc = setup
    r = httpx.get(f"{proc.url}/.well-known/oauth-protected-resource/mcp", timeout=10)
    assert r.status_code == 200
    meta = r.json()
    assert meta["resource"] == resource(proc)
    assert meta["authorization_servers"] == [issuer.issuer]
    assert set(meta["scopes_supported"]) == {"finout:read", "finout:write"}


def test_no_token_gets_401_pointing_at_the_metadata(setup: tuple[LocalIssuer, FinoutProcess]) -> None:
    _issuer, proc = setup
    r = post(proc, None)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer") and "resource_metadata=" in challenge
    assert f"{proc.url}/.well-known/oauth-protected-resource/mcp" in challenge


async def test_a_valid_token_with_both_scopes_sees_everything(setup: tuple[LocalIssuer, FinoutProcess]) -> None:
    issuer, proc = setup
    token = issuer.token(aud=resource(proc), scope="finout:read finout:write", email="ada@example.com")
    names, write = await tools_seen(proc, token)
    assert names == READ_TOOLS | WRITE_TOOLS
    assert not write.is_error


async def test_read_scope_sees_and_calls_the_read_tools_only(setup: tuple[LocalIssuer, FinoutProcess]) -> None:
    issuer, proc = setup
    token = issuer.token(aud=resource(proc), scope="finout:read")
    names, write = await tools_seen(proc, token)
    assert names == READ_TOOLS
    assert write.is_error
    assert "finout:write" in write.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "case",
    ["expired", "not_yet_valid", "wrong_audience", "wrong_issuer", "no_audience", "garbage", "no_scope"],
)
def test_bad_tokens_are_refused(setup: tuple[LocalIssuer, FinoutProcess], case: str) -> None:
    issuer, proc = setup
    now = int(time.time())
    good = {"aud": resource(proc), "scope": "finout:read"}
    token = {
        "expired": lambda: issuer.token(**good, exp=now - 3600, iat=now - 7200),
        "not_yet_valid": lambda: issuer.token(**good, nbf=now + 3600),
        "wrong_audience": lambda: issuer.token(aud="https://another.example/mcp", scope="finout:read"),
        "wrong_issuer": lambda: issuer.token(**good, iss="https://evil.example"),
        "no_audience": lambda: issuer.token(scope="finout:read"),
        "garbage": lambda: "not-a-jwt",
        "no_scope": lambda: issuer.token(aud=resource(proc)),
    }[case]()
    r = post(proc, token)
    assert r.status_code in (401, 403), (case, r.status_code)
    assert "www-authenticate" in r.headers
    assert token not in proc.stderr()


def test_static_token_still_works(setup: tuple[LocalIssuer, FinoutProcess]) -> None:
    _issuer, proc = setup
    assert post(proc, STATIC).status_code == 200
    assert post(proc, STATIC + "x").status_code == 401


async def test_unknown_kid_is_refused_then_accepted_once_the_issuer_rotates(
    setup: tuple[LocalIssuer, FinoutProcess],
) -> None:
    issuer, proc = setup
    issuer.add_key("key-2", publish=False)
    token = issuer.token(kid="key-2", aud=resource(proc), scope="finout:read")
    await anyio.sleep(JWKS_MIN_REFRESH_S + 0.5)  # the JWKS fetched by earlier tests may be refetched again
    fetches = issuer.jwks_fetches
    assert post(proc, token).status_code == 401  # not in the JWKS: refetched, still unknown
    assert issuer.jwks_fetches == fetches + 1
    assert post(proc, token).status_code == 401
    assert issuer.jwks_fetches == fetches + 1  # an unknown kid cannot make us hammer the issuer
    issuer.rotate("key-2")
    await anyio.sleep(JWKS_MIN_REFRESH_S + 0.5)
    assert post(proc, token).status_code == 200  # the new key is fetched on its first use
    old = issuer.token(kid="key-1", aud=resource(proc), scope="finout:read")
    assert post(proc, old).status_code == 401  # the retired key no longer signs anything we accept


async def test_the_signed_in_user_is_the_actor_in_list_changes(setup: tuple[LocalIssuer, FinoutProcess]) -> None:
    issuer, proc = setup
    token = issuer.token(
        kid=issuer.published[0],  # whichever key the issuer signs with now (a test above rotates them)
        aud=resource(proc),
        scope="finout:read finout:write",
        sub="u-42",
        email="ada@example.com",
        name="Ada",
    )
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(resource(proc), http_client=http)) as client,
    ):
        write = await client.call_tool(
            "update_virtual_tag_metadata",
            {"tag": "Team", "values": {"oauth-actor": {"customMetadata": {"owner": "ada"}}}},
        )
        assert not write.is_error, write.content
        changes = await client.call_tool("list_changes", {"limit": 5})
    assert changes.structured_content is not None
    latest = changes.structured_content["changes"][0]
    assert latest["operation"] == "update_virtual_tag_metadata"
    assert latest["actor"] == "Ada <ada@example.com> (sub u-42)"
