"""Pydantic models of the Finout v1 API: strict recognition, tolerant types.

Every response model keeps unknown fields (``extra="allow"``) so a field Finout adds
tomorrow is not lost on a read-modify-write. Field names are snake_case in Python and
camelCase on the wire (``by_alias=True`` when dumping).

**Strict recognition.** Each whole response (:class:`Response`) names its main field in
``MAIN`` (``virtualTags``, ``keys``, ``metadata``…). It is required: a body without it is
never read as an empty list. The only alternative accepted is the one Finout's v2 pages
and public clients use, the same field under ``data`` (``{"data": {"values": [...]}}``);
:meth:`Response.recognise` lifts it. Anything else is a malformed response (the client
names the operation and the field).

**Tolerant types** (each widening cites ``finout-api.md``): ``defaultValue`` a string or an
object; times in epoch ms, epoch seconds or ISO/JavaScript date strings; numbers as
strings; ids as numbers; ``resourceId`` optional; metadata ``endpoints`` items ids or
``{"endpoint": id}``; an e-mail endpoint's ``to`` in ``configuration`` or at top level.
What was read is sent back in the shape it was read (see :meth:`VirtualTag.write_body`,
:meth:`ValueMetadata.wire`).

A *filter* is kept as plain JSON (``FinoutFilter``): it is a recursive union of a
condition and AND/OR groups whose exact shape the filter model (``finout_mcp.filters``)
validates and canonicalises. Models here only carry it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass as pydantic_dataclass

FinoutFilter = dict[str, Any]
"""A Finout filter as JSON: ``{"costCenter","key","operator","value"?}`` or ``{"AND"|"OR": [...]}``."""

VIRTUAL_TAGS = "Virtual Tags"
"""The cost center of virtual tags: a condition on a tag, and a ``to`` taking another tag's value."""

CostType = Literal["blendedCost", "unblendedCost", "netUnblendedCost", "amortizedCost", "netAmortizedCost"]
COST_TYPES: tuple[str, ...] = (
    "blendedCost",
    "unblendedCost",
    "netUnblendedCost",
    "amortizedCost",
    "netAmortizedCost",
)

# Fields that Finout owns: never sent back in a POST/PUT body. ``category`` is not one of
# them: it is part of the tag object (finout-api.md "Tag object [doc]") and a PUT that
# replaces the tag must carry it back, or the tag loses its category.
SERVER_OWNED_FIELDS = frozenset(
    {
        "id",
        "accountId",
        "createdAt",
        "updatedAt",
        "createdBy",
        "updatedBy",
        "requestId",
        "displayName",
    }
)

# ----------------------------------------------------------------------------- times

_JS_DATE = re.compile(r"^[A-Z][a-z]{2} ([A-Z][a-z]{2} \d{1,2} \d{4} \d{2}:\d{2}:\d{2}) GMT([+-]\d{4})")
_SECONDS_BELOW = 100_000_000_000  # epoch ms before 1973-03-03: the value is in seconds


