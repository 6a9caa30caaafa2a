"""Resources: the catalogue and virtual tags as readable JSON, plus the filter guide.

With several accounts configured every catalogue URI names its account
(``finout://{account}/views``, ``finout://{account}/virtual-tags/{tag_id}``…); the filter guide
is the same for all. With one account the URIs are as they always were (``finout://views``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import Completion, ResourceTemplateReference

from finout_mcp.accounts import Accounts, UnknownAccount
from finout_mcp.server.state import AccountState, StateRef

FILTER_GUIDE = """\
# Finout filters and the intent format

## Finout filter (what the API stores)
- Condition: {"costCenter": "AWS", "key": "aws_account_name", "operator": "oneOf", "value": ["prod-eu"]}
- Group: {"AND": [node, ...]} or {"OR": [node, ...]}, nested to any depth. There is no NOT.
- Operators: oneOf, notOneOf (value: list of strings); is, isNot, contains, notContains (one string);
  exists, notExists (no value).
- costCenter is case-sensitive (AWS, GCP, Azure, Kubernetes, Datadog, Snowflake, Virtual Tags,
  Custom Cost, Global, databricks). key is the MegaBill key (list_megabill_keys), not the display name.
  Kubernetes labels: pl_<pod label>, nl_<node label>; enrichment: f_<name>; a virtual tag's key is its id.

## Intent (what you write; compose_filter turns it into the above)
- {"all": [node, ...]} = AND, {"any": [node, ...]} = OR, {"not": node} = negation (pushed down for you).
- Condition: {"key": "Account Name", "cost_center": "AWS", "op": "in", "values": ["prod-eu", "prod-us"]}
  - key: the key or its display name, any case; cost_center optional when the key is unambiguous.
  - op: oneOf notOneOf is isNot contains notContains exists notExists, or the aliases
    in, not in, =, ==, equals, !=, not contains, not exists (snake_case too).
  - value or values: either spelling; a single value for =, != , contains; a list for in / not in.
- A raw Finout filter is accepted too, and checked the same way.

## Everything in one cost center ("all of Snowflake", "all GCP spend")
Use the Global key cost_center_type, whose values are the cost centers themselves:
  {"key": "cost_center_type", "cost_center": "Global", "op": "=", "value": "Snowflake"}
  {"key": "cost_center_type", "cost_center": "Global", "op": "in", "values": ["GCP", "Azure"]}
Its values (list_key_values key="cost_center_type" cost_center="Global") are e.g. AWS, GCP, Azure,
Kubernetes, Datadog, Snowflake, Custom Cost. Do not write {"key": "service", ...} per service to
mean a whole cloud: new services would be missed. A key of another cost center (AWS.service)
only ever matches costs of that cost center.

## Examples
1. Prod AWS accounts or the checkout namespace:
   {"any": [{"key": "Account Name", "op": "in", "values": ["prod-eu", "prod-us"]},
            {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "checkout"}]}
2. EC2 outside staging: {"all": [{"key": "service", "cost_center": "AWS", "op": "=", "value": "AmazonEC2"},
   {"not": {"key": "Account Name", "op": "=", "value": "staging"}}]}
3. Pods without an app label: {"key": "pl_app", "op": "not exists"}
4. All Snowflake and Datadog spend: {"key": "cost_center_type", "cost_center": "Global", "op": "in",
   "values": ["Snowflake", "Datadog"]}

