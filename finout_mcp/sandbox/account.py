"""The in-memory Finout account the sandbox serves (deterministic from a seed)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from finout_mcp.sandbox import catalog
from finout_mcp.sandbox.allocation import Allocator
from finout_mcp.sandbox.catalog import VIRTUAL_TAGS, KeyCatalogue
from finout_mcp.sandbox.costs import CostTable, Line, View, build_views, stable_uuid
from finout_mcp.sandbox.filters import matches
from finout_mcp.sandbox.scans import Scan, build_scans
from finout_mcp.sandbox.spikes import PlantedSpike


def js_date(moment: dt.datetime) -> str:
    """JavaScript ``Date.prototype.toString()`` for a UTC moment."""
    return moment.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")


def _epoch_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86_400_000


class Account:
    """Views, key catalogue, virtual tags (+ metadata), CostGuard scans and endpoints."""

    def __init__(self, seed: int, scale: str, today: dt.date) -> None:
        if scale not in ("demo", "large"):
            raise ValueError("scale must be 'demo' or 'large'")
        self.seed = seed
        self.scale = scale
        self.today = today
        self.account_id = stable_uuid(seed, "account")
        self.catalogue = KeyCatalogue(seed, scale)
        self.scans: list[Scan] = build_scans(seed, today)
        self.endpoints: list[dict[str, Any]] = self._seed_endpoints()
        self.virtual_tags: dict[str, dict[str, Any]] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self._counter = 0
        self._seed_tags()
        # One cost table: the views and the v2 queries are both sums over its rows.
        self.costs = CostTable(seed, today)
        self.allocator = Allocator(self.virtual_tags)
        self.views: list[View] = build_views(
            seed,
            today,
            self.costs,
            row_attrs=self.row,
            matcher=lambda flt: lambda attrs: matches(flt, attrs),
            tag_ids={t["name"]: tag_id for tag_id, t in self.virtual_tags.items()},
            version=lambda: self.allocator.version,
        )
        self._plant_rds_spike()
        if scale == "large":
            self.catalogue.set_filler_target(catalog.LARGE_KEY_COUNT - len(self.virtual_tags))

    # ---------------------------------------------------------------- cost rows
    def row(self, line: Line, day: dt.date) -> Any:
        """A cost row's attributes, its virtual tags' values included."""
        return self.allocator.row(line, day)

    def tags_changed(self) -> None:
        """Call after any virtual tag write: rows are re-allocated, views re-grouped."""
        self.allocator.changed()

    def _plant_rds_spike(self) -> None:
        """RDS in prod-us costs about four times its normal two days ago (for "why did RDS spike?")."""
        ids = frozenset(
            line.id
            for line in self.costs.lines
            if line.attrs.get(("AWS", "service")) == "AmazonRDS"
            and line.attrs.get(("AWS", "aws_account_name")) == "prod-us"
        )
        self.costs.plant(ids, PlantedSpike("AmazonRDS in prod-us", self.today - dt.timedelta(days=2), 1, 3.8))

    # ---------------------------------------------------------------- lookups
    def view(self, view_id: str) -> View | None:
        return next((v for v in self.views if v.id == view_id), None)

    def scan(self, scan_id: str) -> Scan | None:
        return next((s for s in self.scans if s.scan_id == scan_id), None)

    @property
    def keys(self) -> list[dict[str, str]]:
        """All MegaBill keys as the API lists them (Virtual Tags keys = tag ids)."""
        out = [{"costCenter": cc, "key": k, "displayName": d} for cc, k, d in self.catalogue.entries()]
        out.extend(
            {"costCenter": VIRTUAL_TAGS, "key": tag_id, "displayName": tag["name"]}
            for tag_id, tag in self.virtual_tags.items()
        )
        return out

    def key_exists(self, cost_center: str, key: str) -> bool:
        if cost_center == VIRTUAL_TAGS:
            return key in self.virtual_tags
        return self.catalogue.has(cost_center, key)

    def display_name(self, cost_center: str, key: str) -> str:
        if cost_center == VIRTUAL_TAGS:
            tag = self.virtual_tags.get(key)
            return str(tag["name"]) if tag else key
        return self.catalogue.display_name(cost_center, key) or key

    def key_values(self, cost_center: str, key: str) -> list[str] | None:
        if cost_center == VIRTUAL_TAGS:
            return self.tag_values(key) if key in self.virtual_tags else None
        return self.catalogue.values(cost_center, key)

    def tag_values(self, tag_id: str, _seen: frozenset[str] = frozenset()) -> list[str]:
        tag = self.virtual_tags[tag_id]
        values: list[str] = []
        for rule in tag.get("rules", []):
            to = rule.get("to")
            if isinstance(to, str):
                values.append(to)
            elif isinstance(to, dict) and to.get("key") in self.virtual_tags and to["key"] not in _seen:
                values.extend(self.tag_values(to["key"], _seen | {tag_id}))
        default = tag.get("defaultValue")
        if isinstance(default, str) and default:
            values.append(default)
        elif isinstance(default, dict) and default.get("key") in self.virtual_tags and default["key"] not in _seen:
            values.extend(self.tag_values(default["key"], _seen | {tag_id}))
        return list(dict.fromkeys(values))

    # ---------------------------------------------------------------- writes
    def next_id(self, kind: str) -> str:
        self._counter += 1
        return stable_uuid(self.seed, kind, "created", self._counter)

    def new_tag(
        self,
        name: str,
        rules: list[Any],
        default_value: Any,
        who: str,
        now: dt.datetime,
        category: str | None = None,
    ) -> dict[str, Any]:
        tag_id = self.next_id("tag")
        tag = {
            "id": tag_id,
            "accountId": self.account_id,
            "name": name,
            "rules": copy.deepcopy(rules),
            "category": category or "General",
            "defaultValue": default_value,
            "createdBy": who,
            "updatedBy": who,
            "createdAt": js_date(now),
            "updatedAt": js_date(now),
        }
        self.virtual_tags[tag_id] = tag
        self.tags_changed()
        return tag

    # ---------------------------------------------------------------- seeding
    def _seed_endpoints(self) -> list[dict[str, Any]]:
        created = dt.datetime(2024, 3, 4, 9, 30, 12)
        specs: list[tuple[str, str, str | None, str]] = [
            ("email", "FinOps team", "finops@acme.example", "jane@acme.example"),
            ("email", "Payments leads", "payments-leads@acme.example", "raj@acme.example"),
            (
                "slack",
                "#finops-alerts",
                "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
                "jane@acme.example",
            ),
            (
                "slack",
                "#checkout-costs",
                "https://hooks.slack.com/services/T0000/B0001/YYYYYYYYYYYYYYYYYYYYYYYY",
                "li@acme.example",
            ),
            ("msteams", "FinOps / General", None, "Microsoft Teams"),
        ]
        out = []
        for i, (kind, name, to, who) in enumerate(specs):
            endpoint: dict[str, Any] = {
                "id": stable_uuid(self.seed, "endpoint", name),
                "type": kind,
                "name": name,
            }
            if to is not None and name == "Payments leads":
                # finout-api.md:28-30: an older page has `to` at top level, and e-mail examples show an
                # empty `configuration`; one endpoint is served that way so clients must read both places
                endpoint["configuration"] = {}
                endpoint["to"] = to
            elif to is not None:
                endpoint["configuration"] = {"to": to}
            endpoint["createdBy"] = who
            endpoint["createdAt"] = js_date(created + dt.timedelta(days=3 * i, hours=i))
            out.append(endpoint)
        return out

    def _seed_tags(self) -> None:
        def cond(cc: str, key: str, op: str, value: Any = None) -> dict[str, Any]:
            node: dict[str, Any] = {"costCenter": cc, "key": key, "operator": op}
            if value is not None:
                node["value"] = value
            return node

        team_rules = [
            {
                "to": "checkout",
                "filters": {
                    "OR": [
                        cond("Kubernetes", "namespace", "oneOf", ["checkout", "checkout-worker"]),
                        cond("Kubernetes", "pl_team", "is", "checkout"),
                    ]
                },
            },
            {
                "to": "payments",
                "filters": {
                    "OR": [
                        cond("Kubernetes", "namespace", "oneOf", ["payments"]),
                        {
                            "AND": [
                                cond("AWS", "aws_account_name", "oneOf", ["prod-eu", "prod-us"]),
                                cond("AWS", "team", "is", "payments"),
                            ]
                        },
                    ]
                },
            },
            {
                "to": "search",
                "filters": cond("Kubernetes", "namespace", "oneOf", ["search", "search-indexer"]),
            },
            {
                "to": "data-platform",
                "filters": {
                    "OR": [
                        cond("AWS", "aws_account_name", "is", "data-prod"),
                        cond("Kubernetes", "namespace", "oneOf", ["data-pipeline", "airflow"]),
                        cond("Snowflake", "warehouse", "exists"),
                    ]
                },
            },
            {
                "to": "platform",
                "filters": {
                    "AND": [
                        cond("AWS", "aws_account_name", "oneOf", ["shared-services"]),
                        {
                            "OR": [
                                cond("AWS", "service", "oneOf", ["AmazonVPC", "AmazonRoute53"]),
                                cond("AWS", "service", "contains", "CloudWatch"),
                            ]
                        },
                    ]
                },
            },
            {
                "to": "platform",
                "filters": cond("Kubernetes", "namespace", "oneOf", ["kube-system", "monitoring"]),
            },
        ]
        env_from = _epoch_ms(dt.date(2024, 1, 1))
        env_to = _epoch_ms(dt.date(2026, 12, 31)) + 86_400_000 - 1
        env_rules = [
            {
                "to": "production",
                "filters": cond("AWS", "aws_account_name", "oneOf", ["prod-eu", "prod-us", "data-prod"]),
            },
            {
                "to": "staging",
                "filters": {
                    "OR": [
                        cond("AWS", "aws_account_name", "is", "staging"),
                        cond("Kubernetes", "pl_env", "is", "staging"),
                    ]
                },
            },
            {
                "to": "development",
                "filters": cond("AWS", "aws_account_name", "oneOf", ["dev", "sandbox"]),
                "timeframe": {"from": env_from, "to": env_to},
            },
            {
                # an open-ended timeframe (no "to"): the example shows {"from","to"} (finout-api.md:114),
                # no field table promises both (finout-api.md:18-19), so the client must cope without one
                "to": "development",
                "filters": cond("Kubernetes", "pl_env", "is", "development"),
                "timeframe": {"from": env_from},
            },
        ]
        created = dt.datetime(2023, 5, 16, 13, 15, 53)
        team = self._seed_tag("Team", team_rules, "unallocated", created, "Nir")
        env = self._seed_tag("Environment", env_rules, "untagged", created + dt.timedelta(days=3), "Asaf")
        bu_rules = [
            {
                "to": {"key": team["id"], "costCenter": VIRTUAL_TAGS},
                "filters": cond(VIRTUAL_TAGS, team["id"], "oneOf", ["checkout", "payments", "search"]),
            },
            {"to": "Data & ML", "filters": cond(VIRTUAL_TAGS, team["id"], "oneOf", ["data-platform", "ml"])},
            {
                "to": "Shared",
                "filters": {
                    "OR": [
                        cond("Global", "cost_center_type", "oneOf", ["Datadog", "Custom Cost"]),
                        cond(VIRTUAL_TAGS, team["id"], "is", "platform"),
                    ]
                },
            },
        ]
        # finout-api.md:24: "defaultValue may be an object ({key, costCenter}) in newer pages"
        bu_default = {"key": team["id"], "costCenter": VIRTUAL_TAGS}
        bu = self._seed_tag("Business Unit", bu_rules, bu_default, created + dt.timedelta(days=24), "Nir")

        email1, email2, slack1, slack2, teams = (e["id"] for e in self.endpoints)
        grp = [stable_uuid(self.seed, "group", i) for i in range(4)]
        self.metadata[team["id"]] = {
            "checkout": {
                "groups": [grp[0]],
                "customMetadata": {"owner": "li@acme.example", "budget": "9000"},
                "endpoints": [slack2],
            },
            "payments": {
                "groups": [grp[0]],
                "customMetadata": {"owner": "raj@acme.example", "budget": "7000"},
                "endpoints": [email2],
            },
            "data-platform": {
                "groups": [grp[1]],
                "customMetadata": {"owner": "jane@acme.example", "budget": "12000"},
                "endpoints": [email1, slack1],
            },
            "platform": {
                "groups": [grp[2]],
                "customMetadata": {"owner": "omar@acme.example", "budget": "15000"},
                "endpoints": [teams],
            },
        }
        self.metadata[env["id"]] = {
            "production": {
                "groups": [grp[3]],
                "customMetadata": {"owner": "jane@acme.example"},
                "endpoints": [],
            },
            # the GET example's "DevOps Team" has no `endpoints` (finout-api-v1-live.md §6): each field is optional
            "staging": {"groups": [], "customMetadata": {"tier": "non-prod"}},
        }
        self.metadata[bu["id"]] = {
            "Shared": {
                "groups": [grp[2]],
                "customMetadata": {"owner": "jane@acme.example", "budget": "12000"},
                "endpoints": [email1],
            }
        }

    def _seed_tag(
        self, name: str, rules: list[Any], default: str | dict[str, str], created: dt.datetime, who: str
    ) -> dict[str, Any]:
        tag_id = stable_uuid(self.seed, "tag", name)
        updated = created + dt.timedelta(days=25, hours=2, minutes=50, seconds=32)
        tag = {
            "id": tag_id,
            "accountId": self.account_id,
            "name": name,
            "rules": rules,
            "category": "General",
            "defaultValue": default,
            "createdBy": who,
            "updatedBy": "Asaf Liveanu",
            "createdAt": js_date(created),
            "updatedAt": js_date(updated),
        }
        self.virtual_tags[tag_id] = tag
        return tag
