"""The sandbox ASGI app: a Finout v1 API simulator with auth, limits and fault injection.

Strict to the documents, not to our client: every rule below names the line of
``docs/finout-api.md`` (as ``finout-api.md:N``, with its section) it comes from. Where
the docs allow one reading, the other is rejected (the wrapped metadata body, fields no page
lists); where they allow two, both are served (an e-mail endpoint's ``to`` at top level with an
empty ``configuration``, an object ``defaultValue``, an open-ended rule ``timeframe``,
``{"endpoint": id}`` metadata references), so the client's tolerant paths are exercised.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from finout_mcp.sandbox.account import Account
from finout_mcp.sandbox.catalog import VIRTUAL_TAGS
from finout_mcp.sandbox.costs import COST_TYPES, DAY_MS, MAX_RANGE_MS
from finout_mcp.sandbox.faults import Fault, FaultSwitchboard, RequestRecord, Stats
from finout_mcp.sandbox.filters import FilterError, add_display_names, matches, validate_filter
from finout_mcp.sandbox.v2 import V2Api, V2Error

logger = logging.getLogger("finout_mcp.sandbox")

MAX_IN_FLIGHT = 5  # finout-api.md:43 ("Five concurrent requests per API key"; more in flight gets 429)
MAX_RULES = 1000  # finout-api.md:34 (v2's spec says 1,000; the product UI caps at 50, which the API may not)
ENDPOINT_TYPES = ("email", "slack")
# finout-api.md:107,109 (create/update body {"name","rules","defaultValue"}) and :112 (the tag
# object has a `category`, which a client that replaces the tag sends back). Anything else: 400.
TAG_BODY_FIELDS = frozenset({"name", "rules", "defaultValue", "category"})
# finout-api.md:60 (query-by-view body {"viewId","date","costType"})
COST_QUERY_FIELDS = frozenset({"viewId", "date", "costType"})
# finout-api.md:134 (recommendations body {"scanId","filters"?,"groupBy"?})
RECOMMENDATION_FIELDS = frozenset({"scanId", "filters", "groupBy"})
# finout-api.md:151 (create body {"type","name","configuration":{"to"}}) and :28-30 (an older page
# lists `to` as a top-level field too)
ENDPOINT_BODY_FIELDS = frozenset({"type", "name", "configuration", "to"})
# finout-api.md:124 (each value's object: groups, customMetadata, endpoints)
METADATA_VALUE_FIELDS = frozenset({"groups", "customMetadata", "endpoints"})


def _unknown_fields(body: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise ApiError(400, f"{where}: unknown field(s) {extra}; allowed: {sorted(allowed)}")


Params = dict[str, str]
Handler = Callable[[Request, Params, str], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _DroppedConnection(Response):
    """Starts a response, sends part of it, then fails: the client sees a broken connection.

    Served in-process (httpx.ASGITransport) the raised ``httpx.RemoteProtocolError`` reaches
    the client as is; served by uvicorn the connection is closed mid-body.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"data": [', "more_body": True})
        raise httpx.RemoteProtocolError("sandbox: connection dropped (injected fault)")


class Sandbox:
    """A faithful in-memory Finout v1 API. ``sb.app`` is the ASGI app (routes under /v1)."""

    def __init__(
        self,
        seed: int = 7,
        scale: str = "demo",
        today: dt.date | None = None,
        *,
        compute_s: float = 1.5,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.seed = seed
        self.scale = scale
        self.today = today or dt.datetime.now(dt.UTC).date()
        self.account = Account(seed, scale, self.today)
        # API v2: ``compute_s`` is how long a Cost and Usage query runs; ``clock`` (seconds) drives
        # its status, the 24 h result lifetime and the per-minute rate limits (tests move it).
        self.v2 = V2Api(self.account, clock=clock, compute_s=compute_s)
        self.faults = FaultSwitchboard(seed)
        self._cost_bodies: dict[tuple[str, int, int, str, int], bytes] = {}  # serialized cost series, by query
        self.stats = Stats()
        self.request_log: list[RequestRecord] = []
        self._request_counter = 0
        self._routes: list[tuple[str, dict[str, Handler]]] = [
            ("/v1/view", {"GET": self._list_views}),
            ("/v1/cost/query-by-view", {"POST": self._query_by_view}),
            ("/v1/megabill/query-language/keys", {"GET": self._list_keys}),
            ("/v1/megabill/query-language/values/{costCenter}/{key}", {"GET": self._key_values}),
            ("/v1/virtual-tags", {"GET": self._list_tags, "POST": self._create_tag}),
            (
                "/v1/virtual-tags/{id}",
                {"GET": self._get_tag, "PUT": self._update_tag, "DELETE": self._delete_tag},
            ),
            ("/v1/virtual-tags/{id}/metadata", {"GET": self._get_metadata, "PUT": self._put_metadata}),
            ("/v1/cost-guard/scans", {"GET": self._list_scans}),
            ("/v1/cost-guard/scans-recommendations", {"POST": self._recommendations}),
            ("/v1/endpoints", {"GET": self._list_endpoints, "POST": self._create_endpoint}),
        ]
        for template in self.v2.routes():
            handler = self._v2_handler(template)
            self._routes.append((template, {"GET": handler, "POST": handler}))
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        self.app = Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)])

    # ================================================================ plumbing
    def _request_id(self) -> str:
        self._request_counter += 1
        return f"req-{self._request_counter:06x}"

    def _json(self, data: dict[str, Any], rid: str, status: int = 200, **extra: Any) -> JSONResponse:
        body = {**data, "requestId": rid}
        return JSONResponse(body, status_code=status, headers=extra.get("headers"))

    def _error(self, status: int, message: str, rid: str, headers: dict[str, str] | None = None) -> Response:
        """finout-api.md:44-48: no error body is documented; ``{"message","error","requestId"}`` is what
        public clients read, so the sandbox answers that (tests inject other bodies as faults)."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return JSONResponse(
            {"message": message, "error": phrase, "requestId": rid}, status_code=status, headers=headers
        )

    def _match(self, method: str, raw_path: str) -> tuple[str | None, Handler | None, Params]:
        segments = raw_path.split("/")
        for template, handlers in self._routes:
            parts = template.split("/")
            if len(parts) != len(segments):
                continue
            params: Params = {}
            for part, seg in zip(parts, segments, strict=True):
                if part.startswith("{"):
                    if not seg:
                        break
                    params[part[1:-1]] = unquote(seg)
                elif part != seg:
                    break
            else:
                return template, handlers.get(method), params
        return None, None, {}

    async def _dispatch(self, request: Request) -> Response:
        scope = request.scope
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("latin-1").split("?", 1)[0]
        if raw_path.startswith("/_sandbox/"):
            return await self._control(request, raw_path)
        method = request.method.upper()
        query = scope.get("query_string", b"").decode("latin-1")
        client_id = request.headers.get("x-finout-client-id") or None
        secret = request.headers.get("x-finout-secret-key") or None
        route, handler, params = self._match(method, raw_path)
        rid = self._request_id()
        self.stats.total_requests += 1

        def log(status: int) -> None:
            self.request_log.append(RequestRecord(method, raw_path, query, route, status, client_id))

        if not client_id or not secret:  # finout-api.md:40 (both headers on every request)
            log(401)
            return JSONResponse({"message": "Unauthorized", "requestId": rid}, status_code=401)
        active = self.stats.per_client.get(client_id, 0)
        if raw_path.startswith("/v2/") and route is not None:
            refused = self.v2.limiter.admit(client_id, route)
            if refused is not None:
                self.stats.rate_limited += 1
                log(429)
                return JSONResponse(
                    {"requestId": rid, "error": "RATE_LIMIT_EXCEEDED", "message": refused}, status_code=429
                )
        elif active >= MAX_IN_FLIGHT:  # the five-in-flight rule is stated for v1 only
            self.stats.rate_limited += 1
            log(429)
            return self._error(
                429, "Too many requests: at most 5 concurrent requests per API key", rid, {"Retry-After": "1"}
            )
        self.stats.per_client[client_id] = active + 1
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        status = 500
        try:
            if self.faults.latency_ms > 0:
                await asyncio.sleep(self.faults.latency_ms / 1000)
            fault = self.faults.next_fault(method, route)
            response: Response | None = None
            if fault is not None:
                response = await self._apply_fault(fault, rid)
            if response is None:
                if route is None:
                    response = self._error(404, f"Not found: {method} {raw_path}", rid)
                elif handler is None:
                    response = self._error(405, f"Method {method} not allowed on {route}", rid)
                else:
                    try:
                        response = await handler(request, params, rid)
                    except ApiError as exc:
                        response = self._error(exc.status, exc.message, rid, exc.headers)
            status = 0 if isinstance(response, _DroppedConnection) else response.status_code
            if status == 429:
                self.stats.rate_limited += 1
            return response
        finally:
            self.stats.in_flight -= 1
            left = self.stats.per_client.get(client_id, 1) - 1
            if left > 0:
                self.stats.per_client[client_id] = left
            else:
                self.stats.per_client.pop(client_id, None)
            log(status)

    async def _apply_fault(self, fault: Fault, rid: str) -> Response | None:
        if fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)
        if fault.drop:
            return _DroppedConnection()
        if fault.status is None and fault.body == "json":
            return None  # a pure delay
        status = fault.status if fault.status is not None else 200
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            ra = fault.retry_after
            headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
        if fault.body == "html":
            html = f"<html><head><title>{status}</title></head><body><h1>{status} Error</h1></body></html>"
            return Response(html, status_code=status, media_type="text/html", headers=headers)
        if fault.body == "empty":
            return Response(b"", status_code=status, media_type="application/json", headers=headers)
        if fault.body == "truncated":
            body = b'{"data": [{"name": "Total", "data": [{"time": 17172'
            return Response(body, status_code=status, media_type="application/json", headers=headers)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return self._error(status, f"{phrase} (injected by the sandbox)", rid, headers)

    async def _control(self, request: Request, raw_path: str) -> Response:
        if raw_path == "/_sandbox/stats" and request.method == "GET":
            return JSONResponse(self.stats.as_dict())
        if raw_path == "/_sandbox/reset" and request.method == "POST":
            self.stats.reset()
            self.request_log.clear()
            return JSONResponse({"ok": True})
        if raw_path == "/_sandbox/faults":
            if request.method == "GET":
                return JSONResponse(self.faults.snapshot())
            if request.method == "POST":
                try:
                    data = json.loads(await request.body() or b"{}")
                    if not isinstance(data, dict):
                        raise ValueError("body must be a JSON object")
                    self.faults.configure(data)
                except (ValueError, TypeError) as exc:
                    return JSONResponse({"message": str(exc)}, status_code=400)
                return JSONResponse(self.faults.snapshot())
        return JSONResponse({"message": f"unknown control route {raw_path}"}, status_code=404)

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            raise ApiError(400, "Request body is required (JSON)")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"Malformed JSON body: {exc}") from None

    async def _object_body(self, request: Request) -> dict[str, Any]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        return body

    # ================================================================ API v2
    def _v2_handler(self, template: str) -> Handler:
        async def handle(request: Request, params: Params, rid: str) -> Response:
            body: Any = None
            if request.method == "POST":
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw.strip() else None
                except (ValueError, UnicodeDecodeError):
                    return JSONResponse(
                        {"requestId": rid, "error": "INVALID_REQUEST", "message": "Malformed JSON body"},
                        status_code=400,
                    )
            query = dict(request.query_params)
            try:
                payload = self.v2.handle(template, request.method, params, query, body)
            except V2Error as exc:
                return JSONResponse(
                    {"requestId": rid, "error": exc.code, "message": exc.message}, status_code=exc.status
                )
            return JSONResponse({"requestId": rid, **payload})

        return handle

    # ================================================================ views & costs
    async def _list_views(self, request: Request, params: Params, rid: str) -> Response:
        return self._json({"data": [{"name": v.name, "id": v.id} for v in self.account.views]}, rid)

    async def _query_by_view(self, request: Request, params: Params, rid: str) -> Response:
        body = await self._object_body(request)
        _unknown_fields(body, COST_QUERY_FIELDS, "query-by-view body")
        view_id = body.get("viewId")
        if not isinstance(view_id, str) or not view_id:  # finout-api.md:60 (body {"viewId", ...})
            raise ApiError(400, "viewId is required (see GET /view)")
        cost_type = body.get("costType", "unblendedCost")
        if cost_type not in COST_TYPES:  # finout-api.md:67-68 (the five cost types)
            raise ApiError(400, f"Unknown costType {cost_type!r}; use one of {sorted(COST_TYPES)}")
        view = self.account.view(view_id)
        if view is None:
            raise ApiError(404, f"View {view_id} not found")  # finout-api.md:44 (404)
        # finout-api.md:62-64: `date` may be left out (the view's saved range); blank fields fail; at most
        # 90 days; milliseconds [seen] (the docs' example uses seconds, which this refuses as a 1970 range)
        if "date" in body:
            date = body["date"]
            if not isinstance(date, dict):
                raise ApiError(400, "date must be an object with unixTimeMillSecondsStart/End, or be left out")
            start = date.get("unixTimeMillSecondsStart")
            end = date.get("unixTimeMillSecondsEnd")
            for name, value in (("unixTimeMillSecondsStart", start), ("unixTimeMillSecondsEnd", end)):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ApiError(
                        400,
                        f"date.{name} must be an integer epoch-milliseconds timestamp "
                        "(or leave date out entirely to use the view's saved range)",
                    )
            assert isinstance(start, int) and isinstance(end, int)
            if start > end:
                raise ApiError(400, "date.unixTimeMillSecondsStart is after date.unixTimeMillSecondsEnd")
            if end - start > MAX_RANGE_MS:
                days = (end - start) / DAY_MS
                raise ApiError(400, f"Date range too long ({days:.1f} days): the maximum range is 90 days")
        else:
            start, end = view.saved_range(self.today)
        cache_key = (view_id, start, end, cost_type, self.account.allocator.version)
        data_json = self._cost_bodies.get(cache_key)
        if data_json is None:
            series = view.series(start, end, self.today, cost_type)
            data = [{"name": name, "data": [{"time": t, "cost": c} for t, c in points]} for name, points in series]
            data_json = json.dumps(data, separators=(",", ":")).encode()
            if len(self._cost_bodies) >= 256:  # a small memo: the same windows come back in benchmarks
                self._cost_bodies.pop(next(iter(self._cost_bodies)))
            self._cost_bodies[cache_key] = data_json
        tail = json.dumps({"request": {"viewId": view_id}, "requestId": rid}, separators=(",", ":")).encode()
        return Response(b'{"data":' + data_json + b"," + tail[1:], media_type="application/json")

    # ================================================================ megabill
    async def _list_keys(self, request: Request, params: Params, rid: str) -> Response:
        return self._json({"keys": self.account.keys, "accountId": self.account.account_id}, rid)

    async def _key_values(self, request: Request, params: Params, rid: str) -> Response:
        cost_center, key = params["costCenter"], params["key"]
        values = self.account.key_values(cost_center, key)
        if values is None:
            raise ApiError(404, f"Key {key!r} not found in cost center {cost_center!r}")  # finout-api.md:44 (404)
        return self._json(
            {
                "values": values,
                "request": {"costCenter": cost_center, "key": key},
                "accountId": self.account.account_id,
            },
            rid,
        )

    # ================================================================ virtual tags
    def _tag_out(self, tag: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(tag)
        for rule in out.get("rules", []):
            if isinstance(rule, dict) and "filters" in rule:
                rule["filters"] = add_display_names(rule["filters"], self.account.display_name)
        return out

    def _tag(self, tag_id: str) -> dict[str, Any]:
        tag = self.account.virtual_tags.get(tag_id)
        if tag is None:
            raise ApiError(404, f"Virtual tag {tag_id} not found")  # finout-api.md:44 (404)
        return tag

    def _validate_tag(self, body: dict[str, Any], self_id: str | None) -> tuple[str, list[Any], Any]:
        _unknown_fields(body, TAG_BODY_FIELDS, "virtual tag body")
        category = body.get("category")
        if category is not None and not isinstance(category, str):  # finout-api.md:112 (category: a string)
            raise ApiError(400, "category must be a string")
        name = body.get("name")  # finout-api.md:107,109 (name, rules) and :119 (invalid composition -> 422)
        if not isinstance(name, str) or not name.strip():
            raise ApiError(422, "name is required and must be a non-empty string")
        rules = body.get("rules")
        if not isinstance(rules, list):
            raise ApiError(422, "rules is required and must be an array of rules")
        if len(rules) > MAX_RULES:
            raise ApiError(422, f"A virtual tag can have at most {MAX_RULES} rules (got {len(rules)})")
        default = body.get("defaultValue")
        # finout-api.md:113 (defaultValue "untagged") and :24 ("defaultValue may be an object ({key,
        # costCenter}) in newer pages"): a string, or a reference like a rule's object `to`.
        if isinstance(default, dict):
            self._check_reference(default, "defaultValue", self_id)
        elif default is not None and not isinstance(default, str):
            raise ApiError(422, 'defaultValue must be a string or {"key": <virtual tag id>, "costCenter": ...}')
        for i, rule in enumerate(rules):
            where = f"rules[{i}]"
            if not isinstance(rule, dict):  # finout-api.md:114 (rule {"to", "filters"}, optional "timeframe")
                raise ApiError(422, f"{where}: a rule must be an object with 'to' and 'filters'")
            extra = set(rule) - {"to", "filters", "timeframe"}
            if extra:
                raise ApiError(422, f"{where}: unexpected field(s) {sorted(extra)}")
            if "to" not in rule or "filters" not in rule:
                raise ApiError(422, f"{where}: a rule needs both 'to' and 'filters'")
            to = rule["to"]
            if isinstance(
                to, dict
            ):  # finout-api.md:115 (`to` may be {"key": <tag id>, "costCenter": "Virtual Tags"})
                self._check_reference(to, f"{where}.to", self_id)
            elif not isinstance(to, str) or not to.strip():
                raise ApiError(422, f"{where}.to: must be a non-empty string or a Virtual Tags reference")
            try:  # finout-api.md:92-101 (conditions, AND/OR groups, the eight operators, displayName not sent)
                validate_filter(rule["filters"], self.account.key_exists, f"{where}.filters")
            except FilterError as exc:
                raise ApiError(422, str(exc)) from None
            if "timeframe" in rule:
                # finout-api.md:114 ({"from": ms, "to": ms}) and :18-19 (only an example shows it): epoch
                # ms; an end may be left open, as the "open-ended timeframe" reading allows.
                tf = rule["timeframe"]
                ok = (
                    isinstance(tf, dict)
                    and bool(tf)
                    and set(tf) <= {"from", "to"}
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in tf.values())
                )
                if not ok:
                    raise ApiError(422, f'{where}.timeframe must be {{"from": <epoch ms>, "to": <epoch ms>}}')
                if "from" in tf and "to" in tf and tf["from"] > tf["to"]:
                    raise ApiError(422, f"{where}.timeframe: 'from' is after 'to'")
        for tag_id, tag in self.account.virtual_tags.items():
            if tag_id != self_id and tag["name"] == name:
                # [assumed] no page documents duplicate names; the client checks names itself before writing
                raise ApiError(409, f"A virtual tag named {name} already exists")
        return name, rules, default

    def _check_reference(self, ref: dict[str, Any], where: str, self_id: str | None) -> None:
        """``{"key": <virtual tag id>, "costCenter": "Virtual Tags"}`` (finout-api.md:115)."""
        if set(ref) != {"key", "costCenter"} or ref.get("costCenter") != VIRTUAL_TAGS:
            raise ApiError(
                422, f'{where}: an object value must be {{"key": <virtual tag id>, "costCenter": "Virtual Tags"}}'
            )
        if not isinstance(ref.get("key"), str) or ref["key"] not in self.account.virtual_tags:
            raise ApiError(422, f"{where}: virtual tag {ref.get('key')!r} does not exist")
        if ref["key"] == self_id:
            raise ApiError(422, f"{where}: a virtual tag cannot take its value from itself")

    async def _list_tags(self, request: Request, params: Params, rid: str) -> Response:
        tags = [self._tag_out(t) for t in self.account.virtual_tags.values()]
        return self._json({"virtualTags": tags, "accountId": self.account.account_id}, rid)

    async def _get_tag(self, request: Request, params: Params, rid: str) -> Response:
        return self._json(self._tag_out(self._tag(params["id"])), rid)

    async def _create_tag(self, request: Request, params: Params, rid: str) -> Response:
        body = await self._object_body(request)
        name, rules, default = self._validate_tag(body, None)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        tag = self.account.new_tag(name, rules, default, "API", now, category=body.get("category"))
        return self._json(self._tag_out(tag), rid)

    async def _update_tag(self, request: Request, params: Params, rid: str) -> Response:
        tag = self._tag(params["id"])
        body = await self._object_body(request)
        name, rules, default = self._validate_tag(body, tag["id"])
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        tag.update(
            {
                "name": name,
                "rules": copy.deepcopy(rules),
                "defaultValue": default,
                "updatedBy": "API",
                "updatedAt": now.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)"),
            }
        )
        # finout-api.md:109: PUT **replaces** the tag, so a category the body leaves out is gone
        if "category" in body:
            tag["category"] = body["category"]
        else:
            tag.pop("category", None)
        self.account.tags_changed()
        return self._json(self._tag_out(tag), rid)

    async def _delete_tag(self, request: Request, params: Params, rid: str) -> Response:
        tag = self._tag(params["id"])
        del self.account.virtual_tags[tag["id"]]
        self.account.tags_changed()
        self.account.metadata.pop(tag["id"], None)
        return self._json({}, rid)

    async def _get_metadata(self, request: Request, params: Params, rid: str) -> Response:
        tag = self._tag(params["id"])
        return self._json({"metadata": copy.deepcopy(self.account.metadata.get(tag["id"], {}))}, rid)

    async def _put_metadata(self, request: Request, params: Params, rid: str) -> Response:
        tag = self._tag(params["id"])
        body = await self._object_body(request)
        # finout-api.md:14-17,125: the body is the bare map keyed by tag value; `{"metadata": {...}}` is
        # the GET response's shape only. Read as documented it would be one value named "metadata"
        # whose fields are tag values: refused here, by the per-value field check below.
        endpoint_ids = {e["id"] for e in self.account.endpoints}
        clean: dict[str, Any] = {}
        for value, entry in body.items():
            if "." in value:  # finout-api.md:127 (value names cannot contain dots)
                raise ApiError(400, f"Virtual tag value names cannot contain dots: {value!r}")
            if not value:
                raise ApiError(400, "Virtual tag value names cannot be empty")
            if not isinstance(entry, dict):
                raise ApiError(400, f"metadata[{value!r}] must be an object with groups/customMetadata/endpoints")
            extra = set(entry) - METADATA_VALUE_FIELDS
            if extra:
                wrapped = ' (the body is the bare map keyed by tag value, not {"metadata": ...})'
                raise ApiError(
                    400,
                    f"metadata[{value!r}]: unexpected field(s) {sorted(extra)}{wrapped if value == 'metadata' else ''}",
                )
            groups = entry.get("groups", [])
            if not isinstance(groups, list) or not all(isinstance(x, str) for x in groups):
                raise ApiError(400, f"metadata[{value!r}].groups must be an array of strings")
            refs = entry.get("endpoints", [])
            # finout-api.md:26-27: ids in the GET example, {"endpoint": id} in the PUT table: both accepted
            ids = (
                [r.get("endpoint") if isinstance(r, dict) and set(r) == {"endpoint"} else r for r in refs]
                if (isinstance(refs, list))
                else None
            )
            if ids is None or not all(isinstance(x, str) for x in ids):
                raise ApiError(400, f'metadata[{value!r}].endpoints must be an array of ids or {{"endpoint": id}}')
            custom = entry.get("customMetadata", {})
            if not isinstance(custom, dict):
                raise ApiError(400, f"metadata[{value!r}].customMetadata must be an object")
            unknown = [e for e in ids if e not in endpoint_ids]
            if unknown:  # finout-api.md:127-128 (`endpoints` holds endpoint ids); the 422 itself is [assumed]
                raise ApiError(422, f"metadata[{value!r}].endpoints: unknown endpoint id(s) {unknown}")
            clean[value] = copy.deepcopy(entry)
        self.account.metadata[tag["id"]] = clean
        return self._json({"metadata": copy.deepcopy(clean)}, rid)

    # ================================================================ cost guard
    async def _list_scans(self, request: Request, params: Params, rid: str) -> Response:
        return self._json({"scans": [s.summary() for s in self.account.scans]}, rid)

    async def _recommendations(self, request: Request, params: Params, rid: str) -> Response:
        body = await self._object_body(request)
        _unknown_fields(body, RECOMMENDATION_FIELDS, "scans-recommendations body")
        scan_id = body.get("scanId")
        if not isinstance(scan_id, str) or not scan_id:  # finout-api.md:134 (body {"scanId", ...})
            raise ApiError(400, "scanId is required (see GET /cost-guard/scans)")
        scan = self.account.scan(scan_id)
        if scan is None:
            raise ApiError(404, f"Scan {scan_id} not found")  # finout-api.md:44 (404)
        filters = body.get("filters")
        if filters is not None:
            try:
                validate_filter(filters, None)
            except FilterError as exc:
                raise ApiError(400, str(exc)) from None
        group_by = body.get("groupBy")  # finout-api.md:136 (groupBy is {"costCenter", "key"})
        if group_by is not None and (
            not isinstance(group_by, dict)
            or not isinstance(group_by.get("costCenter"), str)
            or not isinstance(group_by.get("key"), str)
        ):
            raise ApiError(400, 'groupBy must be {"costCenter": ..., "key": ...}')
        resources = [r for r in scan.resources if filters is None or matches(filters, r.attrs)]
        groups: dict[str, list[Any]] = {}
        for res in resources:
            if group_by is None:
                name = "Total"
            else:
                name = res.attrs.get((group_by["costCenter"], group_by["key"])) or "N/A"
            groups.setdefault(name, []).append(res)
        data = []
        for name, members in sorted(groups.items(), key=lambda kv: -sum(r.total_waste for r in kv[1])):
            data.append(
                {
                    "group": name,
                    "groupTotalCost": round(sum(r.total_cost for r in members), 2),
                    "groupTotalWaste": round(sum(r.total_waste for r in members), 2),
                    "groupYearlyPotentialSavings": round(sum(r.yearly_savings for r in members), 2),
                    "resources": [r.as_json() for r in members],
                }
            )
        return self._json(
            {
                "scanName": scan.name,
                "scanLastRunTime": scan.last_run_ms,
                "scanTotalCost": round(sum(r.total_cost for r in resources), 2),
                "scanTotalWaste": round(sum(r.total_waste for r in resources), 2),
                "scanYearlyPotentialSavings": round(sum(r.yearly_savings for r in resources), 2),
                "scanMetadata": scan.metadata(),
                "data": data,
            },
            rid,
        )

    # ================================================================ endpoints
    async def _list_endpoints(self, request: Request, params: Params, rid: str) -> Response:
        return self._json({"endpoints": copy.deepcopy(self.account.endpoints)}, rid)

    async def _create_endpoint(self, request: Request, params: Params, rid: str) -> Response:
        body = await self._object_body(request)
        _unknown_fields(body, ENDPOINT_BODY_FIELDS, "endpoint body")
        kind = body.get("type")
        if kind not in ENDPOINT_TYPES:  # finout-api.md:151,153-154 (email or slack; MS Teams not via the API)
            raise ApiError(
                400, f"type must be 'email' or 'slack' (got {kind!r}); MS Teams cannot be created via API"
            )
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        config = body.get("configuration")
        if config is not None and (not isinstance(config, dict) or set(config) - {"to"}):
            raise ApiError(400, 'configuration must be {"to": <address or webhook>}')
        # finout-api.md:151 (configuration.to) and :28-30 (`to` at top level on an older page): either
        # place, or both when they agree
        nested, top = (config or {}).get("to"), body.get("to")
        if nested is not None and top is not None and nested != top:
            raise ApiError(400, "configuration.to and to differ; give the target once, or the same in both")
        to = nested if nested is not None else top
        if not isinstance(to, str) or not to.strip():
            raise ApiError(400, "configuration.to is required")
        # [assumed] address checks: the pages say "email address" and "Slack webhook URL" (finout-api.md:154)
        if kind == "email" and "@" not in to:
            raise ApiError(400, "configuration.to must be an email address for an email endpoint")
        if kind == "slack" and not to.startswith("https://"):
            raise ApiError(400, "configuration.to must be a Slack webhook URL (https://...) for a slack endpoint")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        stamp = now.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")
        endpoint = {
            "id": self.account.next_id("endpoint"),
            "type": kind,
            "name": name,
            "configuration": {"to": to},
            "createdBy": "API",
            "createdAt": stamp,
        }
        self.account.endpoints.append(endpoint)
        out = {**copy.deepcopy(endpoint), "accountId": self.account.account_id, "updatedAt": stamp}
        return self._json({"endpoint": out}, rid)
