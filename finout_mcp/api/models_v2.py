"""Pydantic models of the Finout API v2 (``finout-api-v2.md``), parsed strictly.

Every payload sits under ``data`` next to ``requestId``. Fields the documents promise are
*required*: a response without them is a :class:`~finout_mcp.api.errors.MalformedResponseError`
naming the field, never an empty success. Unknown fields are kept (``extra="allow"``).

Where the models rely on the third-party spec rather than Finout's page text, the field says
``[spec]`` in its comment; ``finout-mcp doctor`` checks those shapes on a live account.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

KeyType = str  # tag, billing_dimension, resource, … [spec enum]; kept open: a new type is not an error
Interval = Literal["day", "week", "month"]
QueryStatus = Literal["queued", "running", "completed", "failed", "expired"]  # [spec]
MeasurementType = Literal[
    "blendedCost",
    "unblendedCost",
    "netUnblendedCost",
    "amortizedCost",
    "netAmortizedCost",
    "listCost",
    "usageAmount",
    "normalizedUsageAmount",
]  # [spec]
USAGE_MEASUREMENTS = frozenset({"usageAmount", "normalizedUsageAmount"})


class V2Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class V2Key(V2Model):
    """A Query Language v2 key [doc:v2/ql]: its cost center, key, display name and types."""

    cost_center: str
    key: str
    display_name: str | None = None
    types: list[KeyType] = Field(min_length=1)


class V2KeysData(V2Model):
    keys: list[V2Key]


class V2KeyList(V2Model):
    request_id: str | None = None
    data: V2KeysData


class V2ValuesData(V2Model):
    values: list[str]

    @field_validator("values", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [x if isinstance(x, str) else str(x) for x in v if x is not None]
        return v


class V2ValueList(V2Model):
    request_id: str | None = None
    data: V2ValuesData  # [spec]


class QueryCreatedData(V2Model):
    query_id: str = Field(min_length=1)


class QueryCreated(V2Model):
    request_id: str | None = None
    data: QueryCreatedData  # [spec]; the page says only that it "returns a queryId"


class QueryStatusData(V2Model):
    status: QueryStatus
    completed_at: str | None = None  # [spec]
    expired_at: str | None = None  # [spec]
    total_rows: int | None = Field(default=None, ge=0)  # [spec]


class QueryStatusResponse(V2Model):
    request_id: str | None = None
    data: QueryStatusData


class Pagination(V2Model):
    has_more: bool  # [spec]
    total_rows: int | None = Field(default=None, ge=0)  # [spec]
    next_cursor: str | None = None  # [spec]; absent when has_more is false


class Amount(BaseModel):
    """A measurement cell ``{"amount": number, "unit"?: string}`` [spec]."""

    model_config = ConfigDict(extra="allow")

    amount: float
    unit: str | None = None


class QueryResultsPage(V2Model):
    request_id: str | None = None
    pagination: Pagination
    data: list[dict[str, Any]]  # rows; their keys follow the [spec] naming rule, checked when read


__all__ = [
    "USAGE_MEASUREMENTS",
    "Amount",
    "Interval",
    "KeyType",
    "MeasurementType",
    "Pagination",
    "QueryCreated",
    "QueryResultsPage",
    "QueryStatus",
    "QueryStatusResponse",
    "V2Key",
    "V2KeyList",
    "V2ValueList",
]
