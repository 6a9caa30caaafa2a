"""Fuzzing every tool with Hypothesis through the in-memory MCP client.

Arguments are drawn from each tool's published ``inputSchema``: for every property either a
value of the schema's type (strings, numbers out of range, enums, arrays, objects) or any
JSON value at all (garbage types), properties sometimes missing and unknown ones added.

Pattern: one demo client per tool test is opened in an anyio *blocking portal* (an event
loop in a helper thread); the Hypothesis test inside is synchronous and sends each example
through ``portal.call``. So Hypothesis drives examples (and shrinks failures) normally,
while the server and the client session are built once per tool, not once per example.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from tests.support import demo, text
from tests.test_faults import TOOL_ARGS

EXAMPLES_PER_TOOL = 40
CALL_TIMEOUT_S = 15

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
WORDS = st.sampled_from(
    [
        "Team",
        "Environment",
        "All costs by service",
        "AWS",
        "Account Name",
        "pl_app",
        "prod-eu",
        "EC2 - Idle",
        "in",
        "=",
        "exists",
        "not in",
        "checkout",
        "../x",
        "a@b.com",
        "https://hooks.slack.com/services/T/B/c",
        "",
    ]
)
TEXT = st.one_of(st.text(max_size=40), WORDS)


def typed(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """A value shaped like ``schema`` (not necessarily valid: sizes and ranges are ignored)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema or "oneOf" in schema:
        alts = schema.get("anyOf") or schema.get("oneOf") or []
        return st.one_of([typed(a, depth) for a in alts]) if alts else JSON
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([typed({**schema, "type": k}, depth) for k in kind])
    if kind == "string":
        return TEXT
    if kind == "integer":
        return st.integers(min_value=-(10**12), max_value=10**12)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if depth > 2:
        return JSON
    if kind == "array":
        items = schema.get("items")
        return st.lists(typed(items, depth + 1) if isinstance(items, dict) else JSON, max_size=4)
    if kind == "object":
        props = schema.get("properties") or {}
        if props:
            return st.fixed_dictionaries({}, optional={k: typed(v, depth + 1) for k, v in props.items()})
        return st.dictionaries(TEXT, JSON, max_size=4)
    return JSON


def arguments(input_schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = input_schema.get("properties") or {}
    per_prop = {name: st.one_of(typed(sub), typed(sub), JSON) for name, sub in props.items()}
    base = st.fixed_dictionaries({}, optional=per_prop)
    extra = st.dictionaries(st.text(min_size=1, max_size=8), JSON, max_size=2)
    return st.one_of(base, st.builds(lambda a, b: {**b, **a}, base, extra))


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as p:
        yield p


async def _check(client: Client, tool: str, args: dict[str, Any]) -> None:
    with anyio.fail_after(CALL_TIMEOUT_S):
        result = await client.call_tool(tool, args)
    message = text(result)
    assert "Traceback" not in message, message
    assert message.strip() not in (f"Error executing tool {tool}", f"Error executing tool {tool}:"), args
    assert "Internal error" not in message, f"{tool}({args!r}) -> {message}"
    if result.is_error:
        assert len(message.strip()) > len(f"Error executing tool {tool}: ") + 10, message
    else:
        assert result.structured_content is not None


@pytest.mark.parametrize("tool", sorted(TOOL_ARGS))
def test_fuzz_tool(tool: str, portal: BlockingPortal, tmp_path: Path) -> None:
    with portal.wrap_async_context_manager(demo(tmp_path)) as (client, _sb):
        listed = portal.call(client.list_tools)
        schema = next(t.input_schema for t in listed.tools if t.name == tool)
        seen: list[bool] = []

        @settings(
            max_examples=EXAMPLES_PER_TOOL,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(args=arguments(schema))
        def run(args: dict[str, Any]) -> None:
            seen.append(True)
            portal.call(_check, client, tool, args)

        run()
        # The server still answers normally afterwards.
        after = portal.call(client.call_tool, "list_views", {})
        assert not after.is_error, text(after)
        assert len(seen) >= EXAMPLES_PER_TOOL // 2