def parse_moment(value: Any) -> int | None:
    """Epoch milliseconds from what Finout sends for a time: ms or seconds (number or numeric
    string), an ISO-8601 string, or a JavaScript ``Date.toString()`` string
    (finout-api.md "Basics": ms for scan run times and timeframes, JS strings for createdAt;
    finout-api-v1-live.md §2: the docs' own example uses seconds). ``None`` stays ``None``;
    anything else raises ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a time must be a number or a date string, not a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return _parse_date_text(text)
    else:
        raise ValueError(f"a time must be a number or a date string, not {type(value).__name__}")
    if abs(number) < _SECONDS_BELOW:
        number *= 1000
    return int(number)


def _parse_date_text(text: str) -> int:
    js = _JS_DATE.match(text)
    try:
        if js:
            moment = dt.datetime.strptime(f"{js.group(1)} {js.group(2)}", "%b %d %Y %H:%M:%S %z")
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a recognised time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def iso_utc(value: Any) -> str | None:
    """A time as Finout sent it (JS date string, ISO, ms or seconds) as ISO 8601 UTC for people,
    e.g. ``2023-06-10T16:06:25Z``; ``None`` for no time or one that cannot be read."""
    try:
        ms = parse_moment(value)
    except ValueError:
        return None
    if ms is None:
        return None
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


EpochMs = Annotated[int, BeforeValidator(parse_moment)]
"""A time read from Finout, normalised to epoch ms (only for fields never sent back)."""

Moment = int | str
"""A time that is sent back (a rule's timeframe): kept exactly as read; see :func:`parse_moment`."""


class ApiModel(BaseModel):
    """Base: camelCase aliases, populate by either name, keep unknown fields."""

    # ids and request ids are strings although a field table says number (finout-api.md,
    # "Widen, don't narrow"): a number is read as its text.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", coerce_numbers_to_str=True
    )

    def wire(self) -> dict[str, Any]:
        """The JSON body as Finout expects it (aliases, no ``None``)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Response(ApiModel):
    """A whole response body whose field ``MAIN`` (wire name) is required.

    Documented alternative: the same field one level down, under ``data`` (Finout v2 and
    public clients, finout-api.md "Corrections": "recognise them strictly"). Nothing else.
    """

    MAIN: ClassVar[str]

    @classmethod
    def recognise(cls, data: Any) -> tuple[Any, str | None]:
        """``(body with MAIN at the top, None)`` or ``(data, what is missing)``."""
        if not isinstance(data, dict):
            return data, f"the body is {_json_kind(data)}, not an object with `{cls.MAIN}`"
        if cls.MAIN in data:
            return data, None
        inner = data.get("data")
        if cls.MAIN != "data" and isinstance(inner, dict) and cls.MAIN in inner:
            return {**data, cls.MAIN: inner[cls.MAIN]}, None
        alt = "" if cls.MAIN == "data" else f" (nor `data.{cls.MAIN}`)"
        return data, f"no `{cls.MAIN}` field{alt}"


def _json_kind(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    return type(data).__name__


def shape_of(data: Any, depth: int = 2, width: int = 8) -> str:
    """A sketch of a JSON value's structure without any of its values (so no secret can leak):
    ``{data: {values: list[3] of object{value}}, requestId: str}``."""
    if isinstance(data, dict):
        if depth <= 0:
            return "object"
        items = list(data.items())
        parts = [f"{k[:40]}: {shape_of(v, depth - 1, width)}" for k, v in items[:width]]
        if len(items) > width:
            parts.append(f"+{len(items) - width} more")
        return "{" + ", ".join(parts) + "}"
    if isinstance(data, list):
        if not data:
            return "list[0]"
        first = data[0]
        inner = (
            ("object{" + ",".join(list(first)[:width]) + "}") if isinstance(first, dict) else shape_of(first, 0)
        )
        return f"list[{len(data)}] of {inner}"
    if isinstance(data, bool):
        return "bool"
    if data is None:
        return "null"
    if isinstance(data, int | float):
        return "number"
    if isinstance(data, str):
        return "str"
    return type(data).__name__


# ----------------------------------------------------------------------------- views


class View(ApiModel):
    id: str
    name: str


class ViewList(Response):
    MAIN = "data"  # GET /view -> {"data": [{"name","id"}]} (finout-api.md "Views and costs")
    data: list[View]
    request_id: str | None = None


class CostPoint(ApiModel):
    """One day of one series. ``cost`` may be null on the wire: use :attr:`amount`."""

    time: EpochMs  # epoch ms, UTC midnight of the day (ms or an ISO string on the wire)
    cost: float | None = 0.0

    @property
    def amount(self) -> float:
        return self.cost or 0.0


class CostSeries(ApiModel):
    name: str
    data: list[CostPoint]

    @property
    def is_total(self) -> bool:
        return self.name == "Total"


class DateRange(ApiModel):
    """A cost query's range in epoch milliseconds: first day 00:00:00.000 to last day 23:59:59.999 UTC."""

    unix_time_mill_seconds_start: int
    unix_time_mill_seconds_end: int


