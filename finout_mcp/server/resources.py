"""Resources: the catalogue and virtual tags as readable JSON, plus the filter guide."""

from __future__ import annotations

import json
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import Completion, ResourceTemplateReference

from finout_mcp.server.state import AppState, StateRef

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
first rule it matches, else default_value. "to" may also be {"key": "<other tag id>",
"costCenter": "Virtual Tags"} (take that tag's value). Value names must not contain dots.

## Workflow
compose_filter -> lint_virtual_tag -> create_virtual_tag(dry_run=true) -> show the user ->
create_virtual_tag(dry_run=false, expected_version=<from the dry run>) -> keep the change_id
(undo_change reverts it; list_changes shows what was changed, by whom).
"""


def _json(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False)


async def _guarded(state: AppState, coro: Any) -> Any:
    from finout_mcp.api.errors import FinoutError, NotFoundError
    from finout_mcp.server.errors import describe
    from finout_mcp.services.errors import InputError

    try:
        return await coro
    except NotFoundError as exc:
        raise ResourceNotFoundError(describe(exc, state.secrets)) from None
    except (FinoutError, InputError) as exc:
        raise ResourceError(describe(exc, state.secrets)) from None


def register(server: MCPServer, state_ref: StateRef) -> None:
    def state() -> AppState:
        if state_ref.current is None:  # pragma: no cover - resources are read only while serving
            raise ResourceError("The server is still starting; read the resource again.")
        return state_ref.current

    @server.resource(
        "finout://guide/filters",
        name="filter_guide",
        mime_type="text/markdown",
        description="Grammar of Finout filters and of the intent compose_filter takes, with examples.",
    )
    def filter_guide() -> str:
        return FILTER_GUIDE

    @server.resource(
        "finout://views",
        name="views",
        mime_type="application/json",
        description="The account's saved views (id, name).",
    )
    async def views() -> str:
        vs = await _guarded(state(), state().catalog.views())
        return _json([{"id": v.id, "name": v.name} for v in vs])

    @server.resource(
        "finout://megabill/keys",
        name="megabill_keys",
        mime_type="application/json",
        description="Every MegaBill key grouped by cost center: {cost_center: {key: display name}}.",
    )
    async def keys() -> str:
        from finout_mcp.services.catalog import group_by_cost_center

        ks = await _guarded(state(), state().catalog.keys())
        return _json(
            {cc: {k.key: k.display_name or k.key for k in items} for cc, items in group_by_cost_center(ks).items()}
        )

    @server.resource(
        "finout://megabill/keys/{cost_center}",
        name="megabill_keys_of_cost_center",
        mime_type="application/json",
        description="The MegaBill keys of one cost center.",
    )
    async def keys_of(cost_center: str) -> str:
        ks = await _guarded(state(), state().catalog.keys())
        chosen = [k for k in ks if k.cost_center.lower() == cost_center.lower()]
        if not chosen:
            known = sorted({k.cost_center for k in ks})
            raise ResourceNotFoundError(f"No cost center {cost_center!r}. Known: {', '.join(known)}.")
        return _json({k.key: k.display_name or k.key for k in chosen})

    @server.resource(
        "finout://megabill/values/{cost_center}/{key}",
        name="megabill_values",
        mime_type="application/json",
        description="The values of one MegaBill key.",
    )
    async def values(cost_center: str, key: str) -> str:
        vals = await _guarded(state(), state().catalog.values(cost_center, key))
        return _json(
            {
                "cost_center": cost_center,
                "key": key,
                "count": len(vals),
                "values": vals[:5000],
                "truncated": len(vals) > 5000,
            }
        )

    @server.resource(
        "finout://virtual-tags",
        name="virtual_tags",
        mime_type="application/json",
        description="Virtual tags (id, name, rule count, default value).",
    )
    async def tags() -> str:
        ts = await _guarded(state(), state().catalog.virtual_tags())
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

    @server.resource(
        "finout://virtual-tags/{tag_id}",
        name="virtual_tag",
        mime_type="application/json",
        description="One virtual tag as Finout stores it.",
    )
    async def tag(tag_id: str) -> str:
        t = await _guarded(state(), state().client.get_virtual_tag(tag_id))
        return _json(t.model_dump(by_alias=True, exclude_none=True, mode="json"))

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        if not isinstance(ref, ResourceTemplateReference):
            return None
        state = state_ref.current
        if state is None:
            return None
        from finout_mcp.api.errors import FinoutError
        from finout_mcp.services.errors import InputError

        partial = (argument.value or "").lower()
        try:
            if argument.name == "cost_center":
                names = sorted({k.cost_center for k in await state.catalog.keys()})
            elif argument.name == "key":
                cc = ((context.arguments or {}).get("cost_center") if context else None) or ""
                names = sorted(
                    {k.key for k in await state.catalog.keys() if not cc or k.cost_center.lower() == cc.lower()}
                )
            elif argument.name == "tag_id":
                names = [t.id for t in await state.catalog.virtual_tags()]
            else:
                return None
        except (FinoutError, InputError):
            return Completion(values=[])
        hits = [n for n in names if n.lower().startswith(partial)]
        return Completion(values=hits[:100], total=len(hits), has_more=len(hits) > 100)
