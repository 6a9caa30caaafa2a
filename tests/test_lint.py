"""Unit tests of the virtual-tag linter (finout_mcp.services.lint)."""

from __future__ import annotations

from typing import Any

import pytest

from finout_mcp.api.models import MegabillKey, TagReference, Timeframe, VirtualTag, VirtualTagRule
from finout_mcp.filters.implication import implies
from finout_mcp.filters.limits import MAX_RULES
from finout_mcp.services.diffs import target_text
from finout_mcp.services.lint import LintReport, RuleSpec, lint_rules, rules_from_tag
from tests.filters_support import StaticCatalog

KEYS = [
    MegabillKey(cost_center="Kubernetes", key="namespace", display_name="Namespace"),
    MegabillKey(cost_center="Kubernetes", key="pl_app", display_name="App (pod label)"),
    MegabillKey(cost_center="AWS", key="aws_account_name", display_name="Account Name"),
]
VALUES = {
    ("Kubernetes", "namespace"): ["a", "b", "c", "checkout"],
    ("Kubernetes", "pl_app"): ["web", "api"],
    ("AWS", "aws_account_name"): ["prod", "dev"],
}
TAGS = [
    VirtualTag(id="vt-1", name="Team", rules=[], default_value="none"),
    VirtualTag(id="vt-2", name="Environment", rules=[], default_value="none"),
]


def cat() -> StaticCatalog:
    return StaticCatalog(KEYS, VALUES, TAGS)


def ns(op: str, value: Any = None) -> dict[str, Any]:
    d: dict[str, Any] = {"key": "namespace", "op": op}
    if value is not None:
        d["value"] = value
    return d


def rule(to: str | TagReference, f: dict[str, Any], timeframe: Timeframe | None = None) -> RuleSpec:
    return RuleSpec(to=to, filter=f, timeframe=timeframe)


async def lint(rules: list[RuleSpec], default: str | None = "other", tag_id: str | None = None) -> LintReport:
    return await lint_rules(rules, default, cat(), tag_id=tag_id)


def codes(report: LintReport) -> list[tuple[int | None, str]]:
    out: list[tuple[int | None, str]] = [(None, f.code) for f in report.findings]
    out += [(r.index - 1, f.code) for r in report.rules for f in r.findings]  # 0-based here
    return out


async def test_clean_tag() -> None:
    report = await lint(
        [rule("Checkout", ns("=", "checkout")), rule("Prod", {"key": "Account Name", "op": "=", "value": "prod"})]
    )
    assert report.ok and codes(report) == [] and report.errors == 0 and report.warnings == 0
    assert report.rules[0].filter == {
        "costCenter": "Kubernetes",
        "key": "namespace",
        "operator": "is",
        "value": "checkout",
    }
    assert report.rules[0].readable == "Kubernetes.Namespace = checkout"
    assert report.rules[1].to == "Prod"


async def test_composer_findings_per_rule_with_path() -> None:
    report = await lint(
        [rule("X", {"all": [ns("=", "a"), {"key": "nope", "op": "exists"}]}), rule("Y", ns("=", "zz"))]
    )
    assert not report.ok and report.errors == 1 and report.warnings == 1
    [err] = report.rules[0].findings
    assert err.code == "unknown_key" and err.path == "rules[0].filter.all[1]"
    assert report.rules[0].filter is None
    [warn] = report.rules[1].findings
    assert warn.code == "unknown_value" and warn.path == "rules[1].filter"