## Virtual tag rules
[{"to": "Checkout", "filter": <intent>}, ...] are evaluated top to bottom; a cost line takes the
first rule it matches, else default_value. "to" and default_value may also be {"key": "<other tag id>"}
(take that tag's value: "everything else gets what Team gives" is default_value {"key": "<Team's id>"}).
Value names must not contain dots.

## Workflow
New tag: compose_filter(intent) for each rule -> lint_virtual_tag(rules, default_value) ->
create_virtual_tag(name, rules, default_value, dry_run=true) -> show the user -> the same call with
dry_run=false -> keep the change_id.
Change a tag (add a condition, a value, a rule): get_virtual_tag(tag, include_filters=true) -> edit the
rules it returns (each keeps its to, filter and timeframe; add the condition to that rule's filter,
e.g. wrap it as {"any": [<its filter>, <new condition>]}) -> update_virtual_tag(tag, rules,
dry_run=true) with the complete list (rules replaces all rules) -> show the user the diff and warnings ->
update_virtual_tag(tag, rules, dry_run=false, expected_version=<from the dry run>) -> keep the change_id.
undo_change(change_id) reverts a write; list_changes(tag) shows what was changed, by whom.
"""


def _json(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False)


async def _guarded(state: AccountState, coro: Any) -> Any:
    from finout_mcp.api.errors import FinoutError, NotFoundError
    from finout_mcp.server.errors import describe
    from finout_mcp.services.errors import InputError

    try:
        return await coro
    except NotFoundError as exc:
        raise ResourceNotFoundError(describe(exc, state.scrubber)) from None
    except (FinoutError, InputError) as exc:
        raise ResourceError(describe(exc, state.scrubber)) from None


# ----------------------------------------------------------------------------- what each resource reads


async def read_views(state: AccountState) -> str:
    vs = await _guarded(state, state.catalog.views())
    return _json([{"id": v.id, "name": v.name} for v in vs])


async def read_keys(state: AccountState) -> str:
    from finout_mcp.services.search import group_by_cost_center

    ks = await _guarded(state, state.catalog.keys())
    return _json(
        {cc: {k.key: k.display_name or k.key for k in items} for cc, items in group_by_cost_center(ks).items()}
    )


async def read_keys_of(state: AccountState, cost_center: str) -> str:
    ks = await _guarded(state, state.catalog.keys())
    chosen = [k for k in ks if k.cost_center.lower() == cost_center.lower()]
    if not chosen:
        known = sorted({k.cost_center for k in ks})
        raise ResourceNotFoundError(f"No cost center {cost_center!r}. Known: {', '.join(known)}.")
    return _json({k.key: k.display_name or k.key for k in chosen})


async def read_values(state: AccountState, cost_center: str, key: str) -> str:
    vals = await _guarded(state, state.catalog.values(cost_center, key))
    return _json(
        {
            "cost_center": cost_center,
            "key": key,
            "count": len(vals),
            "values": vals[:5000],
            "truncated": len(vals) > 5000,
        }
    )


async def read_tags(state: AccountState) -> str:
    ts = await _guarded(state, state.catalog.virtual_tags())
    return _json(
        [
            {
                "id": t.id,
                "name": t.name,
                "rules": len(t.rules),
                "defaultValue": t.model_dump(by_alias=True, mode="json").get("defaultValue"),
            }
            for t in ts
        ]
    )


async def read_tag(state: AccountState, tag_id: str) -> str:
    t = await _guarded(state, state.client.get_virtual_tag(tag_id))
    return _json(t.model_dump(by_alias=True, exclude_none=True, mode="json"))


DESCRIPTIONS = {
    "views": "The account's saved views (id, name).",
    "megabill_keys": "Every MegaBill key grouped by cost center: {cost_center: {key: display name}}.",
    "megabill_keys_of_cost_center": "The MegaBill keys of one cost center.",
    "megabill_values": "The values of one MegaBill key.",
    "virtual_tags": "Virtual tags (id, name, rule count, default value).",
    "virtual_tag": "One virtual tag as Finout stores it.",
}


# ----------------------------------------------------------------------------- registration


def register(server: MCPServer, state_ref: StateRef, accounts: Accounts) -> None:
    """The resources; with several accounts each URI names its account (``finout://{account}/views``)."""

    def state(account: str | None = None) -> AccountState:
        if state_ref.current is None:  # pragma: no cover - resources are read only while serving
            raise ResourceError("The server is still starting; read the resource again.")
        try:
            return state_ref.current.account(account)
        except UnknownAccount as exc:
            raise ResourceNotFoundError(str(exc)) from None

    @server.resource(
        "finout://guide/filters",
        name="filter_guide",
        mime_type="text/markdown",
        description="Grammar of Finout filters and of the intent compose_filter takes, with examples.",
    )
    def filter_guide() -> str:
        return FILTER_GUIDE

    if accounts.multi:
        _register_per_account(server, state, accounts)
    else:
        _register_single(server, state)
    _register_completions(server, state_ref, accounts)


def _json_resource(server: MCPServer, uri: str, name: str, *, account: bool = False) -> Any:
    description = DESCRIPTIONS[name]
    if account:
        description = f"{description[:-1]}, of one Finout account."
    return server.resource(uri, name=name, mime_type="application/json", description=description)


def _register_single(server: MCPServer, state: Callable[..., AccountState]) -> None:
    @_json_resource(server, "finout://views", "views")
    async def views() -> str:
        return await read_views(state())

    @_json_resource(server, "finout://megabill/keys", "megabill_keys")
    async def keys() -> str:
        return await read_keys(state())

    @_json_resource(server, "finout://megabill/keys/{cost_center}", "megabill_keys_of_cost_center")
    async def keys_of(cost_center: str) -> str:
        return await read_keys_of(state(), cost_center)

    @_json_resource(server, "finout://megabill/values/{cost_center}/{key}", "megabill_values")
    async def values(cost_center: str, key: str) -> str:
        return await read_values(state(), cost_center, key)

    @_json_resource(server, "finout://virtual-tags", "virtual_tags")
    async def tags() -> str:
        return await read_tags(state())

    @_json_resource(server, "finout://virtual-tags/{tag_id}", "virtual_tag")
    async def tag(tag_id: str) -> str:
        return await read_tag(state(), tag_id)


def _register_per_account(server: MCPServer, state: Callable[..., AccountState], accounts: Accounts) -> None:
    @_json_resource(server, "finout://{account}/views", "views", account=True)
    async def views(account: str) -> str:
        return await read_views(state(account))

    @_json_resource(server, "finout://{account}/megabill/keys", "megabill_keys", account=True)
    async def keys(account: str) -> str:
        return await read_keys(state(account))

    @_json_resource(
        server, "finout://{account}/megabill/keys/{cost_center}", "megabill_keys_of_cost_center", account=True
    )
    async def keys_of(account: str, cost_center: str) -> str:
        return await read_keys_of(state(account), cost_center)

    @_json_resource(
        server, "finout://{account}/megabill/values/{cost_center}/{key}", "megabill_values", account=True
    )
    async def values(account: str, cost_center: str, key: str) -> str:
        return await read_values(state(account), cost_center, key)

    @_json_resource(server, "finout://{account}/virtual-tags", "virtual_tags", account=True)
    async def tags(account: str) -> str:
        return await read_tags(state(account))

    @_json_resource(server, "finout://{account}/virtual-tags/{tag_id}", "virtual_tag", account=True)
    async def tag(account: str, tag_id: str) -> str:
        return await read_tag(state(account), tag_id)


def _register_completions(server: MCPServer, state_ref: StateRef, accounts: Accounts) -> None:
    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        if not isinstance(ref, ResourceTemplateReference):
            return None
        partial = (argument.value or "").lower()
        if argument.name == "account":
            hits = [n for n in accounts.names if n.lower().startswith(partial)]
            return Completion(values=hits[:100], total=len(hits), has_more=len(hits) > 100)
        run = state_ref.current
        if run is None:
            return None
        from finout_mcp.api.errors import FinoutError
        from finout_mcp.services.errors import InputError

        given = (context.arguments or {}) if context else {}
        try:
            state = run.account(given.get("account"))
            if argument.name == "cost_center":
                names = sorted({k.cost_center for k in await state.catalog.keys()})
            elif argument.name == "key":
                cc = given.get("cost_center") or ""
                names = sorted(
                    {k.key for k in await state.catalog.keys() if not cc or k.cost_center.lower() == cc.lower()}
                )
            elif argument.name == "tag_id":
                names = [t.id for t in await state.catalog.virtual_tags()]
            else:
                return None
        except (FinoutError, InputError, UnknownAccount):
            return Completion(values=[])
        hits = [n for n in names if n.lower().startswith(partial)]
        return Completion(values=hits[:100], total=len(hits), has_more=len(hits) > 100)
