"""The error hierarchy, its model-facing text, and that no secret ever leaks through it."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from finout_mcp.api.client import FinoutClient, error_details
from finout_mcp.api.errors import (
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    FinoutAPIStatusError,
    FinoutError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnprocessableError,
    error_class_for_status,
    status_error,
)
from finout_mcp.api.models import EndpointConfiguration, EndpointCreate, VirtualTagWrite
from finout_mcp.config import Settings
from finout_mcp.redact import scrub

SECRET = "sk-LEAK-CANARY-0123456789abcdef"
CLIENT_ID = "cid-visible"


def test_hierarchy() -> None:
    for cls in (
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        InvalidRequestError,
        RateLimitedError,
        ServerError,
    ):
        assert issubclass(cls, FinoutAPIStatusError) and issubclass(cls, FinoutError)
    assert issubclass(ConflictError, InvalidRequestError) and issubclass(UnprocessableError, InvalidRequestError)
    assert issubclass(APITimeoutError, TransportError) and issubclass(APITimeoutError, TimeoutError)
    assert issubclass(MalformedResponseError, FinoutError)
    assert not issubclass(TransportError, FinoutAPIStatusError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (405, InvalidRequestError),
        (409, ConflictError),
        (422, UnprocessableError),
        (429, RateLimitedError),
        (500, ServerError),
        (501, ServerError),
        (503, ServerError),
    ],
)
def test_class_for_status(status: int, cls: type[FinoutError]) -> None:
    assert error_class_for_status(status) is cls


def test_hints() -> None:
    auth = status_error(401, "Unauthorized", method="GET", path="/view")
    assert "FINOUT_CLIENT_ID" in auth.hint and "FINOUT_SECRET_KEY" in auth.hint and "API Tokens" in auth.hint
    assert "role" in status_error(403, "Forbidden", method="GET", path="/view").hint
    # the API layer names no tool: 404 advice comes from the client (id or base URL) and the server
    assert "list_" not in str(status_error(404, "nope", method="POST", path="/cost/query-by-view"))
    assert "90 days" in str(status_error(422, "cannot compute", method="POST", path="/cost/query-by-view"))
    limited = status_error(429, "slow down", method="GET", path="/view", retry_after=3)
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 3 and limited.retryable
    assert "retry after 3 s" in str(limited)
    assert not status_error(500, "boom", method="GET", path="/view").retryable
    assert status_error(502, "boom", method="GET", path="/view").retryable


def test_str_and_repr_are_compact() -> None:
    err = status_error(404, "Virtual tag not found", method="GET", path="/virtual-tags/x", request_id="req-1a2b")
    assert str(err) == (
        "Finout API returned 404 Not Found for GET /virtual-tags/x: Virtual tag not found (requestId req-1a2b). "
        "Check the id."
    )
    assert repr(err) == (
        "NotFoundError(status=404, method='GET', path='/virtual-tags/x', request_id='req-1a2b', "
        "message='Virtual tag not found')"
    )
    assert err.args == ("Virtual tag not found",)
    t = TransportError("connection failed (ConnectError)", method="GET", path="/view")
    assert str(t).startswith("Could not complete GET /view with the Finout API: connection failed")
    m = MalformedResponseError("empty body", status=200, method="GET", path="/view")
    assert "200 OK" in str(m) and "empty body" in str(m)


def test_pickle_roundtrip() -> None:
    err = status_error(429, "slow", method="GET", path="/view", request_id="r", retry_after=2.0)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitedError and back.retry_after == 2.0 and str(back) == str(err)


def test_scrub() -> None:
    assert scrub(f"bad key {SECRET}!", [SECRET]) == "bad key ******!"  # the one mask (was "***" in the API layer)
    assert len(scrub("x" * 1000, [])) <= 300


@pytest.mark.parametrize(
    ("response", "message", "request_id"),
    [
        (httpx.Response(400, json={"message": "bad", "error": "Bad Request", "requestId": "r1"}), "bad", "r1"),
        (httpx.Response(400, json={"error": "Bad Request", "requestId": "r2"}), "Bad Request", "r2"),
        (httpx.Response(400, json={"message": ["a must be set", "b too"]}), "a must be set; b too", None),
        (httpx.Response(400, json={"requestId": "r3"}), "no error message in the body", "r3"),
        (httpx.Response(400, json="plain string"), "plain string", None),
        (httpx.Response(400, headers={"x-request-id": "hdr-1"}, content=b""), "empty body", "hdr-1"),
        (
            httpx.Response(502, headers={"content-type": "text/html; charset=utf-8"}, content=b"<html>x</html>"),
            "non-JSON body (text/html)",
            None,
        ),
        (httpx.Response(500, content=b'{"message": "trunc'), "truncated or invalid JSON body (18 bytes)", None),
        (httpx.Response(500, content=b"\xff\xfe\x00garbage"), "non-JSON body (no content type)", None),
    ],
)
def test_error_details(response: httpx.Response, message: str, request_id: str | None) -> None:
    assert error_details(response) == (message, request_id)


# ----------------------------------------------------------------------------- no secret leaks


def _settings(**kw: Any) -> Settings:
    return Settings(client_id=CLIENT_ID, secret_key=SECRET, api_url="https://api.test/v1", **kw)


def _echo_headers(exc_type: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        # a misbehaving transport whose exception text includes the request headers
        raise exc_type(f"failed with headers {dict(request.headers)!r}", request=request)

    return handler


def _respond(response: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return response

    return handler


def _echo_secret(status: int, ctype: str = "application/json") -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        secret = request.headers["x-finout-secret-key"]
        if ctype == "application/json":
            return httpx.Response(status, json={"message": f"key {secret} is not valid", "requestId": secret})
        return httpx.Response(status, headers={"content-type": ctype}, content=f"<p>{secret}</p>".encode())

    return handler


SCENARIOS: dict[str, tuple[Callable[[httpx.Request], httpx.Response], str]] = {
    "401 echoing the key": (_echo_secret(401), "list_views"),
    "422 echoing the key on create": (_echo_secret(422), "create_virtual_tag"),
    "502 html with the key": (_echo_secret(502, "text/html"), "list_views"),
    "429 exhausted": (_echo_secret(429), "list_views"),
    "200 html with the key": (_echo_secret(200, "text/html"), "list_views"),
    "200 wrong shape with the key": (
        lambda r: httpx.Response(200, json={"data": r.headers["x-finout-secret-key"], "requestId": SECRET}),
        "list_views",
    ),
    "connect error with headers": (_echo_headers(httpx.ConnectError), "list_views"),
    "read timeout with headers on create": (_echo_headers(httpx.ReadTimeout), "create_virtual_tag"),
    "read error with headers on endpoint create": (_echo_headers(httpx.ReadError), "create_endpoint"),
    "remote protocol error": (_echo_headers(httpx.RemoteProtocolError), "list_keys"),
    "malformed 200 with key in a field value": (
        _respond(httpx.Response(200, json={"data": [{"id": SECRET}]})),
        "list_views",
    ),
}


async def _call(client: FinoutClient, method: str) -> None:
    if method == "create_virtual_tag":
        await client.create_virtual_tag(VirtualTagWrite(name="T", rules=[], default_value="u"))
    elif method == "create_endpoint":
        await client.create_endpoint(
            EndpointCreate(type="slack", name="s", configuration=EndpointConfiguration(to="https://hooks/x"))
        )
    else:
        await getattr(client, method)()


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_secret_never_leaks(name: str, caplog: pytest.LogCaptureFixture) -> None:
    handler, method = SCENARIOS[name]
    caplog.set_level(logging.DEBUG)

    async def no_sleep(_: float) -> None:
        return None

    async with FinoutClient(
        _settings(retry_max_attempts=2), transport=httpx.MockTransport(handler), sleep=no_sleep
    ) as client:
        with pytest.raises(FinoutError) as info:
            await _call(client, method)
    err = info.value
    texts = [
        str(err),
        repr(err),
        repr(err.args),
        err.message,
        err.hint,
        str(err.request_id),
        "".join(traceback.format_exception(err)),
        repr(vars(err)),
        caplog.text,
        pickle.dumps(err).decode("latin-1"),
    ]
    for text in texts:
        assert SECRET not in text, name
    assert all(not isinstance(e, httpx.HTTPError) for e in _chain(err))
    assert err.__cause__ is None and err.__context__ is None
    assert not any(isinstance(v, httpx.Request | httpx.Response) for v in vars(err).values())
    assert "x-finout-secret-key" not in caplog.text


def test_settings_repr_hides_secret() -> None:
    s = _settings()
    assert SECRET not in repr(s) and SECRET not in str(s) and SECRET not in repr(s.model_dump())
