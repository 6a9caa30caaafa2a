"""Shared pieces of the tool modules: annotations, argument types, the tool spec (results: services.results)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.types import ToolAnnotations
from pydantic import Field

# The Finout account is a closed world: the tools only touch the user's own account.
# destructiveHint and idempotentHint mean something only when readOnlyHint is false (MCP spec),
# so read tools leave them out.
READ = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
COMPUTE = READ  # pure computation over cached reads (compose_filter, lint_virtual_tag)
WRITE_IDEMPOTENT = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False
)
DESTRUCTIVE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False)
DESTRUCTIVE_IDEMPOTENT = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
)


FilterSpec = dict[str, Any]
FILTER_DESCRIPTION = (
    'Intent (or raw Finout filter): {"all": [..]}, {"any": [..]}, {"not": node}, or a condition '
    '{"key": key or display name, "cost_center"?, "op": "in|not in|=|!=|contains|not contains|exists|not '
    'exists", "values": [..] | "value": ".."}. Guide: finout://guide/filters.'
)

FILTER_REF = "Intent or raw Finout filter, as for compose_filter."

ViewRef = Annotated[str, Field(description="View id or exact name.", min_length=1)]
TagRef = Annotated[str, Field(description="Tag id or exact name.", min_length=1)]
DryRun = Annotated[
    bool,
    Field(description="true: only show the exact body; send nothing."),
]
Refresh = Annotated[bool, Field(description="true: bypass the cache.")]
ExpectedVersion = Annotated[
    str | None,
    Field(
        description="The expected_version a dry run returned: the write is refused if the target changed since.",
        max_length=40,
    ),
]
IncludeBody = Annotated[bool, Field(description="true: also return the full JSON body (and raw filters).")]


# ----------------------------------------------------------------------------- argument bounds

# Every tool call, whatever the tool: no text argument longer, no list or object larger (the HTTP
# body cap bounds the total). Tools bound their own arguments more tightly where they can
# (names, rules, metadata values, filter conditions).
MAX_ARGUMENT_CHARS = 100_000
MAX_ARGUMENT_ITEMS = 250_000
MAX_METADATA_VALUES = 10_000


def argument_size_problem(arguments: Any) -> str | None:
    """Why ``arguments`` are too large to even look at, or None (walked without recursion)."""
    stack: list[tuple[str, Any]] = [("", arguments)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and len(value) > MAX_ARGUMENT_CHARS:
            return f"{path or 'an argument'} is {len(value)} characters long; at most {MAX_ARGUMENT_CHARS} are allowed"
        if isinstance(value, dict | list):
            if len(value) > MAX_ARGUMENT_ITEMS:
                return f"{path or 'an argument'} has {len(value)} items; at most {MAX_ARGUMENT_ITEMS} are allowed"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and len(key) > MAX_ARGUMENT_CHARS:
                    return f"a key in {path or 'the arguments'} is too long"
                if isinstance(item, str | dict | list):
                    stack.append((f"{path}.{key}" if path else str(key), item))
    return None


# ----------------------------------------------------------------------------- registration

_NAMED = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def slim_schema(schema: Any, *, output: bool = False) -> Any:
    """The same schema with fewer bytes for the model to read.

    Drops pydantic's auto-generated ``title`` keywords and ``default: null``. An optional
    argument's ``anyOf: [X, {type: null}]`` becomes X (leaving it out means null); in outputs a
    nullable scalar becomes ``type: [T, "null"]``. For output
    schemas it also drops defaults and descriptions and inlines nested models as
    ``{"type": "object"}``: results validate against the (full) pydantic model on our side,
    and the published schema stays a correct, shallower description of them.
    """
    if isinstance(schema, list):
        return [slim_schema(x, output=output) for x in schema]
    if not isinstance(schema, dict):
        return schema
    if output and "$ref" in schema:
        return {"type": "object"}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and (value is None or output):
            continue
        if output and key in ("description", "$defs", "required"):
            continue
        if key == "additionalProperties" and value is True:
            continue
        if key == "$defs" and isinstance(value, dict):  # model docstrings: the fields say enough
            out[key] = {
                name: {k: v for k, v in slim_schema(sub, output=output).items() if k != "description"}
                for name, sub in value.items()
            }
        elif key in _NAMED and isinstance(value, dict):
            out[key] = {name: slim_schema(sub, output=output) for name, sub in value.items()}
        else:
            out[key] = slim_schema(value, output=output)
    if output and out.get("type") == "array" and isinstance(out.get("items"), dict) and "enum" not in out["items"]:
        del out["items"]
    alts = out.get("anyOf")
    if isinstance(alts, list) and len(alts) == 2 and {"type": "null"} in alts:
        other = alts[0] if alts[1] == {"type": "null"} else alts[1]
        if not output and isinstance(other, dict):
            # An optional argument: leaving it out means null, so the schema need not say null.
            del out["anyOf"]
            out = {**other, **out}
        elif set(other) <= {"type", "enum"} and isinstance(other.get("type"), str):
            del out["anyOf"]
            out["type"] = [other["type"], "null"]
            if "enum" in other:
                out["enum"] = [*other["enum"], None]
        elif output and isinstance(other.get("type"), str):
            del out["anyOf"]
            out["type"] = [other["type"], "null"]
    return out


@dataclass(frozen=True)
class ToolSpec:
    """One tool as its domain module exports it (``TOOLS``): the function, its annotations, its title.

    The annotations decide where the tool goes: ``readOnlyHint`` false puts it among the write
    tools (left out under ``read_only``, hidden from read-only OAuth callers). The registry
    (:mod:`finout_mcp.server.tools.registry`) checks them against what the function returns.
    """

    fn: Callable[..., Any]
    annotations: ToolAnnotations
    title: str

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def read_only(self) -> bool:
        return self.annotations.read_only_hint is True

    @property
    def description(self) -> str:
        """The docstring as one paragraph (a model reads it; indentation is wasted bytes)."""
        return " ".join(inspect.cleandoc(self.fn.__doc__ or "").split())
