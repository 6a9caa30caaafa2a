"""What the server tells a model to call exists: every tool call named in the filter guide, the
server instructions, the prompts and the tool descriptions uses arguments that tool's input schema
has. A model follows these lines literally; an argument the schema lacks is a failed call."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import demo

PROMPT_ARGS = {
    "monthly_cost_review": {"month": "2026-10", "view": "All costs"},
    "find_savings": {"cost_center": "AWS"},
    "allocate_costs": {"tag_name": "Team", "allocation": "the checkout namespace to Checkout"},
    "investigate_spike": {"view": "All costs", "day": "2026-11-20"},
}
ASSIGNED = re.compile(r"(?<![\w\"'])([a-z][a-z0-9_]*)=(?!=)")
BARE = re.compile(r"[a-z][a-z0-9_]*")


def _paren_span(text: str, start: int) -> str:
    """The text inside the parentheses opening at ``start`` (nested ones included)."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i]
    return text[start + 1 :]


def calls_in(text: str, tools: set[str]) -> list[tuple[str, set[str], str]]:
    """Each mention of a tool with the argument names written with it: ``tool(a, b=1)`` (bare names
    and assignments inside the parentheses) or prose up to the sentence's end (``tool with a=1``)."""
    names = re.compile(r"\b(" + "|".join(sorted(tools, key=len, reverse=True)) + r")\b")
    mentions = list(names.finditer(text))
    out = []
    for n, m in enumerate(mentions):
        nxt = mentions[n + 1].start() if n + 1 < len(mentions) else len(text)
        if text.startswith("(", m.end()):
            inside = _paren_span(text, m.end())
            args = {a.group(1) for a in ASSIGNED.finditer(inside)}
            args |= {p.strip() for p in inside.split(",") if BARE.fullmatch(p.strip())}
            out.append((m.group(1), args, f"{m.group(1)}({inside})"))
            continue
        span = text[m.end() : nxt]
        for stop in ("\n", ". "):
            if stop in span:
                span = span[: span.index(stop)]
        args = {a.group(1) for a in ASSIGNED.finditer(span)}
        if args:
            out.append((m.group(1), args, f"{m.group(1)}{span}"))
    return out


def test_the_parser_finds_calls_and_their_arguments() -> None:
    tools = {"create_virtual_tag", "undo_change", "get_virtual_tag"}
    text = (
        "create_virtual_tag(dry_run=false, expected_version=<from the dry run>) -> undo_change(change_id).\n"
        'Call get_virtual_tag with tag="Team", include_filters=true: then {"op": "="}. Not x=1.'
    )
    found = {(tool, frozenset(args)) for tool, args, _ in calls_in(text, tools)}
    assert found == {
        ("create_virtual_tag", frozenset({"dry_run", "expected_version"})),
        ("undo_change", frozenset({"change_id"})),
        ("get_virtual_tag", frozenset({"tag", "include_filters"})),
    }


async def test_every_call_the_server_teaches_uses_arguments_the_tool_has(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        listed = (await client.list_tools()).tools
        schemas: dict[str, set[str]] = {t.name: set((t.input_schema or {}).get("properties", {})) for t in listed}
        texts: list[tuple[str, str]] = [("server instructions", client.instructions or "")]
        guide = (await client.read_resource("finout://guide/filters")).contents[0]
        texts.append(("finout://guide/filters", getattr(guide, "text", "")))
        for prompt, args in PROMPT_ARGS.items():
            got = await client.get_prompt(prompt, args)
            texts.extend((f"prompt {prompt}", getattr(m.content, "text", "")) for m in got.messages)
        texts.extend((f"description of {t.name}", t.description or "") for t in listed)
    wrong: list[str] = []
    checked: list[str] = []
    for where, text in texts:
        for tool, args, written in calls_in(text, set(schemas)):
            checked.append(written)
            missing = sorted(args - schemas[tool])
            if missing:
                wrong.append(
                    f"{where}: {written!r} uses {missing}, which {tool} does not take: {sorted(schemas[tool])}"
                )
    assert not wrong, "\n".join(wrong)
    # the lines that matter were read: the guide's workflow, the instructions' undo, the update recipe
    assert any(w.startswith("update_virtual_tag(tag, rules, dry_run=false, expected_version") for w in checked)
    assert any(w.startswith("get_virtual_tag(tag, include_filters=true)") for w in checked)
    assert any(w == "undo_change(change_id)" for w in checked)
    assert len(checked) >= 15, checked
