"""The async Finout API client: auth, the 5-in-flight cap, retries, typed errors.

One :class:`FinoutClient` per server run. Every method maps to one documented endpoint
(``finout-api.md``) and returns the models of :mod:`finout_mcp.api.models`.

Guarantees
----------
- **Auth**: ``x-finout-client-id`` / ``x-finout-secret-key`` on every request; the secret is
  read from its ``SecretStr`` only when a request is built, and is never logged, never put
  in an error, never chained to one (httpx exceptions carry the request and its headers, so
  errors are raised outside the ``except`` block with no ``__cause__``/``__context__``).
- **Paths**: every path segment is percent-encoded with ``quote(seg, safe="")`` (spaces,
  ``/`` and ``=`` in base64 keys, ``?``, ``#``, ``..``) so an id can never leave its segment.
- **Concurrency**: at most ``settings.max_concurrency`` (≤ 5, Finout's per-key limit)
  requests in flight per API key — per process, or across replicas with a shared
  :mod:`~finout_mcp.api.limiter`. A slot is held until Finout is done with the request: a
  request that timed out keeps its slot (in the background) until its answer arrives or, after
  :data:`LATE_ANSWER_CAP_S`, its connection is closed — Finout still counts it while it works.
  Slots are released while backing off.
- **Retries** (exponential backoff, full jitter, base 0.5 s, cap 8 s; ``Retry-After`` —
  seconds or an HTTP date — is honoured exactly, and holds back every request of the same tool
  call; at most ``retry_max_attempts`` attempts per request, and one budget per tool call
  (:mod:`~finout_mcp.api.retries`: ``retry_max_attempts - 1`` retries within ``retry_budget_s``)
  shared by all its requests, so a fault never multiplies the requests sent; when the server's
  ``Retry-After`` is longer than the budget left, the client gives up at once rather than wait
  in vain; every retry is announced in the log at INFO):

  ====================================  ==========================  =========================
  outcome                               idempotent (GET, PUT,       create (POST /virtual-tags,
                                        DELETE, query-by-view,      POST /endpoints)
                                        scans-recommendations)
  ====================================  ==========================  =========================
  429                                   retry                       retry (server refused it)
  503 with ``Retry-After``              retry                       retry (server refused it)
  503 without, 502, 504                 retry                       no; ``outcome_unknown``
  500, other 5xx                        no                          no; ``outcome_unknown``
  connect error / connect timeout       retry                       retry (never sent)
  read/write timeout, dropped conn.     retry                       no; ``outcome_unknown``
  4xx other than 429                    no                          no
  ====================================  ==========================  =========================

  A 500 is not retried: Finout answers 500 for queries that fail deterministically, and a
  retry would only add latency. When a create's outcome is unknown the error says so in its
  hint ("the tag may have been created; list the virtual tags before retrying") and has
  ``retryable=False``, ``outcome_unknown=True``.
- **Responses**: JSON parsed into the model. A response is *recognised* only when its main
  field is there (in the documented place or a documented alternative, see
  :class:`finout_mcp.api.models.Response`); HTML, empty, truncated or wrongly shaped bodies raise
  :class:`MalformedResponseError` naming the operation and the field, with a sketch of the
  shape that came (keys and types only, never a value). Nothing unrecognised is read as empty.
- **404 advice**: a 404 on a path without an id (``GET /view``), or on an id while ``GET /view``
  answers 404 too, means the base URL is wrong (``FINOUT_API_URL``); otherwise it names that id.
  ``GET /view`` is probed once for this, and only while no call has succeeded yet.
- **Metadata PUT** sends the bare value map the docs describe and returns nothing: what was
  stored is only known by reading it back (the write service does, after every write).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx
from pydantic import BaseModel, ValidationError

from finout_mcp import __version__
from finout_mcp.api.errors import (
    RETRYABLE_STATUSES,
    APITimeoutError,
    FinoutError,
    MalformedResponseError,
    NotFoundError,
    TransportError,
    created_anyway_hint,
    status_error,
)
from finout_mcp.api.limiter import Limiter, MemoryLimiter
from finout_mcp.api.models import (
    SERVER_OWNED_FIELDS,
    CostQueryRequest,
    CostQueryResponse,
    CostType,
    DateRange,
    Endpoint,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    KeyList,
    RecommendationsRequest,
    Response,
    ScanList,
    ScanRecommendations,
    ValueList,
    ValueMetadata,
    ViewList,
    VirtualTag,
    VirtualTagList,
    VirtualTagMetadata,
    VirtualTagWrite,
    metadata_body,
    shape_of,
)
from finout_mcp.api.retries import RetryBudget, current_budget
from finout_mcp.config import DEFAULT_API_URL, MAX_CONCURRENCY, Settings, redact_url
from finout_mcp.filters.canonical import rule_for_write, strip_display_names
from finout_mcp.redact import MAX_MESSAGE, Scrubber

log = logging.getLogger("finout_mcp.api")

M = TypeVar("M", bound=BaseModel)

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
# How long a request that timed out may still hold its slot, waiting for Finout's late answer,
# before its connection is closed (at least this, or two read timeouts).
LATE_ANSWER_CAP_S = 120.0
REQUEST_ID_CHARS = 100
USER_AGENT = f"finout-mcp/{__version__}"

# What each call is about, for errors (the server layer names the tool that lists them)
VIEW, TAG, KEY, SCAN, ENDPOINT = "view", "virtual tag", "MegaBill key", "CostGuard scan", "endpoint"


@dataclass(frozen=True)
class WriteAck:
    """Finout's answer to a write whose body is not documented: only that it was accepted."""

    status: int
    request_id: str | None = None