class CostQueryRequest(ApiModel):
    """The body of ``POST /cost/query-by-view``; no ``date``: the view's saved range."""

    view_id: str
    date: DateRange | None = None
    cost_type: CostType | None = None


class CostQueryResponse(Response):
    MAIN = "data"  # {"data": [{"name": "Total", "data": [...]}, ...]} (finout-api.md, [seen])
    data: list[CostSeries]
    request: dict[str, Any] | None = None
    request_id: str | None = None

    @property
    def total(self) -> CostSeries | None:
        return next((s for s in self.data if s.is_total), None)

    @property
    def groups(self) -> list[CostSeries]:
        return [s for s in self.data if not s.is_total]


# ----------------------------------------------------------------------------- megabill


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(alias_generator=to_camel, populate_by_name=True))
class MegabillKey:
    """One MegaBill key. A slotted dataclass, not a model: an account can have 50,000 keys,
    and a model instance (dict, fields-set, extras) costs about three times the memory.
    Keys are only read, so no unknown field needs keeping."""

    cost_center: str
    key: str
    display_name: str | None = None

    @property
    def label(self) -> str:
        return self.display_name or self.key


class KeyList(Response):
    MAIN = "keys"  # {"keys": [{"costCenter","key","displayName"}]} (finout-api.md "MegaBill query language")
    keys: list[MegabillKey]
    request_id: str | None = None
    account_id: str | None = None


class ValueList(Response):
    """``{"values": [...]}`` (finout-api.md: [assumed]); values may be strings, numbers or
    ``{"value": ...}`` / ``{"name": ...}`` objects (the v2 shape), under ``values`` or
    ``data.values``. An item of any other kind fails the response: it is never dropped."""

    MAIN = "values"
    values: list[str]
    request: dict[str, Any] | None = None
    request_id: str | None = None
    account_id: str | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        if not isinstance(v, list) or all(type(x) is str for x in v):
            return v  # the usual case: 200,000 strings pass without a copy
        out: list[str] = []
        for i, x in enumerate(v):
            if isinstance(x, dict):
                x = x.get("value", x.get("name"))
                if x is None:
                    raise ValueError(f"item {i} is an object without `value` or `name`")
            if x is None:
                continue
            if isinstance(x, bool) or not isinstance(x, str | int | float):
                raise ValueError(f"item {i} is not a string, number or {{value}} object")
            out.append(x if isinstance(x, str) else str(x))
        return out


# ----------------------------------------------------------------------------- virtual tags


class TagReference(ApiModel):
    """A rule's ``to`` (or a tag's ``defaultValue``) as an object: take the value of another
    virtual tag (finout-api.md "Virtual tags": ``{"key": <tag id>, "costCenter": "Virtual Tags"}``)."""

    key: str
    cost_center: str = VIRTUAL_TAGS


class Timeframe(ApiModel):
    """A rule's period (finout-api.md: ``{"from": ms, "to": ms}``; either end may be left open).
    Kept as read (ms or a date string) because it is sent back; :meth:`bounds_ms` compares."""

    from_: Moment | None = Field(default=None, alias="from", validation_alias=AliasChoices("from", "from_"))
    to: Moment | None = None

    def bounds_ms(self) -> tuple[int | None, int | None]:
        """``(from, to)`` in epoch ms (``None`` for an open end or an unreadable time)."""

        def ms(v: Moment | None) -> int | None:
            try:
                return parse_moment(v)
            except ValueError:
                return None

        return ms(self.from_), ms(self.to)

    def in_ms(self) -> Timeframe:
        """The same period in epoch ms, the documented form for a new rule; ``ValueError`` names an
        unreadable time."""
        return Timeframe.model_validate({"from": parse_moment(self.from_), "to": parse_moment(self.to)})


