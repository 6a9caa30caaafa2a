"""Discovery that helps: closest values, how each hit matched, values per cost center for an
ambiguous key, the cost-center guide, linting every tag at once, and what the server cannot do."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from finout_mcp.sandbox import catalog as sandbox_catalog
from finout_mcp.services.search import build_value_index, similarity
from tests.support import call, demo


def kind(query: str, *names: str) -> str:
    """How a search hit matched, worked out here independently of the server's code."""

    def norm(t: str) -> str:
        for sep in "_-./:":
            t = t.replace(sep, " ")
        return " ".join(t.lower().split())

    q = norm(query)
    forms = [norm(n) for n in names if n]
    if q in forms:
        return "exact"
    if any(f.startswith(q) for f in forms):
        return "prefix"
    if any(q in f for f in forms):
        return "inside"
    return "fuzzy"


def test_similarity_weighs_spelling_and_shared_words() -> None:
    assert similarity("data platform", "data pipeline") > similarity("data platform", "airflow")
    assert similarity("us east 1", "us east1") == 1.0  # the same letters
    assert similarity("us east 1", "eastus") > similarity("us east 1", "westus2")
    idx = build_value_index(["airflow", "data-pipeline", "checkout", "kube-system"])
    assert idx.closest("data-platform") == ["data-pipeline"]
    assert build_value_index(sandbox_catalog.AZURE_REGIONS).closest("us-east-1")[0] == "eastus"


async def test_unknown_value_gets_its_closest_existing_values(tmp_path: Path) -> None:
    assert "data-pipeline" in sandbox_catalog.NAMESPACES and "data-platform" not in sandbox_catalog.NAMESPACES
    async with demo(tmp_path) as (client, _sb):
        out = await call(
            client,
            "compose_filter",
            {"intent": {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "data-platform"}},
        )
        values = await call(client, "list_key_values", {"key": "namespace", "search": "data-platform"})
    warning = next(f for f in out["findings"] if f["code"] == "unknown_value")
    assert "data-pipeline" in warning["candidates"] and "data-pipeline" in warning["message"]
    assert values["values"] == [] and any("data-pipeline" in n for n in values["notes"])


