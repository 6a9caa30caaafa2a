"""Write-safety helpers: masking, validation, metadata merge, rule diffs."""

from __future__ import annotations

import pytest

from finout_mcp.api.models import Endpoint, ValueMetadata, VirtualTag, VirtualTagRule, VirtualTagWrite
from finout_mcp.filters.canonical import canonical_json
from finout_mcp.redact import mask_secret_url, scrub_json, scrub_secrets
from finout_mcp.services.diffs import diff_metadata, diff_rules, diff_tag
from finout_mcp.services.errors import InputError
from finout_mcp.services.safety import (
    mask_endpoint,
    merge_metadata,
    same_content,
    validate_email,
    validate_metadata_values,
    validate_name,
    validate_slack_webhook,
)

HOOK = "https://hooks.slack.com/services/T000ABCD/B000EFGH/XyZsecretTOKEN9f3Q"


# ----------------------------------------------------------------------------- secrets


def test_mask_secret_url_keeps_host_and_last_four() -> None:
    assert mask_secret_url(HOOK) == "https://hooks.slack.com/…9f3Q"
    assert "secret" not in mask_secret_url(HOOK)
    assert mask_secret_url("short") == "******"
    assert (
        mask_secret_url("https://hooks.slack-gov.com/services/a/b/cdef1234") == "https://hooks.slack-gov.com/…1234"
    )


def test_mask_endpoint() -> None:
    slack = Endpoint.model_validate({"id": "e1", "type": "slack", "name": "alerts", "configuration": {"to": HOOK}})
    masked = mask_endpoint(slack)
    assert masked.configuration is not None and masked.configuration.to == "https://hooks.slack.com/…9f3Q"
    assert slack.configuration is not None and slack.configuration.to == HOOK  # original untouched
    email = Endpoint.model_validate(
        {"id": "e2", "type": "email", "name": "fin", "configuration": {"to": "fin@example.com"}}
    )
    assert mask_endpoint(email) == email
    teams = Endpoint.model_validate({"id": "e3", "type": "msteams", "name": "t"})
    assert mask_endpoint(teams) == teams


def test_scrub_secrets() -> None:
    text = f"key=SuperSecretKey123 posting to {HOOK} and HTTPS://HOOKS.SLACK-GOV.COM/services/x/y/zzzz9999."
    out = scrub_secrets(text, ["SuperSecretKey123", ""])
    assert "SuperSecretKey123" not in out and "XyZsecretTOKEN" not in out and "zzzz9999" not in out
    assert "******" in out and "https://hooks.slack.com/…9f3Q" in out
    assert scrub_secrets("nothing here", []) == "nothing here"


def test_scrub_json_masks_slack_endpoint_to_even_if_not_a_hook_url() -> None:
    data = {"endpoint": {"type": "slack", "configuration": {"to": "https://example.com/secret-path-abcd"}}}
    out = scrub_json(data)
    assert out["endpoint"]["configuration"]["to"] == "https://example.com/…abcd"
    assert scrub_json({"note": HOOK})["note"] == "https://hooks.slack.com/…9f3Q"


# ----------------------------------------------------------------------------- e-mail


@pytest.mark.parametrize(
    "addr",
    ["finops@example.com", "a.b+tag@sub.example.co.uk", "x_y-z@xn--bcher-kva.example", "O'Brien@example.ie"],
)
def test_email_accepted(addr: str) -> None:
    assert validate_email(f"  {addr} ") == addr


def test_email_list() -> None:
    assert validate_email("a@example.com, b@example.org,A@example.com") == "a@example.com,b@example.org"