def rule_number(position: int) -> int:
    """The rule number users see, from a 0-based list position: rules are numbered from 1 (rule 1 is
    evaluated first) in every readable answer; only a JSON ``path`` such as ``rules[0]`` is 0-based."""
    return position + 1


class VirtualTagRule(ApiModel):
    to: str | TagReference
    filters: FinoutFilter | None = None
    timeframe: Timeframe | None = None


DefaultValue = str | TagReference
"""A tag's ``defaultValue``: a string (``"untagged"``) or, in newer pages, an object
``{key, costCenter}`` (finout-api.md "Corrections": "defaultValue may be an object")."""


class VirtualTag(ApiModel):
    id: str
    name: str
    rules: list[VirtualTagRule] = Field(default_factory=list)
    default_value: DefaultValue | None = None
    account_id: str | None = None
    category: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    def write_body(self, **changes: Any) -> VirtualTagWrite:
        """The PUT body that gives this tag back as it was read, with ``changes`` applied:
        every field Finout does not own (``category`` and fields we do not know included)
        goes back in the shape it came in (finout-api.md: PUT **replaces** the tag)."""
        data = {
            k: v for k, v in self.model_dump(by_alias=True, mode="json").items() if k not in SERVER_OWNED_FIELDS
        }
        if self.default_value is None:
            data.pop("defaultValue", None)
        if self.category is None:
            data.pop("category", None)
        body = VirtualTagWrite.model_validate(data)
        return body.model_copy(update=changes) if changes else body


class VirtualTagList(Response):
    MAIN = "virtualTags"  # {"virtualTags": [...], "accountId", "requestId"} (finout-api.md "Virtual tags")
    virtual_tags: list[VirtualTag]
    account_id: str | None = None
    request_id: str | None = None


class VirtualTagWrite(ApiModel):
    """Body of POST/PUT /virtual-tags: what the client owns, plus (on PUT) what was read and
    not understood, which goes back untouched."""

    name: str
    rules: list[VirtualTagRule]
    default_value: DefaultValue | None = None


class EndpointRef(ApiModel):
    """A metadata endpoint given as ``{"endpoint": id}`` (the PUT table's example,
    finout-api-v1-live.md §6), beside plain ids (the GET example)."""

    endpoint: str


def endpoint_id(ref: str | EndpointRef) -> str:
    return ref if isinstance(ref, str) else ref.endpoint


class ValueMetadata(ApiModel):
    """Metadata of one tag value. Each field is optional on the wire (the GET example's
    "DevOps Team" has no ``endpoints``, finout-api-v1-live.md §6); :meth:`wire` sends back
    only the fields that were read or set, so reading and writing back changes nothing."""

    groups: list[str] = Field(default_factory=list)
    custom_metadata: dict[str, Any] = Field(default_factory=dict)
    endpoints: list[str | EndpointRef] = Field(default_factory=list)

    @property
    def endpoint_ids(self) -> list[str]:
        return [endpoint_id(e) for e in self.endpoints]

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")

    def comparable(self) -> dict[str, Any]:
        """The content, for comparing a read-back with what was sent: endpoint references by id,
        list order and absent-versus-empty lists ignored."""
        return {
            "groups": sorted(self.groups),
            "customMetadata": self.model_dump(by_alias=True, mode="json")["customMetadata"],
            "endpoints": sorted(self.endpoint_ids),
        }


def metadata_body(metadata: dict[str, ValueMetadata]) -> dict[str, Any]:
    """The PUT /virtual-tags/{id}/metadata body: the bare map keyed by tag value, **never**
    wrapped in ``{"metadata": ...}`` (finout-api.md "Corrections", first item)."""
    return {value: m.wire() for value, m in metadata.items()}


class VirtualTagMetadata(Response):
    MAIN = (
        "metadata"  # GET -> {"metadata": {"<value>": {...}}, "requestId"} (finout-api.md "Virtual tag metadata")
    )
    metadata: dict[str, ValueMetadata]
    request_id: str | None = None