@pytest.mark.parametrize(
    ("first", "later"),
    [
        (ns("in", ["a", "b"]), ns("=", "a")),  # subset of values on the same key
        (ns("=", "a"), ns("=", "a")),  # identical filter, other value
        (ns("in", ["a", "b"]), ns("in", ["b", "a"])),
        ({"any": [ns("=", "a"), {"key": "pl_app", "op": "=", "value": "web"}]}, ns("=", "a")),  # OR containing it
        (ns("=", "a"), {"all": [ns("=", "a"), {"key": "pl_app", "op": "=", "value": "web"}]}),  # AND including it
        (ns("exists"), ns("in", ["a", "c"])),
        (ns("contains", "chec"), ns("=", "checkout")),
        (ns("!=", "a"), ns("not in", ["a", "b"])),
        (ns("!=", "a"), ns("=", "b")),
        (ns("contains", "ck"), ns("contains", "eckou")),
    ],
)
async def test_shadowed_rule(first: dict[str, Any], later: dict[str, Any]) -> None:
    report = await lint(
        [rule("First", first), rule("Middle", {"key": "pl_app", "op": "=", "value": "api"}), rule("Later", later)]
    )
    assert codes(report) == [(2, "shadowed_rule")]
    f = report.rules[2].findings[0]
    assert f.severity == "warning" and "rule 1" in f.message and "Move rule 3 above rule 1" in f.message
    assert report.ok


@pytest.mark.parametrize(
    ("first", "later"),
    [
        (ns("=", "a"), ns("in", ["a", "b"])),  # narrower first: no shadowing
        (ns("=", "a"), {"key": "pl_app", "op": "=", "value": "web"}),
        ({"all": [ns("=", "a"), {"key": "pl_app", "op": "=", "value": "web"}]}, ns("=", "a")),
        (ns("!=", "a"), ns("=", "A")),  # unsafe if Finout compares case-insensitively
        (ns("not in", ["a", "b"]), ns("!=", "a")),
        (ns("not contains", "x"), ns("not exists")),
        (ns("contains", "eckou"), ns("contains", "ck")),
    ],
)
async def test_no_false_shadowing(first: dict[str, Any], later: dict[str, Any]) -> None:
    report = await lint([rule("First", first), rule("Later", later)])
    assert [c for c in codes(report) if c[1] in ("shadowed_rule", "duplicate_rule")] == []


async def test_earlier_rule_with_timeframe_does_not_shadow() -> None:
    tf = Timeframe(from_=1, to=2)
    report = await lint([rule("First", ns("in", ["a", "b"]), tf), rule("Later", ns("=", "a"))])
    assert codes(report) == []
    report = await lint([rule("First", ns("in", ["a", "b"])), rule("Later", ns("=", "a"), tf)])
    assert codes(report) == [(1, "shadowed_rule")]


async def test_duplicate_rule() -> None:
    report = await lint([rule("Same", ns("in", ["a", "b"])), rule("Same", {"any": [ns("=", "b"), ns("=", "a")]})])
    # any of = a, = b is not literally the same canonical filter: it is shadowed, not duplicated
    assert codes(report) == [(1, "shadowed_rule")]
    report = await lint([rule("Same", ns("in", ["a", "b"])), rule("Same", ns("in", ["b", "a"]))])
    assert codes(report) == [(1, "duplicate_rule")]
    assert "repeats rule 1" in report.rules[1].findings[0].message


async def test_tag_references() -> None:
    report = await lint(
        [
            rule(TagReference(key="vt-2"), ns("=", "a")),
            rule(TagReference(key="vt-9"), ns("=", "b")),
            rule(TagReference(key="Environment"), ns("=", "c")),
            rule(TagReference(key="vt-1"), ns("=", "checkout")),
            rule(TagReference(key="vt-2", cost_center="AWS"), ns("exists")),
        ],
        tag_id="vt-1",
    )
    assert codes(report) == [
        (1, "unknown_tag_reference"),
        (2, "unknown_tag_reference"),
        (3, "self_reference"),
        (4, "bad_tag_reference"),
    ]
    assert report.rules[0].to == "value of tag «Environment» (vt-2)"
    by_name = report.rules[2].findings[0]
    assert by_name.candidates == ["vt-2 (Environment)"] and "Did you mean: vt-2 (Environment)" in by_name.message
    assert "list_virtual_tags" in report.rules[1].findings[0].message
    assert report.errors == 4 and not report.ok


