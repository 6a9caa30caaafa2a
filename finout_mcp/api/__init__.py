"""The Finout API layer: settings-driven async client, typed errors and models."""

from finout_mcp.api.client import ClientStats, FinoutClient
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
)

__all__ = [
    "APITimeoutError",
    "AuthenticationError",
    "ClientStats",
    "ConflictError",
    "FinoutAPIStatusError",
    "FinoutClient",
    "FinoutError",
    "InvalidRequestError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "UnprocessableError",
]
