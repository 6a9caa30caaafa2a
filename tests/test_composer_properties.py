"""Property-based tests of the composer: semantics preserved, output canonical, linter's implication sound."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from finout_mcp.api.models import MegabillKey
from finout_mcp.filters.implication import implies
from finout_mcp.services.composer import ComposeResult, compose
from finout_mcp.services.errors import InputError
from tests.filters_support import StaticCatalog, evaluate, evaluate_intent

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COST_CENTERS = ["AWS", "GCP", "Kubernetes", "Virtual Tags"]
ROW_VALUES = [None, "a", "b", "ab", "ba", "1", "c"]
COND_VALUES: list[Any] = ["a", "b", "ab", "1", 1, "c"]
ALIASES = {
    "oneOf": ["oneOf", "in", "IN", "one_of"],
    "notOneOf": ["notOneOf", "not in", "NOT_IN", "not_one_of"],
    "is": ["is", "=", "==", "equals"],
    "isNot": ["isNot", "!=", "is_not", "is not"],
    "contains": ["contains", "CONTAINS"],
    "notContains": ["notContains", "not contains", "not_contains"],
    "exists": ["exists"],
    "notExists": ["notExists", "not exists", "not_exists"],
}

Catalogue = list[MegabillKey]
Row = dict[tuple[str, str], str | None]


@st.composite
def catalogues(draw: st.DrawFn, max_keys: int = 5) -> Catalogue:
    names = draw(
        st.lists(
            st.text(alphabet="abcxyz_", min_size=1, max_size=6),
            min_size=1,
            max_size=max_keys,
            unique_by=str.lower,
        )
    )
    return [
        MegabillKey(cost_center=draw(st.sampled_from(COST_CENTERS)), key=n, display_name=f"D {n} name")
        for n in names
    ]


@st.composite
def conditions(draw: st.DrawFn, keys: Catalogue) -> dict[str, Any]:
    k = draw(st.sampled_from(keys))
    base = draw(st.sampled_from(list(ALIASES)))
    op = draw(st.sampled_from(ALIASES[base]))
    value: Any = None
    if base in ("oneOf", "notOneOf"):
        value = draw(
            st.one_of(st.sampled_from(COND_VALUES), st.lists(st.sampled_from(COND_VALUES), min_size=1, max_size=3))
        )
    elif base in ("is", "isNot"):
        value = draw(
            st.one_of(st.sampled_from(COND_VALUES), st.lists(st.sampled_from(COND_VALUES), min_size=1, max_size=2))
        )
    elif base in ("contains", "notContains"):
        value = draw(
            st.one_of(st.sampled_from(COND_VALUES), st.lists(st.sampled_from(COND_VALUES), min_size=1, max_size=1))
        )
    style = draw(st.integers(0, 3))
    if style == 0:
        node: dict[str, Any] = {"costCenter": k.cost_center, "key": k.key, "operator": op}
        if value is not None:
            node["value"] = value
        return node
    if style == 1:
        node = {"key": k.key.upper(), "op": op}
    elif style == 2:
        node = {"key": (k.display_name or k.key).lower(), "cost_center": k.cost_center.lower(), "op": op}
    else:
        node = {"key": k.key, "cost_center": k.cost_center, "op": op}
    if value is not None:
        node["values" if isinstance(value, list) else "value"] = value
    return node


def intents(keys: Catalogue, max_leaves: int = 10) -> st.SearchStrategy[dict[str, Any]]:
    def extend(kids: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        group = st.lists(kids, min_size=1, max_size=4)
        return st.one_of(
            st.builds(lambda xs: {"all": xs}, group),
            st.builds(lambda xs: {"any": xs}, group),
            st.builds(lambda xs: {"AND": xs}, group),
            st.builds(lambda xs: {"OR": xs}, group),
            st.builds(lambda x: {"not": x}, kids),
        )

    return st.recursive(conditions(keys), extend, max_leaves=max_leaves)


def rows(keys: Catalogue) -> st.SearchStrategy[Row]:
    return st.fixed_dictionaries({(k.cost_center, k.key): st.sampled_from(ROW_VALUES) for k in keys})


def run(intent: dict[str, Any], keys: Catalogue) -> ComposeResult:
    return asyncio.run(compose(intent, StaticCatalog(keys), check_values=False))


def walk(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        for word in ("AND", "OR"):
            if word in n:
                stack.extend(n[word])
    return out


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Catalogue, dict[str, Any], list[Row]]:
    keys = draw(catalogues())
    intent = draw(intents(keys))
    return keys, intent, draw(st.lists(rows(keys), min_size=1, max_size=8))


@SETTINGS
@given(scenario())
def test_compose_preserves_semantics(case: tuple[Catalogue, dict[str, Any], list[Row]]) -> None:
    keys, intent, sample = case
    r = run(intent, keys)
    assume(r.ok)
    assert r.filter is not None
    for row in sample:
        assert evaluate(r.filter, row) == evaluate_intent(intent, row, keys), (r.filter, row)


@SETTINGS
@given(scenario())
def test_compose_is_idempotent(case: tuple[Catalogue, dict[str, Any], list[Row]]) -> None:
    keys, intent, _ = case
    r = run(intent, keys)
    assume(r.ok)
    assert r.filter is not None
    again = run(r.filter, keys)
    assert again.ok and again.filter == r.filter
    assert again.readable == r.readable and again.conditions == r.conditions and again.depth == r.depth


@SETTINGS
@given(scenario())
def test_output_is_canonical(case: tuple[Catalogue, dict[str, Any], list[Row]]) -> None:
    keys, intent, _ = case
    r = run(intent, keys)
    assume(r.ok)
    assert r.filter is not None
    text = str(r.filter)
    assert "NOT" not in text and "'not'" not in text and "displayName" not in text
    for node in walk(r.filter):
        for word in ("AND", "OR"):
            if word in node:
                assert set(node) == {word}
                assert len(node[word]) >= 2, node
                assert all(word not in child for child in node[word]), node
                assert len({repr(ch) for ch in node[word]}) == len(node[word])
        if "operator" in node:
            assert set(node) <= {"costCenter", "key", "operator", "value"}
            if node["operator"] in ("oneOf", "notOneOf"):
                assert node["value"] == sorted(set(node["value"]))
            elif node["operator"] in ("exists", "notExists"):
                assert "value" not in node
            else:
                assert isinstance(node["value"], str)


@st.composite
def implication_case(draw: st.DrawFn) -> tuple[Catalogue, dict[str, Any], dict[str, Any]]:
    keys = draw(catalogues(max_keys=2))
    return keys, draw(intents(keys, max_leaves=5)), draw(intents(keys, max_leaves=5))


@SETTINGS
@given(implication_case())
def test_implies_is_sound(case: tuple[Catalogue, dict[str, Any], dict[str, Any]]) -> None:
    """implies(a, b) ⇒ every row (all of them, exhaustively) matching a matches b."""
    keys, ia, ib = case
    ra, rb = run(ia, keys), run(ib, keys)
    assume(ra.ok and rb.ok)
    assert ra.filter is not None and rb.filter is not None
    if not implies(ra.filter, rb.filter):
        event("not proven")
        return
    event("proven")
    pairs = [(k.cost_center, k.key) for k in keys]
    for combo in itertools.product(ROW_VALUES, repeat=len(pairs)):
        row: Row = dict(zip(pairs, combo, strict=True))
        if evaluate(ra.filter, row):
            assert evaluate(rb.filter, row), (ra.readable, rb.readable, row)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.sampled_from(["all", "any", "not", "in"]),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["all", "any", "not", "AND", "OR", "key", "op", "value", "values", "cost_center", "x"]
            ),
            kids,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@SETTINGS
@given(catalogues(), json_values)
def test_garbage_never_crashes(keys: Catalogue, spec: Any) -> None:
    try:
        r = run(spec, keys)
    except InputError:
        assert not isinstance(spec, dict)
        return
    assert isinstance(spec, dict)
    assert r.ok == (r.filter is not None)
    assert r.ok or any(f.severity == "error" for f in r.findings)