@dataclass
class ClientStats:
    """Counters of one client (for tests, benchmarks and diagnostics)."""

    requests_sent: int = 0  # attempts put on the wire (retries included)
    retries: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    errors: int = 0  # calls that ended in a FinoutError


def segment(value: str) -> str:
    """One URL path segment, percent-encoded so that nothing in it can escape it."""
    encoded = quote(value, safe="")
    if encoded in (".", ".."):  # dot segments would be normalised away
        encoded = encoded.replace(".", "%2E")
    return encoded


def virtual_tag_body(body: VirtualTagWrite) -> dict[str, Any]:
    """The JSON sent for POST/PUT /virtual-tags: no server-owned fields, no ``displayName``."""
    data = {k: v for k, v in body.wire().items() if k not in SERVER_OWNED_FIELDS}
    rules = data.get("rules")
    if isinstance(rules, list):
        data["rules"] = [rule_for_write(rule) if isinstance(rule, dict) else rule for rule in rules]
    return data


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), else ``None``."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _header_request_id(response: httpx.Response) -> str | None:
    for name in ("x-request-id", "x-amzn-requestid", "request-id", "requestid"):
        value = response.headers.get(name)
        if value:
            return value[:4096]  # cut to REQUEST_ID_CHARS only after scrubbing
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return type(value).__name__


def _non_json_reason(response: httpx.Response) -> str:
    raw = response.content
    ctype = _content_type(response)
    if not raw.strip():
        return "empty body"
    if "json" in ctype or (not ctype and raw.lstrip()[:1] in (b"{", b"[")):
        return f"truncated or invalid JSON body ({len(raw)} bytes)"
    return f"non-JSON body ({ctype or 'no content type'})"


def _decode(response: httpx.Response) -> tuple[Any, str | None]:
    """``(data, None)`` for a JSON body, else ``(None, short reason)``."""
    raw = response.content
    if not raw.strip():
        return None, "empty body"
    ctype = _content_type(response)
    if ctype and "json" not in ctype and raw.lstrip()[:1] not in (b"{", b"["):
        return None, _non_json_reason(response)
    try:
        return json.loads(raw), None
    except ValueError:
        return None, _non_json_reason(response)


