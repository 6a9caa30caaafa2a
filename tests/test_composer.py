"""Unit tests of the filter composer (finout_mcp.services.composer)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from finout_mcp.api.models import MegabillKey, VirtualTag, VirtualTagRule
from finout_mcp.filters.limits import MAX_CONDITIONS, MAX_DEPTH, MAX_VALUES
from finout_mcp.filters.vocabulary import OPERATORS, normalize_operator
from finout_mcp.services.composer import ComposeResult, compose
from finout_mcp.services.errors import InputError
from tests.filters_support import StaticCatalog, evaluate, readable, resolve_key

B64 = "a3ViZXJuZXRlczpsYWJlbF9zcGFya19zcGFya19leGVjX2lk"


def K(cc: str, key: str, name: str | None = None) -> MegabillKey:
    return MegabillKey(cost_center=cc, key=key, display_name=name)


KEYS = [
    K("AWS", "aws_account_name", "Account Name"),
    K("AWS", "aws_service", "Service"),
    K("AWS", "aws_region", "Region"),
    K("AWS", "f_usage_type", "Usage Type"),
    K("GCP", "gcp_service", "Service"),
    K("GCP", "region", "GCP Region"),
    K("GCP", "gcp_project", "Project"),
    K("Kubernetes", "pl_app", "App (pod label)"),
    K("Kubernetes", "nl_pool", "Pool (node label)"),
    K("Kubernetes", "namespace", "Namespace"),
    K("Kubernetes", B64, "spark exec id"),
    K("Global", "cost_center_type", "Cost Center Type"),
    K("databricks", "cluster", "Cluster"),
    K("Virtual Tags", "vt-team", "Team"),
]
TAGS = [
    VirtualTag(
        id="vt-team",
        name="Team",
        rules=[VirtualTagRule(to="Data", filters={}), VirtualTagRule(to="Web", filters={})],
        default_value="untagged",
    ),
    VirtualTag(id="vt-env", name="Environment", rules=[VirtualTagRule(to="prod", filters={})]),
]
VALUES: dict[tuple[str, str], list[str]] = {
    ("AWS", "aws_account_name"): ["prod-eu", "prod-us", "dev", "staging"],
    ("AWS", "aws_service"): ["AmazonEC2", "AmazonS3", "AmazonRDS"],
    ("Kubernetes", "namespace"): ["checkout", "payments", "kube-system"],
    ("GCP", "gcp_service"): ["Compute Engine"],
}


def catalog() -> StaticCatalog:
    return StaticCatalog(KEYS, VALUES, TAGS)


CAT = catalog()


async def ok(spec: dict[str, Any], **kw: Any) -> ComposeResult:
    r = await compose(spec, CAT, check_values=kw.pop("check_values", False), **kw)
    assert r.ok, r.findings
    assert r.filter is not None
    return r


async def errors(spec: dict[str, Any]) -> list[Any]:
    r = await compose(spec, CAT, check_values=False)
    assert not r.ok and r.filter is None and r.readable is None
    errs = [f for f in r.findings if f.severity == "error"]
    assert errs
    return errs


def c(key: str, op: str, value: Any = None, cc: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"key": key, "op": op}
    if cc is not None:
        d["cost_center"] = cc
    if value is not None:
        d["values" if isinstance(value, list) else "value"] = value
    return d


# ----------------------------------------------------------------------------- the design example


async def test_design_example() -> None:
    spec = {
        "all": [
            {"key": "Account Name", "cost_center": "AWS", "op": "in", "values": ["prod-us", "prod-eu"]},
            {
                "any": [
                    {"key": "aws_service", "op": "=", "value": "AmazonEC2"},
                    {"not": {"key": "pl_app", "cost_center": "Kubernetes", "op": "exists"}},
                ]
            },
        ]
    }
    r = await compose(spec, CAT)
    assert r.ok and r.findings == []
    assert r.filter == {
        "AND": [
            {
                "costCenter": "AWS",
                "key": "aws_account_name",
                "operator": "oneOf",
                "value": ["prod-eu", "prod-us"],
            },
            {
                "OR": [
                    {"costCenter": "AWS", "key": "aws_service", "operator": "is", "value": "AmazonEC2"},
                    {"costCenter": "Kubernetes", "key": "pl_app", "operator": "notExists"},
                ]
            },
        ]
    }
    assert r.readable == (
        "AWS.Account Name in [prod-eu, prod-us] AND "
        "(AWS.Service = AmazonEC2 OR Kubernetes.App (pod label) not exists)"
    )
    assert r.conditions == 3 and r.depth == 2


# ----------------------------------------------------------------------------- key resolution


@pytest.mark.parametrize(
    ("key", "cc", "expected"),
    [
        ("Account Name", None, ("AWS", "aws_account_name")),
        ("account name", "aws", ("AWS", "aws_account_name")),
        ("AWS_ACCOUNT_NAME", None, ("AWS", "aws_account_name")),
        ("pl_app", None, ("Kubernetes", "pl_app")),
        ("app (pod label)", "kubernetes", ("Kubernetes", "pl_app")),
        ("nl_pool", None, ("Kubernetes", "nl_pool")),
        ("f_usage_type", None, ("AWS", "f_usage_type")),
        ("Usage Type", None, ("AWS", "f_usage_type")),
        (B64, None, ("Kubernetes", B64)),
        ("Spark Exec ID", None, ("Kubernetes", B64)),
        ("cluster", "DATABRICKS", ("databricks", "cluster")),
        ("cost_center_type", "global", ("Global", "cost_center_type")),
        ("Team", None, ("Virtual Tags", "vt-team")),
        ("Environment", None, ("Virtual Tags", "vt-env")),  # only in virtual_tags(), not in keys
        ("environment", "virtual tags", ("Virtual Tags", "vt-env")),
        ("vt-env", None, ("Virtual Tags", "vt-env")),
        ("Service", "GCP", ("GCP", "gcp_service")),
        # with a cost center, its key or display name decides (ambiguous without one: see below)
        ("region", "GCP", ("GCP", "region")),
        ("Region", "AWS", ("AWS", "aws_region")),
    ],
)
async def test_key_resolution(key: str, cc: str | None, expected: tuple[str, str]) -> None:
    r = await ok(c(key, "exists", cc=cc))
    assert r.filter is not None
    assert (r.filter["costCenter"], r.filter["key"]) == expected


async def test_key_of_one_cost_center_and_name_of_another_is_ambiguous() -> None:
    """GCP's key `region` and AWS's `aws_region` shown as "Region": a person saying "region" may mean
    either, so without cost_center neither is chosen and both are listed (issue 10)."""
    [err] = await errors(c("region", "exists"))
    assert err.code == "ambiguous_key"
    assert err.candidates == ["GCP.region (GCP Region)", "AWS.aws_region (Region)"]
    assert "cost_center" in err.message
    picked = await ok(c("region", "exists", cc="AWS"))
    assert picked.filter is not None and picked.filter["key"] == "aws_region"


def test_the_issues_region_example_is_ambiguous_without_a_cost_center() -> None:
    keys = [K("AWS", "region", "Region"), K("GCP", "gcp_region", "Region"), K("AWS", "service", "Service")]
    with pytest.raises(InputError) as info:
        resolve_key(keys, "region")
    assert "AWS.region (Region)" in str(info.value) and "GCP.gcp_region (Region)" in str(info.value)
    assert (
        resolve_key(keys, "region", "GCP").key == "gcp_region"
        and resolve_key(keys, "region", "AWS").key == "region"
    )
    assert resolve_key(keys, "service").key == "service"  # one cost center only: the key decides


async def test_ambiguous_display_name_lists_every_candidate() -> None:
    [err] = await errors(c("Service", "=", "x"))
    assert err.code == "ambiguous_key"
    assert set(err.candidates) == {"AWS.aws_service (Service)", "GCP.gcp_service (Service)"}
    assert "AWS.aws_service (Service)" in err.message and "cost_center" in err.message


async def test_unknown_key_did_you_mean() -> None:
    [err] = await errors(c("acount nme", "exists"))
    assert err.code == "unknown_key"
    assert err.candidates[0] == "AWS.aws_account_name (Account Name)"
    assert "Did you mean" in err.message and "list_megabill_keys" in err.message


async def test_unknown_key_under_wrong_cost_center_names_the_right_one() -> None:
    [err] = await errors(c("namespace", "exists", cc="AWS"))
    assert err.code == "unknown_key"
    assert "Kubernetes.namespace (Namespace)" in err.message
    assert "Kubernetes.namespace (Namespace)" in err.candidates


async def test_unknown_cost_center_lists_known() -> None:
    [err] = await errors(c("namespace", "exists", cc="Kubernets"))
    assert err.code == "unknown_cost_center"
    assert "Kubernetes" in err.message and "databricks" in err.message and "Virtual Tags" in err.message
    assert err.candidates[0] == "Kubernetes"


async def test_fuzzy_on_50000_keys() -> None:
    keys = [K("AWS" if i % 2 else "GCP", f"label_{i:05d}_x", f"Label {i}") for i in range(50_000)]
    keys.append(K("Kubernetes", "pl_checkout_service", "checkout service (pod label)"))
    cat = StaticCatalog(keys)
    r = await compose(c("pl_chekout_service", "exists"), cat)
    assert not r.ok
    assert r.findings[0].candidates[0] == "Kubernetes.pl_checkout_service (checkout service (pod label))"
    r = await compose(c("label 49999", "exists"), cat)
    assert r.ok and r.filter == {"costCenter": "AWS", "key": "label_49999_x", "operator": "exists"}


# ----------------------------------------------------------------------------- operators


ALIASES = {
    "oneOf": ["oneOf", "in", "IN", "one_of", "ONE OF", "one-of"],
    "notOneOf": ["notOneOf", "not in", "NOT IN", "not_in", "not_one_of", "NotOneOf"],
    "is": ["is", "=", "==", "equals", "EQUALS", "Is"],
    "isNot": ["isNot", "!=", "is_not", "is not", "IS NOT", "not equals"],
    "contains": ["contains", "CONTAINS"],
    "notContains": ["notContains", "not contains", "not_contains", "NOT CONTAINS"],
    "exists": ["exists", "EXISTS"],
    "notExists": ["notExists", "not exists", "not_exists", "NOT_EXISTS"],
}


@pytest.mark.parametrize(("alias", "op"), [(a, op) for op, aliases in ALIASES.items() for a in aliases])
async def test_operator_alias(alias: str, op: str) -> None:
    assert normalize_operator(alias) == op
    value = None if op in ("exists", "notExists") else "prod-eu"
    r = await ok(c("Account Name", alias, value))
    assert r.filter is not None and r.filter["operator"] == op


async def test_unknown_operator_lists_valid_ones() -> None:
    [err] = await errors(c("Account Name", "like", "x"))
    assert err.code == "unknown_operator"
    for op in OPERATORS:
        assert op in err.message
    assert "not in" in err.message


async def test_missing_operator() -> None:
    [err] = await errors({"key": "Account Name", "value": "x"})
    assert err.code == "missing_operator" and "oneOf" in err.message


# ----------------------------------------------------------------------------- value shaping


@pytest.mark.parametrize(
    ("op", "value", "operator", "expected"),
    [
        ("in", "prod-eu", "oneOf", ["prod-eu"]),
        ("in", ["prod-us", "prod-eu", "prod-us"], "oneOf", ["prod-eu", "prod-us"]),
        ("=", ["prod-us", "prod-eu"], "oneOf", ["prod-eu", "prod-us"]),
        ("!=", ["prod-us", "prod-eu"], "notOneOf", ["prod-eu", "prod-us"]),
        ("is", ["prod-eu"], "is", "prod-eu"),
        ("is", ["prod-eu", "prod-eu"], "is", "prod-eu"),
        ("contains", ["prod"], "contains", "prod"),
        ("=", 42, "is", "42"),
        ("in", [1, 2.5, True], "oneOf", ["1", "2.5", "true"]),
    ],
)
async def test_value_shaping(op: str, value: Any, operator: str, expected: Any) -> None:
    r = await ok(c("Account Name", op, value))
    assert r.filter is not None
    assert r.filter["operator"] == operator and r.filter["value"] == expected


@pytest.mark.parametrize(
    ("cond", "code", "hint"),
    [
        (c("Account Name", "contains", ["a", "b"]), "contains_needs_one_value", "any:[...]"),
        (c("Account Name", "not contains", ["a", "b"]), "contains_needs_one_value", "all:[...]"),
        (c("Account Name", "exists", "x"), "unexpected_value", "takes no value"),
        ({"key": "Account Name", "op": "in", "values": []}, "empty_values", "at least one value"),
        ({"key": "Account Name", "op": "in"}, "missing_value", '"values"'),
        ({"key": "Account Name", "op": "=", "value": None}, "missing_value", '"value"'),
        ({"key": "Account Name", "op": "in", "values": ["a", {"x": 1}]}, "bad_value", "strings"),
        ({"key": "Account Name", "op": "in", "values": ["a", None]}, "bad_value", "strings"),
        ({"key": "Account Name", "op": "=", "value": "  "}, "blank_value", "notExists"),
        (
            {"key": "Account Name", "op": "in", "values": [str(i) for i in range(MAX_VALUES + 1)]},
            "too_many_values",
            "Split",
        ),
        ({"key": "Account Name", "op": "=", "value": "a", "values": ["b"]}, "conflicting_values", "only one"),
        ({"op": "exists"}, "missing_key", '"key"'),
        ({"key": "  ", "op": "exists"}, "missing_key", "key"),
        ({"key": "Account Name", "cost_center": 3, "op": "exists"}, "bad_cost_center", "string"),
    ],
)
async def test_value_and_field_errors(cond: dict[str, Any], code: str, hint: str) -> None:
    errs = await errors(cond)
    assert errs[0].code == code
    assert hint in errs[0].message


async def test_exists_accepts_null_or_empty_value() -> None:
    for v in (None, "", []):
        r = await ok({"key": "Account Name", "op": "exists", "value": v})
        assert r.filter == {"costCenter": "AWS", "key": "aws_account_name", "operator": "exists"}


# ----------------------------------------------------------------------------- structure


async def test_de_morgan_not_all() -> None:
    r = await ok({"not": {"all": [c("Account Name", "in", ["dev"]), c("namespace", "contains", "kube")]}})
    assert r.filter == {
        "OR": [
            {"costCenter": "AWS", "key": "aws_account_name", "operator": "notOneOf", "value": ["dev"]},
            {"costCenter": "Kubernetes", "key": "namespace", "operator": "notContains", "value": "kube"},
        ]
    }


async def test_de_morgan_not_any_and_double_not() -> None:
    r = await ok(
        {
            "not": {
                "any": [
                    c("Account Name", "=", "dev"),
                    {"not": c("namespace", "not exists")},
                    c("pl_app", "!=", "x"),
                ]
            }
        }
    )
    assert r.filter == {
        "AND": [
            {"costCenter": "AWS", "key": "aws_account_name", "operator": "isNot", "value": "dev"},
            {"costCenter": "Kubernetes", "key": "namespace", "operator": "notExists"},
            {"costCenter": "Kubernetes", "key": "pl_app", "operator": "is", "value": "x"},
        ]
    }
    r = await ok({"not": {"not": c("pl_app", "exists")}})
    assert r.filter == {"costCenter": "Kubernetes", "key": "pl_app", "operator": "exists"}


@pytest.mark.parametrize(
    ("op", "neg"),
    [("oneOf", "notOneOf"), ("is", "isNot"), ("contains", "notContains"), ("exists", "notExists")],
)
async def test_leaf_negation_both_ways(op: str, neg: str) -> None:
    value = None if op == "exists" else "x"
    r = await ok({"not": c("pl_app", op, value)})
    assert r.filter is not None and r.filter["operator"] == neg
    r = await ok({"not": c("pl_app", neg, value)})
    assert r.filter is not None and r.filter["operator"] == op


async def test_flatten_merges_and_drops_duplicates() -> None:
    a = c("Account Name", "in", ["prod-us", "prod-eu"])
    a2 = c("aws_account_name", "in", ["prod-eu", "prod-us", "prod-eu"], cc="aws")  # same, as a set
    b = c("namespace", "=", "checkout")
    d = c("pl_app", "exists")
    spec = {"all": [{"all": [a, {"all": [b]}]}, a2, {"any": [{"any": [d]}]}, {"any": [b, d]}, {"any": [d, b]}]}
    r = await ok(spec)
    assert r.filter == {
        "AND": [
            {
                "costCenter": "AWS",
                "key": "aws_account_name",
                "operator": "oneOf",
                "value": ["prod-eu", "prod-us"],
            },
            {"costCenter": "Kubernetes", "key": "namespace", "operator": "is", "value": "checkout"},
            {"costCenter": "Kubernetes", "key": "pl_app", "operator": "exists"},
            {
                "OR": [
                    {"costCenter": "Kubernetes", "key": "namespace", "operator": "is", "value": "checkout"},
                    {"costCenter": "Kubernetes", "key": "pl_app", "operator": "exists"},
                ]
            },
        ]
    }
    # one-child groups vanish, at any depth
    r = await ok({"any": [{"all": [{"any": [d]}]}]})
    assert r.filter == {"costCenter": "Kubernetes", "key": "pl_app", "operator": "exists"}
    assert r.depth == 0 and r.conditions == 1


async def test_or_in_or_after_de_morgan_is_merged() -> None:
    r = await ok(
        {"any": [c("pl_app", "exists"), {"not": {"all": [c("nl_pool", "exists"), c("namespace", "exists")]}}]}
    )
    assert r.filter is not None and list(r.filter) == ["OR"] and len(r.filter["OR"]) == 3


async def test_raw_finout_filter_accepted_and_idempotent() -> None:
    raw = {
        "AND": [
            {
                "costCenter": "AWS",
                "key": "aws_account_name",
                "operator": "oneOf",
                "value": ["prod-us", "prod-eu"],
                "displayName": "Account Name",
            },
            {"OR": [{"costCenter": "AWS", "key": "aws_service", "operator": "equals", "value": "AmazonEC2"}]},
        ]
    }
    r = await ok(raw)
    assert r.filter is not None
    assert "displayName" not in str(r.filter)
    assert r.filter["AND"][1] == {
        "costCenter": "AWS",
        "key": "aws_service",
        "operator": "is",
        "value": "AmazonEC2",
    }
    again = await ok(r.filter)
    assert again.filter == r.filter


async def test_mixed_intent_and_raw_and_field_spellings() -> None:
    spec = {
        "OR": [
            {"all": [{"costCenter": "aws", "key": "Account Name", "operator": "in", "values": "dev"}]},
            {"cost_center": "Kubernetes", "Key": "namespace", "Op": "is", "Value": "checkout"},
            {"and": [{"CostCenter": "Kubernetes", "key": "pl_app", "OPERATOR": "exists"}]},
        ]
    }
    r = await ok(spec)
    assert r.filter is not None and [x["key"] for x in r.filter["OR"]] == [
        "aws_account_name",
        "namespace",
        "pl_app",
    ]


@pytest.mark.parametrize(
    ("spec", "code", "path"),
    [
        ({"all": []}, "empty_group", "all"),
        ({"all": [c("pl_app", "exists"), {"any": []}]}, "empty_group", "all[1].any"),
        ({"any": "x"}, "bad_group", "any"),
        ({"all": [c("pl_app", "exists"), "oops"]}, "bad_node", "all[1]"),
        ({"all": [c("pl_app", "exists")], "any": [c("pl_app", "exists")]}, "mixed_node", ""),
        ({"all": [c("pl_app", "exists")], "key": "x"}, "mixed_node", ""),
        ({"not": [c("pl_app", "exists")]}, "bad_not", "not"),
        (
            {"all": [c("pl_app", "exists"), {"any": [c("nope_key", "exists")]}]},
            "unknown_key",
            "all[1].any[0]",
        ),
        ({}, "bad_node", ""),
    ],
)
async def test_structure_errors_with_path(spec: dict[str, Any], code: str, path: str) -> None:
    errs = await errors(spec)
    assert errs[0].code == code and errs[0].path == path


async def test_errors_are_collected_across_the_tree() -> None:
    errs = await errors({"all": [c("nope_key", "exists"), c("Account Name", "like", "x"), c("pl_app", "in", [])]})
    assert [(e.code, e.path) for e in errs] == [
        ("unknown_key", "all[0]"),
        ("unknown_operator", "all[1]"),
        ("empty_values", "all[2]"),
    ]


async def test_unknown_field_is_a_warning() -> None:
    r = await ok({"key": "pl_app", "op": "exists", "colour": "red"})
    assert [f.code for f in r.findings] == ["unknown_field"]


@pytest.mark.parametrize("spec", [None, "AWS.x = 1", [1, 2], 3])
async def test_non_object_spec_raises_input_error(spec: Any) -> None:
    with pytest.raises(InputError, match="JSON object"):
        await compose(spec, CAT)


# ----------------------------------------------------------------------------- limits


async def test_too_many_conditions() -> None:
    spec = {"any": [c("Account Name", "=", f"a{i}") for i in range(MAX_CONDITIONS + 1)]}
    [err] = await errors(spec)
    assert err.code == "too_many_conditions" and "oneOf" in err.message


async def test_filter_too_deep() -> None:
    node: dict[str, Any] = c("pl_app", "exists")
    for i in range(MAX_DEPTH + 1):
        node = {("all" if i % 2 else "any"): [node, c("namespace", "=", f"n{i}")]}
    [err] = await errors(node)
    assert err.code == "filter_too_deep"
    node = c("pl_app", "exists")
    for i in range(MAX_DEPTH):
        node = {("all" if i % 2 else "any"): [node, c("namespace", "=", f"n{i}")]}
    r = await ok(node)
    assert r.depth == MAX_DEPTH


async def test_10000_deep_input_rejected_cleanly() -> None:
    node: dict[str, Any] = c("pl_app", "exists")
    for _ in range(10_000):
        node = {"not": node}
    with anyio.fail_after(30):  # rejected, not recursed into: no hang, no RecursionError
        r = await compose(node, CAT)
    assert not r.ok and [f.code for f in r.findings] == ["too_deep"]
    lists: Any = []
    for _ in range(10_000):
        lists = [lists]
    r = await compose({"all": lists}, CAT)
    assert [f.code for f in r.findings] == ["too_deep"]


async def test_100000_conditions_rejected_cleanly() -> None:
    spec = {"any": [c("Account Name", "=", f"a{i}") for i in range(100_000)]}
    with anyio.fail_after(30):
        r = await compose(spec, CAT)
    assert not r.ok and [f.code for f in r.findings] == ["too_large"]


# ----------------------------------------------------------------------------- value checks


async def test_unknown_value_warning_with_closest_values() -> None:
    cat = catalog()
    r = await compose(c("Account Name", "in", ["prod-eu", "prod-eu1", "stagin"]), cat)
    assert r.ok
    warns = [f for f in r.findings if f.code == "unknown_value"]
    assert len(warns) == 2 and all(w.severity == "warning" for w in warns)
    assert warns[0].candidates[0] == "prod-eu" and "prod-eu1" in warns[0].message
    assert warns[1].candidates[0] == "staging"
    assert cat.value_calls == [("AWS", "aws_account_name")]


async def test_values_fetched_once_per_distinct_key() -> None:
    cat = catalog()
    spec = {"any": [c("Account Name", "=", "dev"), c("Account Name", "!=", "prod-eu"), c("aws_service", "=", "x")]}
    r = await compose(spec, cat)
    assert sorted(cat.value_calls) == [("AWS", "aws_account_name"), ("AWS", "aws_service")]
    assert [f.code for f in r.findings] == ["unknown_value"]


async def test_values_unavailable_is_a_warning() -> None:
    r = await compose(c("pl_app", "=", "web"), catalog())
    assert r.ok and [f.code for f in r.findings] == ["values_unavailable"]
    assert "not checked" in r.findings[0].message


async def test_contains_without_any_matching_value() -> None:
    r = await compose(c("namespace", "contains", "KUBE"), catalog())
    assert r.ok and r.findings == []
    r = await compose(c("namespace", "contains", "zzz"), catalog())
    assert r.ok and [f.code for f in r.findings] == ["no_matching_value"]


async def test_virtual_tag_values_come_from_the_tag() -> None:
    cat = catalog()
    r = await compose(c("Team", "in", ["Data", "Web", "untagged"]), cat)
    assert r.ok and r.findings == []
    r = await compose(c("Team", "=", "Dta"), cat)
    # a tag takes only the values its rules and default produce: "Dta" can never match (issue 12: an
    # error naming the cause, not a "may be new data" warning)
    assert [f.code for f in r.findings] == ["unproduced_tag_value"] and r.findings[0].candidates[0] == "Data"
    assert not r.ok and r.findings[0].severity == "error" and "no rule of virtual tag" in r.findings[0].message
    assert cat.value_calls == []


async def test_check_values_false_fetches_nothing() -> None:
    cat = catalog()
    r = await compose(c("Account Name", "=", "nope"), cat, check_values=False)
    assert r.ok and r.findings == [] and cat.value_calls == []


# ----------------------------------------------------------------------------- readable / evaluate


def test_readable_quotes_and_falls_back_to_display_name() -> None:
    f = {
        "OR": [
            {"costCenter": "AWS", "key": "aws_account_name", "operator": "oneOf", "value": ["a, b", "c"]},
            {"AND": [{"costCenter": "X", "key": "k", "operator": "isNot", "value": " v", "displayName": "Kay"}]},
            {
                "AND": [
                    {"costCenter": "AWS", "key": "aws_service", "operator": "notExists"},
                    {"costCenter": "AWS", "key": "aws_region", "operator": "notContains", "value": "eu"},
                ]
            },
        ]
    }
    assert readable(f, KEYS) == (
        'AWS.Account Name in ["a, b", c] OR X.Kay != " v" OR '
        "(AWS.Service not exists AND AWS.Region not contains eu)"
    )


def test_evaluate_missing_key_semantics() -> None:
    def cond(op: str, value: Any = None) -> dict[str, Any]:
        d: dict[str, Any] = {"costCenter": "AWS", "key": "k", "operator": op}
        if value is not None:
            d["value"] = value
        return d

    empty: dict[tuple[str, str], str | None] = {}
    row = {("AWS", "k"): "prod-eu"}
    expectations = [
        (cond("oneOf", ["prod-eu"]), True, False),
        (cond("notOneOf", ["prod-eu"]), False, True),
        (cond("is", "prod-eu"), True, False),
        (cond("isNot", "x"), True, True),
        (cond("contains", "prod"), True, False),
        (cond("notContains", "prod"), False, True),
        (cond("exists"), True, False),
        (cond("notExists"), False, True),
    ]
    for f, on_row, on_missing in expectations:
        assert evaluate(f, row) is on_row, f
        assert evaluate(f, empty) is on_missing, f


def test_resolve_key_shares_the_composer_resolution() -> None:
    keys = [
        MegabillKey(cost_center="AWS", key="aws_account_name", display_name="Account Name"),
        MegabillKey(cost_center="AWS", key="service", display_name="Service"),
        MegabillKey(cost_center="GCP", key="service", display_name="Service"),
        MegabillKey(cost_center="Kubernetes", key="pl_app", display_name="App (pod label)"),
    ]
    assert resolve_key(keys, "Account Name").key == "aws_account_name"
    assert resolve_key(keys, "account name", "aws").key == "aws_account_name"
    assert resolve_key(keys, "pl_app").cost_center == "Kubernetes"
    with pytest.raises(InputError, match="aws_account_name"):
        resolve_key(keys, "acount name")
    with pytest.raises(InputError, match="another cost center"):
        resolve_key(keys, "pl_app", "AWS")
    with pytest.raises(InputError, match="ambiguous") as ambiguous:
        resolve_key(keys, "service")
    assert "AWS.service" in str(ambiguous.value) and "GCP.service" in str(ambiguous.value)
    assert resolve_key(keys, "service", "gcp").cost_center == "GCP"
