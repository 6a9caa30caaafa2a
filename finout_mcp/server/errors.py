"""One place for what leaves a tool: compact results and errors a model can act on.

Tools are wrapped with :func:`tool_guard`:
- a pydantic result becomes a ``CallToolResult`` whose structured content is the full model
  and whose text is compact JSON (no indentation, no null fields): the SDK's default
  pretty-printing roughly doubles what a model has to read;
- Finout API errors become tool errors that name the HTTP status, what to do and Finout's
  ``requestId``; input errors carry their own fix; anything unexpected is logged (stderr,
  with traceback) and reported as an internal error without a traceback;
- every outgoing string is scrubbed of secrets (the secret key, the HTTP token, Slack
  webhook URLs), in results and errors alike.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ParamSpec, TypeVar

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ValidationError

from finout_mcp.api.errors import FinoutError, NotFoundError, RateLimitedError, UnprocessableError
from finout_mcp.api.retries import retry_budget
from finout_mcp.redact import Scrubber
from finout_mcp.services.errors import InputError, WriteVerificationError, first_error

log = logging.getLogger("finout_mcp.server")

P = ParamSpec("P")
R = TypeVar("R")


# The tool that lists each kind of thing the API layer names as an error's ``subject``.
LIST_TOOLS = {
    "view": "list_views",
    "virtual tag": "list_virtual_tags",
    "MegaBill key": "list_megabill_keys",
    "CostGuard scan": "list_costguard_scans",
    "endpoint": "list_endpoints",
}


def tool_advice(exc: FinoutError) -> str | None:
    """The tool to call next, for an API error whose fix is in this server's tools."""
    tool = LIST_TOOLS.get(exc.subject or "")
    if isinstance(exc, NotFoundError):
        if exc.base_url_wrong or tool is None:
            return None  # the fix is the configuration, not a tool
        return f"{tool} shows the ones that exist."
    if exc.outcome_unknown and tool is not None:
        return f"Check with {tool} first."
    if isinstance(exc, RateLimitedError) and not exc.retryable and "/data/cost-usage" in (exc.path or ""):
        return "query_view_costs answers from a saved view meanwhile."  # API v2's daily cap is spent
    if (
        isinstance(exc, UnprocessableError)
        and exc.subject == "virtual tag"
        and not (exc.path or "").endswith("/metadata")
    ):
        return "lint_virtual_tag shows each problem with its fix."
    return None


def describe(exc: BaseException, scrubber: Scrubber | None = None) -> str:
    """The model-facing text for an exception, scrubbed of ``scrubber``'s secrets (and Slack webhook URLs)."""
    if isinstance(exc, FinoutError):
        text = str(exc)
        advice = tool_advice(exc)
        if advice:
            text = f"{text} {advice}"
        if "retry" not in text.lower():  # say whether to retry, unless the hint already does
            retry = "This is temporary: retry in a moment." if exc.retryable else "Retrying as is will not help."
            text = f"{text} {retry}"
    elif isinstance(exc, InputError | WriteVerificationError):
        text = str(exc)
    elif isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()[:5]
        )
        text = f"Invalid input: {problems}. Fix these fields and call again."
    else:
        text = (
            f"Internal error in finout-mcp ({type(exc).__name__}); it was logged on the server. "
            "Retry once; if it persists, report it."
        )
    return (scrubber or Scrubber()).text(text)


def tool_guard(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a tool so no exception leaves it except a :class:`ToolError` with a useful message."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with _call_budget(kwargs):
                result = await fn(*args, **kwargs)
            if isinstance(result, BaseModel):
                # Dumping and scrubbing a large answer is CPU work: keep the event loop free for others.
                shaped = await anyio.to_thread.run_sync(compact_result, result, _scrubber_from(kwargs))
                return shaped  # type: ignore[return-value]
            return result
        except ToolError:
            raise
        except Exception as caught:
            # A task group (e.g. a range and its comparison fetched at once) reports a group:
            # classify the first real error in it like any other.
            exc = first_error(caught) if isinstance(caught, BaseExceptionGroup) else caught
            if isinstance(exc, ToolError):
                raise exc from None
            if isinstance(exc, FinoutError | InputError | WriteVerificationError | ValidationError):
                log.info("tool %s refused: %s", fn.__name__, type(exc).__name__)
                raise ToolError(describe(exc, _scrubber_from(kwargs))) from None
            log.exception("tool %s failed unexpectedly", fn.__name__)
            raise ToolError(describe(exc)) from None

    return wrapper


def compact_result(model: BaseModel, scrubber: Scrubber) -> CallToolResult:
    """Structured content in full; text as compact JSON without nulls; both scrubbed."""
    structured = scrubber.json(model.model_dump(mode="json", by_alias=True))
    text_data = scrubber.json(model.model_dump(mode="json", by_alias=True, exclude_none=True))
    text = json.dumps(text_data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def _call_budget(kwargs: dict[str, Any]) -> AbstractContextManager[Any]:
    """One retry budget for every Finout request of this tool call (see :mod:`finout_mcp.api.retries`)."""
    ctx = kwargs.get("ctx")
    try:
        settings = ctx.request_context.lifespan_context.settings  # type: ignore[union-attr]
    except Exception:
        return nullcontext()
    return retry_budget(max(0, settings.retry_max_attempts - 1), settings.retry_budget_s)


def _scrubber_from(kwargs: dict[str, Any]) -> Scrubber:
    ctx = kwargs.get("ctx")
    try:
        scrubber: Scrubber = ctx.request_context.lifespan_context.scrubber  # type: ignore[union-attr]
        return scrubber
    except Exception:
        return Scrubber()