def error_details(response: httpx.Response) -> tuple[str, str | None]:
    """Finout's message and ``requestId`` from an error response; survives any body."""
    request_id = _header_request_id(response)
    data, reason = _decode(response)
    if reason is not None:
        return reason, request_id
    if isinstance(data, dict):
        rid = data.get("requestId") or data.get("request_id")
        if isinstance(rid, str | int) and str(rid):
            request_id = str(rid)[:4096]
        for field in ("message", "error", "errorMessage", "detail", "errors"):
            value = data.get(field)
            if value:
                return _text(value), request_id
        return "no error message in the body", request_id
    if isinstance(data, str) and data:
        return data, request_id
    return "unexpected JSON body", request_id


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - len(parts)
    return "unexpected response shape (" + "; ".join(parts) + (f"; +{more} more" if more > 0 else "") + ")"


@dataclass(frozen=True)
class _Call:
    method: str
    path: str  # API-relative, already encoded: "/virtual-tags/abc"
    body: Any = None
    idempotent: bool = True
    route: str | None = None  # the route's template, for a per-route rate budget (API v2)
    subject: str | None = None  # what the call is about ("virtual tag"), for errors
    ident: str | None = None  # the id it names (path or body); None for a whole list


class FinoutClient:
    """Async client of the Finout v1 API. Use as ``async with FinoutClient(settings) as client``.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests, an
    ``httpx.ASGITransport`` over the sandbox for ``--demo``); ``sleep`` replaces
    ``anyio.sleep`` for backoff waits (tests record them instead of waiting).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self._settings = settings
        self._base = settings.api_url.rstrip("/")
        self._sleep: Callable[[float], Awaitable[None]] = sleep or anyio.sleep
        self._max_concurrency = max(1, min(settings.max_concurrency, MAX_CONCURRENCY))
        self._limiter: Limiter = limiter or MemoryLimiter()
        self._random = random.Random()
        self._scrubber = Scrubber(settings.secrets())
        self.stats = ClientStats()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._base_url_proven = False  # some call got a 2xx answer: FINOUT_API_URL reaches Finout
        self._late_cap_s = max(LATE_ANSWER_CAP_S, 2 * settings.read_timeout)
        self._in_flight_tasks: set[asyncio.Task[None]] = set()

    @property
    def _http(self) -> httpx.AsyncClient:
        """The HTTP client, made on first use: building its TLS context costs tens of ms, and the
        server is spawned on every assistant launch, so start-up does not pay for it."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                # The read timeout the caller sees is enforced in _attempt; the connection itself
                # waits for a late answer up to the cap, so its slot is not freed too early.
                timeout=httpx.Timeout(self._late_cap_s, connect=self._settings.connect_timeout),
                headers={"user-agent": USER_AGENT, "accept": "application/json"},
                follow_redirects=False,
                trust_env=self._transport is None,
            )
        return self._client

    @property
    def budget_name(self) -> str:
        """The name of this API key's request budget (shared by every replica using the key)."""
        client_id = self._settings.client_id or "demo"
        return "finout-key:" + hashlib.sha256(f"{self._base}|{client_id}".encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"FinoutClient(api_url={redact_url(self._base)!r}, max_concurrency={self._max_concurrency})"

    async def __aenter__(self) -> FinoutClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in list(self._in_flight_tasks):
            task.cancel()
        if self._in_flight_tasks:
            await asyncio.gather(*self._in_flight_tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    # ------------------------------------------------------------------ views & costs

    async def list_views(self) -> ViewList:
        return await self._get(ViewList, "view", subject=VIEW)

    async def query_costs(
        self,
        view_id: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        cost_type: CostType | None = None,
    ) -> CostQueryResponse:
        """POST /cost/query-by-view. ``date`` is left out entirely when both bounds are ``None``
        (the view's saved range); both or neither must be given."""
        if (start_ms is None) != (end_ms is None):
            raise ValueError("give both start_ms and end_ms, or neither (the view's saved range)")
        date = None
        if start_ms is not None and end_ms is not None:
            date = DateRange(unix_time_mill_seconds_start=int(start_ms), unix_time_mill_seconds_end=int(end_ms))
        body = CostQueryRequest(view_id=view_id, date=date, cost_type=cost_type).wire()
        call = _Call("POST", self._path("cost", "query-by-view"), body, subject=VIEW, ident=view_id)
        return self._parse(await self._send(call), CostQueryResponse, call)

    # ------------------------------------------------------------------ megabill

    async def list_keys(self) -> KeyList:
        return await self._get(KeyList, "megabill", "query-language", "keys", subject=KEY)

    async def list_values(self, cost_center: str, key: str) -> ValueList:
        return await self._get(
            ValueList,
            "megabill",
            "query-language",
            "values",
            cost_center,
            key,
            subject=KEY,
            ident=f"{cost_center}/{key}",
        )

    # ------------------------------------------------------------------ virtual tags

    async def list_virtual_tags(self) -> VirtualTagList:
        return await self._get(VirtualTagList, "virtual-tags", subject=TAG)

    async def get_virtual_tag(self, tag_id: str) -> VirtualTag:
        """GET /virtual-tags/{id}: the tag object itself ([seen]); ``{"virtualTag": ...}`` or
        ``{"data": ...}`` around it are accepted too."""
        call = _Call("GET", self._path("virtual-tags", _id(tag_id, "tag_id")), subject=TAG, ident=tag_id)
        return self._parse(await self._send(call), VirtualTag, call, unwrap="virtualTag")

    async def create_virtual_tag(self, body: VirtualTagWrite) -> VirtualTag:
        """POST /virtual-tags. Never re-sent once it may have reached Finout (see module doc)."""
        call = _Call(
            "POST",
            self._path("virtual-tags"),
            virtual_tag_body(body),
            idempotent=False,
            subject=TAG,
        )
        return self._parse(await self._send(call), VirtualTag, call, unwrap="virtualTag")

    async def update_virtual_tag(self, tag_id: str, body: VirtualTagWrite) -> VirtualTag:
        """PUT /virtual-tags/{id}: replaces the tag. If Finout answers without the tag, it is re-read."""
        call = _Call(
            "PUT",
            self._path("virtual-tags", _id(tag_id, "tag_id")),
            virtual_tag_body(body),
            subject=TAG,
            ident=tag_id,
        )
        response = await self._send(call)
        data = self._json(response, call)
        if isinstance(data, dict) and isinstance(data.get("virtualTag"), dict):
            data = data["virtualTag"]
        if isinstance(data, dict) and "id" not in data and "name" not in data:
            return await self.get_virtual_tag(tag_id)
        return self._validate(data, VirtualTag, call, response)

    async def delete_virtual_tag(self, tag_id: str) -> None:
        """DELETE /virtual-tags/{id}. Any 2xx body (often empty) means success."""
        await self._send(
            _Call("DELETE", self._path("virtual-tags", _id(tag_id, "tag_id")), subject=TAG, ident=tag_id)
        )

    async def get_virtual_tag_metadata(self, tag_id: str) -> VirtualTagMetadata:
        return await self._get(
            VirtualTagMetadata, "virtual-tags", _id(tag_id, "tag_id"), "metadata", subject=TAG, ident=tag_id
        )

    async def set_virtual_tag_metadata(
        self, tag_id: str, metadata: Mapping[str, ValueMetadata | Mapping[str, Any]]
    ) -> WriteAck:
        """PUT /virtual-tags/{id}/metadata with the **bare value map** (no ``metadata`` wrapper):
        **replaces** all metadata of the tag.

        The answer is not documented, so it is not taken as what was stored (an echo of the body
        proves nothing): read the metadata back to know. An empty answer is an acknowledgement;
        a body that is not JSON (an HTML error page, a cut-off answer) is a malformed response.
        """
        values = {
            name: m if isinstance(m, ValueMetadata) else ValueMetadata.model_validate(m)
            for name, m in metadata.items()
        }
        call = _Call(
            "PUT",
            self._path("virtual-tags", _id(tag_id, "tag_id"), "metadata"),
            metadata_body(values),
            subject=TAG,
            ident=tag_id,
        )
        response = await self._send(call)
        data = self._json(response, call) if response.content.strip() else None
        request_id = data.get("requestId") if isinstance(data, dict) else None
        return WriteAck(
            response.status_code,
            str(request_id) if isinstance(request_id, str | int) else _header_request_id(response),
        )

    # ------------------------------------------------------------------ cost guard

    async def list_scans(self) -> ScanList:
        return await self._get(ScanList, "cost-guard", "scans", subject=SCAN)

    async def get_scan_recommendations(self, body: RecommendationsRequest) -> ScanRecommendations:
        data = body.wire()
        if "filters" in data:
            data["filters"] = strip_display_names(data["filters"])
        call = _Call(
            "POST", self._path("cost-guard", "scans-recommendations"), data, subject=SCAN, ident=body.scan_id
        )
        return self._parse(await self._send(call), ScanRecommendations, call)

    # ------------------------------------------------------------------ endpoints

    async def list_endpoints(self) -> EndpointList:
        return await self._get(EndpointList, "endpoints", subject=ENDPOINT)

    async def create_endpoint(self, body: EndpointCreate) -> Endpoint:
        """POST /endpoints. Never re-sent once it may have reached Finout (see module doc)."""
        data = {k: v for k, v in body.wire().items() if k not in SERVER_OWNED_FIELDS}
        if body.to is None and body.configuration.to is not None:  # one body for both readings of `to`
            data["to"] = body.configuration.to
        call = _Call(
            "POST",
            self._path("endpoints"),
            data,
            idempotent=False,
            subject=ENDPOINT,
        )
        response = await self._send(call)
        payload = self._json(response, call)
        if isinstance(payload, dict) and "endpoint" in payload:
            return self._validate(payload, EndpointCreated, call, response).endpoint
        return self._validate(payload, Endpoint, call, response)

    # ------------------------------------------------------------------ internals

    def _path(self, *segments: str) -> str:
        return "/" + "/".join(segment(s) for s in segments)

    async def _get(self, model: type[M], *segments: str, subject: str, ident: str | None = None) -> M:
        call = _Call("GET", self._path(*segments), subject=subject, ident=ident)
        return self._parse(await self._send(call), model, call)

    def _headers(self, call: _Call) -> dict[str, str]:
        client_id, secret = self._settings.credentials()
        self._scrubber = self._scrubber.adding(secret)
        headers = {"x-finout-client-id": client_id, "x-finout-secret-key": secret}
        if call.body is not None:
            headers["content-type"] = "application/json"
        return headers

    def _scrub(self, text: str) -> str:
        return self._scrubber.text(text, MAX_MESSAGE)

    def _scrub_id(self, request_id: str | None) -> str | None:
        """A requestId fit to show: scrubbed first, then cut (a cut first could keep a secret's prefix)."""
        return self._scrubber.text(request_id, REQUEST_ID_CHARS) if request_id else None

    async def _attempt(
        self, call: _Call, content: bytes | None
    ) -> tuple[httpx.Response | None, FinoutError | None]:
        """One attempt: a response, or a scrubbed transport error.

        The request runs in a task of its own that holds a slot of the key's budget from before
        it is sent until Finout has answered (or the connection was closed). The caller waits
        ``read_timeout`` for the answer; if it gives up, the task keeps the slot and reads the late
        answer, so the next attempt cannot push Finout past its limit.
        """
        headers = self._headers(call)
        sent = anyio.Event()
        done = anyio.Event()
        outcome: list[tuple[httpx.Response | None, FinoutError | None]] = []
        caller_gone = False

        async def in_flight() -> None:
            try:
                await self._before_attempt(call)  # a subclass's rate budget: waited for without a slot
                async with self._limiter.slot(self.budget_name, self._max_concurrency):
                    if caller_gone:
                        return
                    sent.set()
                    outcome.append(await self._exchange(call, content, headers))
            finally:
                sent.set()
                done.set()

        task = asyncio.get_running_loop().create_task(in_flight())
        self._in_flight_tasks.add(task)
        task.add_done_callback(self._in_flight_tasks.discard)
        try:
            await sent.wait()
        finally:
            if not sent.is_set():
                caller_gone = True
        with anyio.move_on_after(self._settings.read_timeout):
            await done.wait()
        if outcome:
            return outcome[0]
        if done.is_set():  # cancelled before it was sent (shutting down)
            return None, TransportError("the client is closing", method=call.method, path=call.path)
        log.info(
            "%s %s: no answer within %g s; the request keeps its slot until Finout answers",
            call.method,
            call.path,
            self._settings.read_timeout,
        )
        return None, self._timeout_error(call)

    async def _exchange(
        self, call: _Call, content: bytes | None, headers: dict[str, str]
    ) -> tuple[httpx.Response | None, FinoutError | None]:
        """Send and read the whole answer (in the slot-holding task)."""
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        self.stats.requests_sent += 1
        try:
            response = await self._http.request(
                call.method, self._base + call.path, content=content, headers=headers
            )
            self._after_attempt(call, response)
            return response, None
        except httpx.TransportError as exc:
            return None, self._transport_error(exc, call)
        except (httpx.DecodingError, httpx.TooManyRedirects) as exc:
            return None, MalformedResponseError(
                self._scrub(f"unreadable response ({type(exc).__name__})"),
                method=call.method,
                path=call.path,
                retryable=False,
            )
        finally:
            self.stats.in_flight -= 1

    def _timeout_error(self, call: _Call) -> FinoutError:
        """The caller stopped waiting: for a create, its outcome is unknown."""
        unknown = not call.idempotent
        return APITimeoutError(
            f"no answer within {self._settings.read_timeout:g} s (ReadTimeout)",
            method=call.method,
            path=call.path,
            hint=created_anyway_hint(call.subject) if unknown else None,
            retryable=not unknown,
            outcome_unknown=unknown,
        )

    async def _before_attempt(self, call: _Call) -> None:
        """Hook: wait for whatever a subclass must wait for before each attempt (v1: nothing)."""

    def _after_attempt(self, call: _Call, response: httpx.Response) -> None:
        """Hook: see each answer before it is classified (v1: nothing)."""

    def _transport_error(self, exc: httpx.TransportError, call: _Call) -> FinoutError:
        """A typed error for an httpx transport failure: keeps only the class name and a short text."""
        kind = type(exc).__name__
        detail = self._scrub(str(exc).splitlines()[0] if str(exc) else "")[:120]
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        message = {
            "ConnectTimeout": f"connecting timed out after {self._settings.connect_timeout:g} s",
            "ReadTimeout": f"no answer within {self._settings.read_timeout:g} s",
            "WriteTimeout": "sending the request timed out",
            "PoolTimeout": "no free connection in time",
        }.get(kind, "connection failed" if never_sent else "the connection broke")
        message = f"{message} ({kind}{': ' + detail if detail and kind not in detail else ''})"
        retryable = not isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError)
        hint: str | None = None
        outcome_unknown = False
        if not call.idempotent and not never_sent:
            retryable, outcome_unknown, hint = False, True, created_anyway_hint(call.subject)
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else TransportError
        return cls(
            message,
            method=call.method,
            path=call.path,
            hint=hint,
            retryable=retryable,
            outcome_unknown=outcome_unknown,
        )

    def _status_error(self, response: httpx.Response, call: _Call) -> FinoutError:
        message, request_id = error_details(response)
        request_id = self._scrub_id(request_id)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        status = response.status_code
        if 300 <= status < 400:
            return MalformedResponseError(
                f"unexpected redirect ({status}); FINOUT_API_URL may be wrong",
                status=status,
                request_id=request_id,
                method=call.method,
                path=call.path,
                retryable=False,
            )
        retryable = self._may_retry_status(call, status, retry_after)
        outcome_unknown = not call.idempotent and status >= 500 and not retryable
        return status_error(
            status,
            self._scrub(message),
            method=call.method,
            path=call.path,
            request_id=request_id,
            retry_after=retry_after,
            retryable=retryable,
            outcome_unknown=outcome_unknown,
            hint=created_anyway_hint(call.subject) if outcome_unknown else None,
        )

    @staticmethod
    def _may_retry_status(call: _Call, status: int, retry_after: float | None) -> bool:
        if call.idempotent:
            return status in RETRYABLE_STATUSES
        # A create is re-sent only when the server provably refused it.
        return status == 429 or (status == 503 and retry_after is not None)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        return self._random.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))

    async def _send(self, call: _Call) -> httpx.Response:
        """Send ``call`` with retries from the tool call's budget; a 2xx response, or the last typed error."""
        content = None if call.body is None else json.dumps(call.body, ensure_ascii=False).encode()
        max_attempts = max(1, self._settings.retry_max_attempts)
        budget = current_budget() or RetryBudget.start(max_attempts - 1, self._settings.retry_budget_s)
        attempt = 0
        waited = False
        while True:
            hold = 0.0 if waited else budget.wait_s()
            if hold > 0:  # another request of this call was told to wait
                await self._sleep(hold)
            attempt += 1
            started = time.monotonic()
            response, error = await self._attempt(call, content)
            elapsed = time.monotonic() - started
            if response is not None:
                log.debug(
                    "%s %s -> %d in %.0f ms (attempt %d)",
                    call.method,
                    call.path,
                    response.status_code,
                    elapsed * 1000,
                    attempt,
                )
                if 200 <= response.status_code < 300:
                    self._base_url_proven = True
                    return response
                error = self._status_error(response, call)
            else:
                assert error is not None
                log.debug(
                    "%s %s -> %s in %.0f ms (attempt %d)",
                    call.method,
                    call.path,
                    error.message,
                    elapsed * 1000,
                    attempt,
                )
            delay = self._retry_delay(error, attempt, max_attempts, budget)
            if delay is None:
                self.stats.errors += 1
                error.attempts = attempt
                error.subject, error.ident = call.subject, call.ident
                if isinstance(error, NotFoundError) and call.subject is not None:  # the v1 operations
                    await self._explain_not_found(error, call)
                raise error
            if error.retry_after is not None:
                budget.hold_off(error.retry_after)
            log.info(
                "retrying %s %s in %.2f s after %s (attempt %d of %d; %d retries left for this call)",
                call.method,
                call.path,
                delay,
                error.status or type(error).__name__,
                attempt,
                max_attempts,
                budget.retries,
            )
            self.stats.retries += 1
            await self._sleep(delay)
            budget.slept += delay
            waited = True

    async def _explain_not_found(self, error: NotFoundError, call: _Call) -> None:
        """Say whether a 404 means the id or the base URL: a list path (no id) never 404s on
        Finout's API; for an id, ``GET /view`` is asked once unless a call already succeeded."""
        wrong = call.ident is None
        if not wrong and not self._base_url_proven:
            probe, _ = await self._attempt(_Call("GET", "/view"), None)
            if probe is not None and 200 <= probe.status_code < 300:
                self._base_url_proven = True
            wrong = probe is not None and probe.status_code == 404
        if wrong:
            error.base_url_wrong = True
            error.hint = (
                f"Every Finout path answers 404 at {self._scrub(self._base)}: the base URL is wrong. Set "
                f"FINOUT_API_URL to Finout's v1 API ({DEFAULT_API_URL}, with /v1) and restart."
            )
        elif call.subject and call.ident:
            error.hint = f"No {call.subject} has the id {call.ident!r} in this account; check that id."

    def _retry_delay(
        self, error: FinoutError, attempt: int, max_attempts: int, budget: RetryBudget
    ) -> float | None:
        """Seconds to wait before the next attempt (drawn from the call's budget), or ``None`` to give up."""
        remaining = budget.remaining_s()
        if not error.retryable or attempt >= max_attempts or remaining <= 0:
            return None
        retry_after = error.retry_after
        delay = retry_after if retry_after is not None else min(self._backoff(attempt), remaining)
        why = f"{error.status or type(error).__name__} on {error.operation}"
        return delay if budget.take(delay, why) else None

    def _json(self, response: httpx.Response, call: _Call) -> Any:
        data, reason = _decode(response)
        if reason is not None:
            raise self._malformed(reason, response, call, None)
        return data

    def _parse(self, response: httpx.Response, model: type[M], call: _Call, *, unwrap: str | None = None) -> M:
        if unwrap is None:
            # Fast path for the documented shape: pydantic parses the bytes itself, without building
            # Python dicts first (50,000 keys or 200,000 values otherwise peak at several times their
            # final size). Main fields are required, so a body without one never passes here.
            try:
                return model.model_validate_json(response.content)
            except ValidationError:
                pass  # the slow path below accepts the documented alternatives, or names what is wrong
        data = self._json(response, call)
        if unwrap and isinstance(data, dict):
            for wrapper in (unwrap, "data"):
                if isinstance(data.get(wrapper), dict) and "id" not in data:
                    data = data[wrapper]
                    break
        return self._validate(data, model, call, response)

    def _validate(self, data: Any, model: type[M], call: _Call, response: httpx.Response) -> M:
        request_id = data.get("requestId") if isinstance(data, dict) else None
        request_id = request_id if isinstance(request_id, str) else None
        if issubclass(model, Response):
            recognised, missing = model.recognise(data)
            if missing is not None:
                raise self._malformed(
                    f"unexpected response shape: {missing}",
                    response,
                    call,
                    request_id,
                    field=model.MAIN,
                    data=data,
                )
            data = recognised
        summary: str | None = None
        field: str | None = None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            summary = _validation_summary(exc)
            first = exc.errors(include_input=False, include_url=False)[0]
            field = ".".join(str(p) for p in first.get("loc", ())) or None
        assert summary is not None
        raise self._malformed(summary, response, call, request_id, field=field, data=data)

    def _malformed(
        self,
        reason: str,
        response: httpx.Response,
        call: _Call,
        request_id: str | None,
        *,
        field: str | None = None,
        data: Any = None,
    ) -> MalformedResponseError:
        self.stats.errors += 1
        unknown = not call.idempotent
        request_id = request_id or _header_request_id(response)
        error = MalformedResponseError(
            self._scrub(reason),
            status=response.status_code,
            request_id=self._scrub_id(request_id),
            method=call.method,
            path=call.path,
            retryable=not unknown,
            outcome_unknown=unknown,
            hint=created_anyway_hint(call.subject) if unknown else None,
            field=field,
            shape=self._scrub(shape_of(data)) if data is not None else None,
        )
        error.subject, error.ident = call.subject, call.ident
        return error


def _id(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "USER_AGENT",
    "ClientStats",
    "FinoutClient",
    "WriteAck",
    "error_details",
    "parse_retry_after",
    "segment",
    "virtual_tag_body",
]
