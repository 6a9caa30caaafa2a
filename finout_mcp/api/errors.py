"""Typed errors of the Finout API client, keyed by HTTP status.

::

    FinoutError                          .status .message .request_id .retryable .hint .method .path
    ├─ FinoutAPIStatusError              any non-2xx answer
    │  ├─ InvalidRequestError      400   (and any other 4xx without its own class)
    │  │  ├─ ConflictError         409
    │  │  └─ UnprocessableError    422   invalid virtual tag, or a query that cannot be computed
    │  ├─ AuthenticationError      401
    │  ├─ PermissionDeniedError    403
    │  ├─ NotFoundError            404
    │  ├─ RateLimitedError         429   .retry_after; retryable
    │  └─ ServerError              5xx   retryable for 502/503/504 only; a 500 is not retried
    ├─ TransportError                    no HTTP answer: connection failed, timed out, dropped
    │  └─ APITimeoutError                a timeout (also a built-in ``TimeoutError``)
    └─ MalformedResponseError            an answer whose body is not the documented JSON

``str(err)`` is one compact sentence written for a model: status, operation, Finout's
message, its ``requestId`` and what to do next. Errors never hold the request (httpx
requests carry the auth headers), never chain to an httpx exception, and every text in
them went through :func:`finout_mcp.redact.scrub` with the account's secrets.

This layer knows API operations, not tools: ``subject`` (``"virtual tag"``, ``"view"``…) and
``ident`` say what a failed call was about, and the server layer turns them into advice that
names its tools.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class FinoutError(Exception):
    """Base of every error the Finout client raises.

    Attributes: ``status`` (HTTP status or ``None``), ``message`` (Finout's own message, or a
    short reason), ``request_id`` (Finout's ``requestId``), ``retryable`` (retrying the same
    call later may succeed), ``hint`` (what the user or model can do), ``method`` and ``path``
    (the URL path only, never a query string or header), ``outcome_unknown`` (a write that may
    or may not have been applied), ``retry_after`` (seconds the server asked to wait, if any),
    ``attempts`` (how many times the request was sent).
    """

    default_hint = "Retry later; if it persists, check the Finout status page."
    default_retryable = False
    subject: str | None = None  # what the call was about: "view", "virtual tag", "MegaBill key", ...
    ident: str | None = None  # the id in its path or body, if any

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.retry_after = retry_after  # seconds, from a Retry-After header
        self.status = status
        self.request_id = request_id
        self.method = method
        self.path = path
        self.hint = hint if hint is not None else self.default_hint
        self.retryable = self.default_retryable if retryable is None else retryable
        self.outcome_unknown = outcome_unknown
        self.attempts = 1  # how many times the request was sent before this error was raised
        super().__init__(message)

    @property
    def operation(self) -> str:
        if self.method and self.path:
            return f"{self.method} {self.path}"
        return self.path or "the request"

    def _headline(self) -> str:
        return f"Finout API request {self.operation} failed"

    def __str__(self) -> str:
        text = self._headline()
        if self.message:
            text += f": {self.message.rstrip('.')}"
        if self.request_id:
            text += f" (requestId {self.request_id})"
        text += "."
        if self.hint:
            text += f" {self.hint}"
        return text

    def __repr__(self) -> str:
        fields = [f"status={self.status!r}", f"method={self.method!r}", f"path={self.path!r}"]
        if self.request_id:
            fields.append(f"request_id={self.request_id!r}")
        fields.append(f"message={self.message!r}")
        return f"{type(self).__name__}({', '.join(fields)})"

    def __reduce__(self) -> tuple[object, ...]:  # pickle without re-running __init__ positionally
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[FinoutError], state: dict[str, object]) -> FinoutError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class FinoutAPIStatusError(FinoutError):
    """Finout answered with a non-2xx status."""

    def _headline(self) -> str:
        status = f"{self.status} {_phrase(self.status or 0)}".strip()
        return f"Finout API returned {status} for {self.operation}"


class InvalidRequestError(FinoutAPIStatusError):
    """400 (and 4xx without a dedicated class): the request itself is wrong."""

    default_hint = "Fix the arguments (ids, filter, dates) and call again; retrying as is will fail again."


class ConflictError(InvalidRequestError):
    """409: conflicts with the current state (e.g. a duplicate name)."""

    default_hint = "It conflicts with something that exists (often a duplicate name); list first, then change it."


class UnprocessableError(InvalidRequestError):
    """422: a virtual tag's composition is invalid, or a query cannot be computed."""

    default_hint = "Finout could not process it as given; fix the content and call again."


class AuthenticationError(FinoutAPIStatusError):
    """401: the credentials were refused."""

    default_hint = (
        "Check FINOUT_CLIENT_ID and FINOUT_SECRET_KEY; if the token was revoked or expired, generate a new "
        "one in the Finout Admin Portal → API Tokens and restart finout-mcp."
    )


class PermissionDeniedError(FinoutAPIStatusError):
    """403: the token is valid but its role lacks access."""

    default_hint = "The API token's role lacks access to this operation; ask a Finout admin for access."


class NotFoundError(FinoutAPIStatusError):
    """404: no such view, tag, scan, key or endpoint — or, when every path answers 404
    (``base_url_wrong``), the base URL is not Finout's API."""

    default_hint = "Check the id."
    base_url_wrong = False