@pytest.mark.parametrize(
    "addr",
    [
        "",
        "no-at-sign.example.com",
        "a@b",
        "a@@example.com",
        "a@b@example.com",
        "fin@example.com\nBcc: victim@example.com",
        "fin@example.com\r\n",
        "fin ops@example.com",
        "jörg@example.com",
        "fin@exämple.com",
        ".fin@example.com",
        "fin..ops@example.com",
        "fin@-example.com",
        "fin@example.c",
        "a@example.com,,b@example.com",
        "a@example.com, not-an-address",
        "x" * 250 + "@example.com",
        "fin@example.com\x00",
    ],
)
def test_email_rejected(addr: str) -> None:
    with pytest.raises(InputError) as err:
        validate_email(addr)
    msg = str(err.value)
    assert "finops@example.com" in msg  # an example of the fix
    assert "\n" not in msg


def test_email_error_names_the_bad_address() -> None:
    with pytest.raises(InputError, match="«not-an-address»"):
        validate_email("ok@example.com, not-an-address")


# ----------------------------------------------------------------------------- slack webhook


def test_webhook_accepted() -> None:
    assert validate_slack_webhook(f" {HOOK} ") == HOOK
    assert validate_slack_webhook("https://hooks.slack-gov.com/services/T1/B2/abc").startswith("https://")
    assert validate_slack_webhook("https://hooks.slack.com:443/services/T1/B2/abc")


@pytest.mark.parametrize(
    "url",
    [
        HOOK.replace("https://", "http://"),
        "https://hooks.slack.com.evil.com/services/T1/B2/secretsecret",
        "https://evil.com/services/T1/B2/secretsecret",
        "https://user:pw@hooks.slack.com/services/T1/B2/secretsecret",
        "https://hooks.slack.com@evil.com/services/T1/B2/secretsecret",
        "https://hooks.slack.com:8443/services/T1/B2/secretsecret",
        "https://hooks.slack.com:99999/services/T1/B2/secretsecret",
        "javascript:alert(1)//hooks.slack.com/services/x",
        "https://hooks.slack.com/api/T1/B2/secretsecret",
        "https://hooks.slack.com/services/",
        "https://hooks.slack.com/services/T1/B2/secret secret",
        "https://hooks.slack.com/services/T1/B2/secret\nsecret",
        "https://hooks.slack.com\\@evil.com/services/T1/B2/secretsecret",
        "https://api.slack.com/services/T1/B2/secretsecret",
        "",
    ],
)
def test_webhook_rejected_without_echoing_the_url(url: str) -> None:
    with pytest.raises(InputError) as err:
        validate_slack_webhook(url)
    msg = str(err.value)
    assert "hooks.slack.com/services/T" in msg  # says what is needed
    assert "secretsecret" not in msg and "T1/B2" not in msg


# ----------------------------------------------------------------------------- names and metadata


def test_validate_name() -> None:
    assert validate_name("  Team  ") == "Team"
    for bad in ["", "   ", "a\nb", "a\x00b", "x" * 201]:
        with pytest.raises(InputError):
            validate_name(bad)
    with pytest.raises(InputError, match="endpoint name"):
        validate_name("", what="endpoint name")


def test_metadata_dots_rejected_with_suggestion() -> None:
    validate_metadata_values({"Data Team": ValueMetadata(), "ops_eu": ValueMetadata()})
    with pytest.raises(InputError) as err:
        validate_metadata_values({"team.a": ValueMetadata(), "ok": ValueMetadata(), "v1.2.3": ValueMetadata()})
    msg = str(err.value)
    assert "«team.a»" in msg and "«v1.2.3»" in msg and "«ok»" not in msg
    assert "«team-a»" in msg and "'_'" in msg
    with pytest.raises(InputError, match="empty"):
        validate_metadata_values({" ": ValueMetadata()})


