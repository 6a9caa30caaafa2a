"""Pydantic models of the Finout v1 API, parsed defensively.

Every response model keeps unknown fields (``extra="allow"``) so a field Finout adds
tomorrow is not lost on a read-modify-write. Field names are snake_case in Python and
camelCase on the wire (``by_alias=True`` when dumping).

A *filter* is kept as plain JSON (``FinoutFilter``): it is a recursive union of a
condition and AND/OR groups whose exact shape the composer (``services.composer``)
validates and canonicalises. Models here only carry it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass as pydantic_dataclass

FinoutFilter = dict[str, Any]
"""A Finout filter as JSON: ``{"costCenter","key","operator","value"?}`` or ``{"AND"|"OR": [...]}``."""

CostType = Literal["blendedCost", "unblendedCost", "netUnblendedCost", "amortizedCost", "netAmortizedCost"]
COST_TYPES: tuple[str, ...] = (
    "blendedCost",
    "unblendedCost",
    "netUnblendedCost",
    "amortizedCost",
    "netAmortizedCost",
)

# Fields that Finout owns: never sent back in a POST/PUT body.
SERVER_OWNED_FIELDS = frozenset(
    {
        "id",
        "accountId",
        "createdAt",
        "updatedAt",
        "createdBy",
        "updatedBy",
        "requestId",
        "category",
        "displayName",
    }
)


def strip_display_names(value: Any) -> Any:
    """A copy of a filter (or any JSON) without ``displayName`` at any depth: GET responses add
    it to conditions, and POST/PUT must never send it back."""
    if isinstance(value, dict):
        return {k: strip_display_names(v) for k, v in value.items() if k != "displayName"}
    if isinstance(value, list):
        return [strip_display_names(v) for v in value]
    return value


class ApiModel(BaseModel):
    """Base: camelCase aliases, populate by either name, keep unknown fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def wire(self) -> dict[str, Any]:
        """The JSON body as Finout expects it (aliases, no ``None``)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ----------------------------------------------------------------------------- views


class View(ApiModel):
    id: str
    name: str


class ViewList(ApiModel):
    data: list[View] = Field(default_factory=list)
    request_id: str | None = None


class CostPoint(ApiModel):
    """One day of one series. ``cost`` may be null on the wire: use :attr:`amount`."""

    time: int  # epoch ms, UTC midnight of the day
    cost: float | None = 0.0

    @property
    def amount(self) -> float:
        return self.cost or 0.0


class CostSeries(ApiModel):
    name: str
    data: list[CostPoint] = Field(default_factory=list)

    @property
    def is_total(self) -> bool:
        return self.name == "Total"


class DateRange(ApiModel):
    unix_time_mill_seconds_start: int
    unix_time_mill_seconds_end: int


class CostQueryRequest(ApiModel):
    view_id: str
    date: DateRange | None = None
    cost_type: CostType | None = None


class CostQueryResponse(ApiModel):
    data: list[CostSeries] = Field(default_factory=list)
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


class KeyList(ApiModel):
    keys: list[MegabillKey] = Field(default_factory=list)
    request_id: str | None = None
    account_id: str | None = None


class ValueList(ApiModel):
    values: list[str] = Field(default_factory=list)
    request: dict[str, Any] | None = None
    request_id: str | None = None
    account_id: str | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [x if isinstance(x, str) else str(x) for x in v if x is not None]
        return v


# ----------------------------------------------------------------------------- virtual tags


class TagReference(ApiModel):
    """A rule's ``to`` as an object: take the value of another virtual tag."""

    key: str
    cost_center: str = "Virtual Tags"


class Timeframe(ApiModel):
    from_: int | None = Field(default=None, alias="from", validation_alias=AliasChoices("from", "from_"))
    to: int | None = None


class VirtualTagRule(ApiModel):
    to: str | TagReference
    filters: FinoutFilter | None = None
    timeframe: Timeframe | None = None


class VirtualTag(ApiModel):
    id: str
    name: str
    rules: list[VirtualTagRule] = Field(default_factory=list)
    default_value: str | None = None
    account_id: str | None = None
    category: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class VirtualTagList(ApiModel):
    virtual_tags: list[VirtualTag] = Field(default_factory=list)
    account_id: str | None = None
    request_id: str | None = None


class VirtualTagWrite(ApiModel):
    """Body of POST/PUT /virtual-tags: only what the client owns."""

    name: str
    rules: list[VirtualTagRule]
    default_value: str | None = None


class ValueMetadata(ApiModel):
    groups: list[str] = Field(default_factory=list)
    custom_metadata: dict[str, Any] = Field(default_factory=dict)
    endpoints: list[str] = Field(default_factory=list)


class VirtualTagMetadata(ApiModel):
    metadata: dict[str, ValueMetadata] = Field(default_factory=dict)
    request_id: str | None = None


# ----------------------------------------------------------------------------- cost guard


class ScanMetadata(ApiModel):
    type: str | None = None  # "idle" | "rightsizing"
    cost_center: str | None = None
    analysis_days: int | None = None


class Scan(ApiModel):
    scan_id: str
    scan_name: str
    scan_last_run_time: int | None = None
    scan_metadata: ScanMetadata = Field(default_factory=ScanMetadata)


class ScanList(ApiModel):
    scans: list[Scan] = Field(default_factory=list)
    request_id: str | None = None


class GroupBy(ApiModel):
    cost_center: str
    key: str


class RecommendationsRequest(ApiModel):
    scan_id: str
    filters: FinoutFilter | None = None
    group_by: GroupBy | None = None


class Resource(ApiModel):
    resource_id: str
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


class ScanRecommendations(ApiModel):
    scan_name: str | None = None
    scan_last_run_time: int | None = None
    scan_total_cost: float = 0.0
    scan_total_waste: float = 0.0
    scan_yearly_potential_savings: float = 0.0
    scan_metadata: ScanMetadata = Field(default_factory=ScanMetadata)
    data: list[RecommendationGroup] = Field(default_factory=list)
    request_id: str | None = None


# ----------------------------------------------------------------------------- endpoints

EndpointType = Literal["email", "slack"]


class EndpointConfiguration(ApiModel):
    to: str | None = None


class Endpoint(ApiModel):
    id: str
    type: str  # "email" | "slack" | "msteams" | future kinds
    name: str
    configuration: EndpointConfiguration | None = None
    created_by: str | None = None
    created_at: str | None = None


class EndpointList(ApiModel):
    endpoints: list[Endpoint] = Field(default_factory=list)
    request_id: str | None = None


class EndpointCreate(ApiModel):
    type: EndpointType
    name: str
    configuration: EndpointConfiguration


class EndpointCreated(ApiModel):
    endpoint: Endpoint
    request_id: str | None = None