async def test_a_reference_reads_the_same_in_lint_write_results_and_diffs() -> None:
    """One wording for another tag's value (it was "(value of virtual tag vt-2)" in write results
    and "value of tag «Environment» (vt-2)" in lint)."""
    report = await lint([rule(TagReference(key="vt-2"), ns("=", "a"))])
    assert report.rules[0].to == target_text(TagReference(key="vt-2"), {"vt-2": "Environment"})
    assert target_text(TagReference(key="vt-2")) == "value of tag vt-2"  # no names at hand: the id
    # a reference outside the virtual tags (refused by lint) still says what it points at
    assert target_text(TagReference(key="region", cost_center="AWS")) == "value of AWS.region"
    assert target_text("checkout") == "checkout" and target_text(None) is None


async def test_values_of_to_and_default() -> None:
    report = await lint([rule("team.data", ns("=", "a")), rule("  ", ns("=", "b"))], default="un.tagged")
    assert codes(report) == [(None, "dotted_value"), (0, "dotted_value"), (1, "blank_to")]
    assert "cannot contain dots" in report.findings[0].message
    report = await lint([rule("A", ns("=", "a"))], default=None)
    assert codes(report) == [(None, "missing_default")]
    assert report.ok and report.warnings == 1


async def test_rule_count_limits() -> None:
    report = await lint([])
    assert codes(report) == [(None, "empty_rules")] and not report.ok
    many = [rule(f"v{i}", ns("=", "a")) for i in range(MAX_RULES + 1)]
    report = await lint(many)
    assert codes(report) == [(None, "too_many_rules")] and not report.ok and report.rules == []


async def test_empty_filter_and_bad_timeframe() -> None:
    report = await lint([rule("A", {}), rule("B", ns("=", "a"), Timeframe(from_=5, to=1))])
    assert codes(report) == [(0, "empty_filter"), (1, "bad_timeframe")]


async def test_rules_from_tag_and_raw_filters() -> None:
    raw = {
        "OR": [
            {
                "costCenter": "Kubernetes",
                "key": "namespace",
                "operator": "oneOf",
                "value": ["a"],
                "displayName": "Namespace",
            }
        ]
    }
    tag = VirtualTag(
        id="vt-3",
        name="Teams",
        rules=[
            VirtualTagRule(to="A", filters=raw, timeframe=Timeframe(from_=1, to=2)),
            VirtualTagRule(to=TagReference(key="vt-1"), filters=None),
        ],
        default_value="other",
    )
    specs = rules_from_tag(tag)
    assert specs[0].filter == raw and specs[0].timeframe == Timeframe(from_=1, to=2)
    assert RuleSpec.model_validate({"to": "x", "filters": raw}).filter == raw
    report = await lint_rules(specs, tag.default_value, cat(), tag_id=tag.id)
    assert report.rules[0].filter == {
        "costCenter": "Kubernetes",
        "key": "namespace",
        "operator": "oneOf",
        "value": ["a"],
    }
    assert codes(report) == [(1, "empty_filter")]


def test_implies_basics() -> None:
    def c(op: str, value: Any = None, key: str = "k") -> dict[str, Any]:
        d: dict[str, Any] = {"costCenter": "X", "key": key, "operator": op}
        if value is not None:
            d["value"] = value
        return d

    assert implies(c("is", "a"), c("oneOf", ["a", "b"]))
    assert not implies(c("oneOf", ["a", "b"]), c("is", "a"))
    assert implies(c("oneOf", ["a"]), c("notOneOf", ["b"]))
    assert not implies(c("oneOf", ["a"]), c("notOneOf", ["A"]))  # unsafe if Finout compares case-insensitively
    assert implies({"AND": [c("is", "a"), c("exists", key="j")]}, {"OR": [c("exists", key="j"), c("is", "z")]})
    assert not implies(c("notExists"), c("notOneOf", ["a"]))
    assert implies({"OR": [c("is", "a"), c("is", "b")]}, c("oneOf", ["a", "b"]))
    assert not implies(c("is", "a", key="j"), c("is", "a"))