def test_merge_metadata_unions_and_keeps_existing() -> None:
    current = {
        "A": ValueMetadata(groups=["g1", "g2"], endpoints=["e1"], custom_metadata={"owner": "x", "cc": "1"}),
        "B": ValueMetadata(groups=["g9"]),
    }
    incoming = {
        "A": ValueMetadata(groups=["g2", "g3"], endpoints=["e2", "e1"], custom_metadata={"owner": "y"}),
        "C": ValueMetadata(endpoints=["e5"]),
    }
    merged = merge_metadata(current, incoming)
    assert merged["A"].groups == ["g1", "g2", "g3"]
    assert merged["A"].endpoints == ["e1", "e2"]
    assert merged["A"].custom_metadata == {"owner": "y", "cc": "1"}
    assert merged["B"] == current["B"]
    assert merged["C"].endpoints == ["e5"]
    assert current["A"].groups == ["g1", "g2"]  # inputs untouched


# ----------------------------------------------------------------------------- diffs


def cond(key: str, *values: str, op: str = "oneOf", display: str | None = None) -> dict[str, object]:
    c: dict[str, object] = {"costCenter": "AWS", "key": key, "operator": op, "value": list(values)}
    if display:
        c["displayName"] = display
    return c


def rule(to: str, flt: dict[str, object]) -> VirtualTagRule:
    return VirtualTagRule.model_validate({"to": to, "filters": flt})


def test_canonical_json_ignores_irrelevant_order() -> None:
    a = {"AND": [cond("acct", "a", "b"), {"OR": [cond("svc", "ec2"), cond("region", "eu", display="Region")]}]}
    b = {"AND": [{"OR": [cond("region", "eu"), cond("svc", "ec2")]}, cond("acct", "b", "a", "a")]}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(cond("acct", "a")) != canonical_json(cond("acct", "b"))
    assert canonical_json({"AND": [cond("x", "1")]}) != canonical_json({"OR": [cond("x", "1")]})
    # contains-style single values are not sets
    assert canonical_json(cond("x", "ab", op="contains")) != canonical_json(cond("x", "ba", op="contains"))


def test_diff_rules_cases() -> None:
    r1, r2, r3, r4 = (rule(n, cond("k", n)) for n in ("one", "two", "three", "four"))
    r2b = rule("two", cond("k", "two", "more"))
    diff = diff_rules([r1, r2, r3], [r1, r2b, r4, r3])
    kinds = [(d.change, d.before_index, d.after_index) for d in diff]
    # r3 only shifted because r4 was inserted above it: unchanged, not "moved" (issue 12: unchanged
    # rules are summarised, not repeated)
    assert kinds == [("unchanged", 1, 1), ("changed", 2, 2), ("added", None, 3), ("unchanged", 3, 4)]
    diff = diff_rules([r1, r2], [r2])
    assert [(d.change, d.before_index, d.after_index) for d in diff] == [
        ("unchanged", 2, 1),
        ("removed", 1, None),
    ]
    assert diff[1].before_to == "one" and diff[1].after_to is None and diff[1].before is not None
    moved = diff_rules([r1, r2, r3], [r3, r1, r2])  # r3 really moved to the top
    assert [(d.change, d.before_index, d.after_index) for d in moved] == [
        ("moved", 3, 1),
        ("unchanged", 1, 2),
        ("unchanged", 2, 3),
    ]
    assert diff_rules([], []) == []


def test_diff_rules_ignores_display_name_and_child_order() -> None:
    a = rule("x", {"AND": [cond("k", "1", "2", display="K"), cond("j", "3")]})
    b = rule("x", {"AND": [cond("j", "3"), cond("k", "2", "1")]})
    assert [d.change for d in diff_rules([a], [b])] == ["unchanged"]
    assert diff_rules([a], [a])[0].after_filters is not None
    assert "displayName" not in str(diff_rules([a], [a])[0].after_filters)