class RateLimitedError(FinoutAPIStatusError):
    """429: more than five concurrent requests for this API key (or another limit)."""

    default_hint = "Finout allows 5 concurrent requests per API key; wait a few seconds and retry."
    default_retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        if hint is None and retry_after is not None:
            hint = f"Finout is rate limiting this API key; retry after {retry_after:g} s."
        super().__init__(
            message,
            status=status,
            request_id=request_id,
            method=method,
            path=path,
            hint=hint,
            retryable=retryable,
            outcome_unknown=outcome_unknown,
            retry_after=retry_after,
        )


class ServerError(FinoutAPIStatusError):
    """5xx. 502/503/504 are retryable (gateway or overload); 500 is not (usually deterministic)."""

    default_hint = "Finout had a server-side problem; retry later, and report the requestId if it persists."


class TransportError(FinoutError):
    """No HTTP answer: connection refused or reset, DNS failure, timeout."""

    default_hint = "Could not reach Finout; check the network and FINOUT_API_URL, then retry."
    default_retryable = True

    def _headline(self) -> str:
        return f"Could not complete {self.operation} with the Finout API"


class APITimeoutError(TransportError, TimeoutError):
    """The request timed out (connecting or waiting for the answer)."""

    default_hint = "Finout did not answer in time; retry, or use a narrower query (shorter date range)."


class MalformedResponseError(FinoutError):
    """An answer whose body is not the documented JSON (HTML, empty, truncated, wrong shape).

    ``field`` names the field that was missing or wrong (wire name, dotted path) when the body was
    JSON of another shape; ``shape`` sketches what came (keys and types, never values)."""

    default_hint = (
        "This is usually a transient gateway or proxy problem; retry later. If it persists, check that "
        "FINOUT_API_URL points at the Finout API."
    )
    shape_hint = (
        "Nothing was read as empty. Run `finout-mcp doctor` to check every response shape of this "
        "account, and report the mismatch."
    )

    def __init__(self, message: str, *, field: str | None = None, shape: str | None = None, **kwargs: Any) -> None:
        if field is not None and kwargs.get("hint") is None:
            kwargs["hint"] = self.shape_hint
        super().__init__(message, **kwargs)
        self.field = field
        self.shape = shape

    def _headline(self) -> str:
        status = f"{self.status} {_phrase(self.status or 0)}".strip() if self.status else "an answer"
        if self.field is not None:
            return f"Finout API answered {self.operation} ({status}) in a shape finout-mcp does not recognise"
        return f"Finout API returned {status} with an unreadable body for {self.operation}"


_BY_STATUS: dict[int, type[FinoutAPIStatusError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitedError,
}


def error_class_for_status(status: int) -> type[FinoutAPIStatusError]:
    """The error class for an HTTP status (>= 400)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return InvalidRequestError
    return FinoutAPIStatusError


def hint_for(status: int, method: str, path: str) -> str | None:
    """A hint specific to the operation, or ``None`` for the class's default."""
    p = path.split("?", 1)[0]
    if "/data/cost-usage" in p:  # API v2 Cost and Usage
        return {
            400: "Fix the query: a range of at most 60 days, known keys with their v2 types, valid measurements.",
            404: "Finout does not know this query (or no longer); submit it again.",
            410: "The results expired (Finout keeps them 24 hours); submit the query again.",
            422: "Finout cannot compute this query: at most 30 filter conditions and 3 virtual tags; simplify it.",
            424: "The query failed on Finout's side; submit it again, or narrow the range, filter or group-by.",
            429: "Finout API v2 allows 50 requests a minute per route and 10,000 queries a day; wait and retry.",
        }.get(status)
    if status == 422:
        if "/virtual-tags" in p and p.endswith("/metadata"):
            return "Fix the metadata: value names cannot contain dots; endpoints and groups must exist."
        if "/virtual-tags" in p:
            return "The virtual tag is invalid; check its rules and fix them."
        if "/cost/query-by-view" in p:
            return "The query cannot be computed; use a range of at most 90 days and a valid cost type."
    if status == 400 and "/cost/query-by-view" in p:
        return "Check the view id, the date range (at most 90 days, start before end) and the cost type."
    return None


def created_anyway_hint(subject: str | None) -> str | None:
    """For a create whose outcome is unknown: the fact that it may have happened, and how to
    find out without making a duplicate (the server layer adds which tool lists them)."""
    if subject is None:
        return None
    return (
        f"The {subject} may have been created anyway; list the {subject}s before retrying, "
        "so as not to create a duplicate."
    )


def status_error(
    status: int,
    message: str,
    *,
    method: str,
    path: str,
    request_id: str | None = None,
    retry_after: float | None = None,
    hint: str | None = None,
    retryable: bool | None = None,
    outcome_unknown: bool = False,
) -> FinoutAPIStatusError:
    """Build the typed error for a non-2xx answer."""
    cls = error_class_for_status(status)
    if retryable is None:
        retryable = status in RETRYABLE_STATUSES
    hint = hint if hint is not None else hint_for(status, method, path)
    return cls(
        message,
        status=status,
        request_id=request_id,
        method=method,
        path=path,
        hint=hint,
        retryable=retryable,
        outcome_unknown=outcome_unknown,
        retry_after=retry_after,
    )


__all__ = [
    "RETRYABLE_STATUSES",
    "APITimeoutError",
    "AuthenticationError",
    "ConflictError",
    "FinoutAPIStatusError",
    "FinoutError",
    "InvalidRequestError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "UnprocessableError",
    "created_anyway_hint",
    "error_class_for_status",
    "hint_for",
    "status_error",
]