async def test_value_and_key_searches_say_how_each_hit_matched(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        values = await call(client, "list_key_values", {"key": "Account Name", "search": "prod"})
        keys = await call(client, "list_megabill_keys", {"search": "account name"})
        fuzzy = await call(client, "list_megabill_keys", {"search": "acount"})
        plain = await call(client, "list_key_values", {"key": "Account Name"})
    assert values["values"] and len(values["match"]) == len(values["values"])
    assert values["match"] == [kind("prod", v) for v in values["values"]]
    assert {"prefix", "inside"} <= set(values["match"])  # prod-eu (prefix), data-prod (inside)
    display = {(e["costCenter"], e["key"]): e["displayName"] for e in sb.account.keys}
    for cc, entries in keys["cost_centers"].items():
        for e in entries:
            assert e["match"] == kind("account name", e["key"], display[(cc, e["key"])]), e
    assert keys["cost_centers"]["AWS"][0] == {"key": "aws_account_name", "name": "Account Name", "match": "exact"}
    assert {e["match"] for es in fuzzy["cost_centers"].values() for e in es} == {"fuzzy"}
    assert "match" not in plain or plain["match"] is None  # no search, nothing to say
    assert any("match[i] says how values[i] matched" in n for n in values["notes"])  # the model reads notes


async def test_every_hit_says_how_it_matched_across_many_searches_and_limits(tmp_path: Path) -> None:
    """The kind each hit reports agrees with an independent reading of the names, whatever the
    query (exact, prefix, inside, fuzzy), the limit that cuts a tier short, or a key found only
    through its cost center (then "inside")."""
    checked = 0
    async with demo(tmp_path) as (client, sb):
        display = {(e["costCenter"], e["key"]): e["displayName"] for e in sb.account.keys}
        for key, searches in {
            "Account Name": ["prod", "prod-eu", "pr", "dev", "prd-eu", "staging"],
            "namespace": ["checkout", "data", "kube", "chekout", "a"],
            "service": ["ec2", "amazon", "elastic", "s3"],
        }.items():
            where = {"cost_center": "AWS"} if key == "service" else {}
            for search in searches:
                for limit in (1, 3, 50):
                    args = {"key": key, "search": search, "limit": limit, **where}
                    got = await call(client, "list_key_values", args)
                    assert got["match"] == [kind(search, v) for v in got["values"]], (key, search, limit, got)
                    checked += len(got["values"])
        for search in ["name", "account", "kubernetes", "kubern", "region", "acount", "pod"]:
            for limit in (2, 50):
                got = await call(client, "list_megabill_keys", {"search": search, "limit": limit})
                for cc, entries in got["cost_centers"].items():
                    for e in entries:
                        want = kind(search, e["key"], display[(cc, e["key"])])
                        if want == "fuzzy" and kind(search, cc) != "fuzzy":
                            want = "inside"  # found through its cost center
                        assert e["match"] == want, (search, limit, cc, e)
                        checked += 1
    assert checked > 100


async def test_ambiguous_key_lists_the_closest_values_per_cost_center(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        out = await call(client, "compose_filter", {"intent": {"key": "region", "op": "=", "value": "us-east-1"}})
    err = next(f for f in out["findings"] if f["code"] == "ambiguous_key")
    per = {ref.split(" ")[0]: values for ref, values in err["closest_values"].items()}
    assert set(per) == {"AWS.region", "GCP.region", "Azure.region"}
    assert per["AWS.region"] == ["us-east-1"]  # it exists there: nothing else to suggest
    assert per["GCP.region"][0] == "us-east1"
    assert per["Azure.region"][0] == "eastus"
    assert all(set(v) <= set(sandbox_catalog.GCP_REGIONS) for v in [per["GCP.region"]])
    assert "us-east1" in err["message"] and "eastus" in err["message"]


async def test_the_guide_explains_everything_in_one_cost_center(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        guide = (await client.read_resource("finout://guide/filters")).contents[0].text  # type: ignore[union-attr]
        out = await call(
            client,
            "compose_filter",
            {
                "intent": {
                    "key": "cost_center_type",
                    "cost_center": "Global",
                    "op": "in",
                    "values": ["Snowflake", "GCP"],
                }
            },
        )
        assert client.instructions is not None and "cost_center_type" in client.instructions
    assert "Global" in guide and "cost_center_type" in guide and "Snowflake" in guide
    assert out["ok"] and out["findings"] == []  # both values exist: the guide's advice composes cleanly
    assert out["readable"].startswith("Global.Cost Center Type in [") and "Snowflake" in out["readable"]


async def test_lint_without_arguments_lints_every_tag(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        # a tag written behind our back (another tool, the UI) with a key that does not exist
        broken = sb.account.new_tag(
            "Broken owner",
            [{"to": "x", "filters": {"costCenter": "AWS", "key": "no_such_key", "operator": "is", "value": "a"}}],
            "other",
            "UI",
            dt.datetime(2026, 11, 1),
        )
        report = await call(client, "lint_virtual_tag")
        one = await call(client, "lint_virtual_tag", {"tag": broken["id"]})
    tags = {t["name"]: t for t in report["tags"]}
    assert set(tags) == {t["name"] for t in sb.account.virtual_tags.values()}
    assert report["tags"][0]["name"] == "Broken owner"  # worst first
    assert tags["Broken owner"]["ok"] is False and tags["Broken owner"]["errors"] == one["errors"] >= 1
    assert any("no_such_key" in p for p in tags["Broken owner"]["problems"])
    assert report["ok"] is False and report["errors"] == sum(t["errors"] for t in report["tags"])


async def test_instructions_say_what_the_server_cannot_do(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        text = client.instructions or ""
    assert "cannot do" in text
    for topic in ("Forecast", "views", "anomaly"):
        assert topic in text
    assert "in the app" in text  # and what to use instead


async def test_a_value_search_says_which_kinds_of_match_it_searched_and_whether_all_are_listed(
    tmp_path: Path,
) -> None:
    """The answer tells inside and fuzzy matches were looked for, and that nothing matching was left out."""
    with_prod = [a for a in sandbox_catalog.AWS_ACCOUNTS if "prod" in a]  # prod-eu, prod-us, data-prod
    assert len(with_prod) >= 3
    async with demo(tmp_path) as (client, _sb):
        every = await call(client, "list_key_values", {"key": "Account Name", "search": "prod"})
        cut = await call(client, "list_key_values", {"key": "Account Name", "search": "prod", "limit": 2})
        short = await call(client, "list_key_values", {"key": "Account Name", "search": "pr"})
    # Few enough inside matches: similar spellings were searched too, and every match is listed.
    assert every["searched"] == ["exact", "prefix", "inside", "fuzzy"]
    assert set(with_prod) <= set(every["values"]) and not every["truncated"]
    note = every["notes"][0]
    assert "inside" in note and "similar spellings (fuzzy)" in note
    assert f"All {len(every['values'])} matching values are listed" in note
    # More inside matches than the limit: fuzzy was not searched, and the answer says how many were cut.
    assert cut["searched"] == ["exact", "prefix", "inside"] and cut["truncated"]
    assert len(cut["values"]) == 2 and cut["total"] == len(with_prod)
    assert f"not searched: {len(with_prod)} values already contain it" in cut["notes"][0]
    assert f"Showing 2 of {len(with_prod)} matching values: raise limit" in cut["notes"][0]
    # Too short for fuzzy: the answer says so instead of leaving it to be guessed.
    assert short["searched"] == ["exact", "prefix", "inside"]
    assert "only for 4 characters or more" in short["notes"][0]


async def test_lint_of_every_tag_numbers_rules_as_the_tag_lint_does(tmp_path: Path) -> None:
    """A problem lint_virtual_tag() lists under «rule N» is rule N of lint_virtual_tag(tag)."""
    async with demo(tmp_path) as (client, _sb):
        report = await call(client, "lint_virtual_tag")
        for row in report["tags"]:
            one = await call(client, "lint_virtual_tag", {"tag": row["id"]})
            for problem in row["problems"]:
                if not problem.split(": ", 1)[1].startswith("rule "):
                    continue
                number, message = problem.split(": ", 1)[1][len("rule ") :].split(": ", 1)
                [rule] = [r for r in one["rules"] if r["index"] == int(number)]
                assert message in [f["message"] for f in rule["findings"]], (problem, rule)
        assert any("rule " in p for row in report["tags"] for p in row["problems"])  # the demo has one