def test_diff_tag_summary() -> None:
    before = VirtualTag.model_validate(
        {
            "id": "t1",
            "name": "Teams",
            "defaultValue": "untagged",
            "rules": [{"to": "A", "filters": cond("k", "a")}],
        }
    )
    after = VirtualTagWrite.model_validate(
        {
            "name": "Teams v2",
            "defaultValue": "other",
            "rules": [{"to": "A", "filters": cond("k", "a")}, {"to": "B", "filters": cond("k", "b")}],
        }
    )
    d = diff_tag(before, after)
    assert d.name_changed and d.default_changed
    assert d.counts["added"] == 1 and d.counts["unchanged"] == 1
    assert "«Teams» → «Teams v2»" in d.summary and "1 added" in d.summary
    same = diff_tag(before, VirtualTagWrite.model_validate(before.model_dump(by_alias=True)))
    assert not same.name_changed and not same.default_changed and "rules unchanged" in same.summary
    assert same.rules == [] and same.unchanged_rules == [1]  # unchanged rules are summarised, not repeated


def test_diff_tag_shows_value_level_changes_in_readable_form() -> None:
    """Adding one account to a rule: the rule once, readable before/after, and `Account Name: +staging`."""
    acct = {"costCenter": "AWS", "key": "aws_account_name", "displayName": "Account Name", "operator": "oneOf"}
    before = VirtualTag.model_validate(
        {
            "id": "t1",
            "name": "Env",
            "rules": [
                {"to": "prod", "filters": {**acct, "value": ["prod-eu"]}},
                {"to": "dev", "filters": {**acct, "value": ["dev", "sandbox"]}},
            ],
        }
    )
    after = VirtualTagWrite.model_validate(
        {
            "name": "Env",
            "rules": [
                {"to": "prod", "filters": {**acct, "value": ["prod-eu"]}},
                {"to": "pre-prod", "filters": {**acct, "value": ["dev", "staging"]}},
            ],
        }
    )
    d = diff_tag(before, after)
    (changed,) = d.rules
    assert changed.change == "changed" and changed.after_index == 2
    assert changed.value_changes == ["Account Name: +staging, -sandbox", "to: dev → pre-prod"]
    assert changed.before == "AWS.Account Name in [dev, sandbox] → dev"
    assert changed.after == "AWS.Account Name in [dev, staging] → pre-prod"
    assert changed.before_filters is None  # the raw filter only with include_filters
    assert diff_tag(before, after, include_filters=True).rules[0].after_filters is not None
    assert d.unchanged_rules == [1]


def test_diff_metadata_per_value() -> None:
    before = {
        "checkout": ValueMetadata.model_validate({"groups": ["g1"], "customMetadata": {"owner": "li"}}),
        "search": ValueMetadata(),
        "ml": ValueMetadata(),
    }
    after = {
        "checkout": ValueMetadata.model_validate({"groups": ["g1", "g2"], "customMetadata": {"owner": "ana"}}),
        "ml": ValueMetadata(),
        "payments": ValueMetadata(),
    }
    d = diff_metadata(before, after)
    assert d.added == ["payments"] and d.removed == ["search"] and d.unchanged == 1
    assert d.changed == {"checkout": ["groups: +g2", "customMetadata.owner: li → ana"]}


def test_same_content() -> None:
    existing = VirtualTag.model_validate(
        {
            "id": "t1",
            "name": "Teams",
            "defaultValue": "untagged",
            "createdAt": "Tue May 16 2023",
            "rules": [{"to": "A", "filters": {"OR": [cond("k", "a", "b", display="Key"), cond("j", "c")]}}],
        }
    )
    body = VirtualTagWrite.model_validate(
        {
            "name": "Teams",
            "defaultValue": "untagged",
            "rules": [{"to": "A", "filters": {"OR": [cond("j", "c"), cond("k", "b", "a")]}}],
        }
    )
    assert same_content(existing, body)
    assert not same_content(existing, body.model_copy(update={"default_value": "x"}))
    assert not same_content(existing, body.model_copy(update={"name": "Other"}))
    two = body.model_copy(update={"rules": [*body.rules, rule("B", cond("k", "z"))]})
    assert not same_content(existing, two)
    tag_ref = VirtualTagRule.model_validate({"to": {"key": "vt1", "costCenter": "Virtual Tags"}, "filters": None})
    assert not same_content(existing, body.model_copy(update={"rules": [tag_ref]}))