# ----------------------------------------------------------------------------- cost guard


class ScanMetadata(ApiModel):
    type: str | None = None  # "idle" | "rightsizing"
    cost_center: str | None = None
    analysis_days: int | None = None


class Scan(ApiModel):
    scan_id: str
    scan_name: str
    # ms in the example; missing in another snapshot (finout-api.md "Corrections"); strings tolerated
    scan_last_run_time: EpochMs | None = None
    scan_metadata: ScanMetadata = Field(default_factory=ScanMetadata)


class ScanList(Response):
    MAIN = "scans"  # {"scans": [...], "requestId"} (finout-api.md "CostGuard")
    scans: list[Scan]
    request_id: str | None = None


class GroupBy(ApiModel):
    cost_center: str
    key: str


class RecommendationsRequest(ApiModel):
    scan_id: str
    filters: FinoutFilter | None = None
    group_by: GroupBy | None = None


class Resource(ApiModel):
    resource_id: str | None = None  # no page promises it on every resource
    resource_metadata: dict[str, Any] = Field(default_factory=dict)
    resource_metrics: dict[str, Any] = Field(default_factory=dict)
    resource_recommendations: dict[str, Any] = Field(default_factory=dict)
    resource_total_cost: float = 0.0
    resource_total_waste: float = 0.0
    resource_yearly_potential_savings: float = 0.0


class RecommendationGroup(ApiModel):
    group: str = "Total"
    group_total_cost: float = 0.0
    group_total_waste: float = 0.0
    group_yearly_potential_savings: float = 0.0
    resources: list[Resource] = Field(default_factory=list)


class ScanRecommendations(Response):
    MAIN = "data"  # the list of groups (finout-api.md "CostGuard": "[doc fields; nesting seen]")
    scan_name: str | None = None
    scan_last_run_time: EpochMs | None = None
    scan_total_cost: float = 0.0
    scan_total_waste: float = 0.0
    scan_yearly_potential_savings: float = 0.0
    scan_metadata: ScanMetadata = Field(default_factory=ScanMetadata)
    data: list[RecommendationGroup]
    request_id: str | None = None


# ----------------------------------------------------------------------------- endpoints

EndpointType = Literal["email", "slack"]


class EndpointConfiguration(ApiModel):
    to: str | None = None


class Endpoint(ApiModel):
    """A notification endpoint. Its target ``to`` sits in ``configuration`` in the newest
    examples and at top level in an older field table; e-mail examples even show an empty
    ``configuration`` (finout-api.md "Corrections", "Endpoints"): read both, see :attr:`target`."""

    id: str
    type: str  # "email" | "slack" | "msteams" | future kinds
    name: str
    configuration: EndpointConfiguration | None = None
    to: str | None = None
    created_by: str | None = None
    created_at: str | None = None

    @property
    def target(self) -> str | None:
        """Where it sends (address or webhook), from either place; ``None`` when the API shows none."""
        nested = self.configuration.to if self.configuration is not None else None
        return nested or self.to or None


class EndpointList(Response):
    MAIN = "endpoints"  # {"endpoints": [...], "requestId"} (finout-api.md "Endpoints")
    endpoints: list[Endpoint]
    request_id: str | None = None


class EndpointCreate(ApiModel):
    """POST /endpoints body. ``to`` goes in ``configuration`` (every JSON example) **and** at top
    level (the older page's table row): one body that works under either reading."""

    type: EndpointType
    name: str
    configuration: EndpointConfiguration
    to: str | None = None

    @classmethod
    def of(cls, type_: EndpointType, name: str, to: str) -> EndpointCreate:
        return cls(type=type_, name=name, configuration=EndpointConfiguration(to=to), to=to)


class EndpointCreated(ApiModel):
    endpoint: Endpoint
    request_id: str | None = None
