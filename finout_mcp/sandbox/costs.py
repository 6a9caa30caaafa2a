"""The demo account's one cost table, and the saved views computed from it.

Every cost the sandbox serves comes from :class:`CostTable`: a fixed set of *lines* (one per
combination of cost center, service, account, region, namespace, labels and tags that the
account bills), each with a deterministic daily cost. The v1 views (``POST
/cost/query-by-view``) and the v2 Cost and Usage queries both sum the same ``(line, day)``
costs, so a view's total always equals the same question asked through v2.

Virtual tags are not stored on lines: they are evaluated on each row (first matching rule
wins, see :mod:`finout_mcp.sandbox.allocation`), so a view grouped by a tag, or a v2 query
grouped by one, follows the tag as it is edited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from finout_mcp.sandbox import catalog
from finout_mcp.sandbox.spikes import PlantedSpike, demo_spikes, spike_factor

DAY_MS = 86_400_000
HISTORY_DAYS = 1100  # three years: enough to compare last year with the year before
MAX_RANGE_MS = 90 * DAY_MS
TODAY_FRACTION = 0.5  # today's point is partial: half a day so far (fixed, for determinism)

# v1 cost types (what POST /cost/query-by-view accepts) and their factor on the base cost.
COST_TYPES: dict[str, float] = {
    "unblendedCost": 1.0,
    "blendedCost": 1.01,
    "netUnblendedCost": 0.93,
    "amortizedCost": 0.97,
    "netAmortizedCost": 0.9,
}
# v2 adds list cost (and the usage measurements, which come from each line's unit price).
V2_COST_TYPES: dict[str, float] = {**COST_TYPES, "listCost": 1.08}

Attrs = Mapping[tuple[str, str], str]
GLOBAL_TYPE = ("Global", "cost_center_type")


@dataclass(frozen=True, slots=True)
class Line:
    """One source of daily cost rows: fixed attributes, a base daily cost, a usage unit."""

    id: int
    attrs: dict[tuple[str, str], str]
    base: float
    unit: str
    unit_price: float

    @property
    def cost_center(self) -> str:
        return self.attrs[GLOBAL_TYPE]


@dataclass(frozen=True, slots=True)
class LineSpike:
    """A planted spike (``finout_mcp.sandbox.spikes``) on these lines."""

    line_ids: frozenset[int]
    spike: PlantedSpike


class CostTable:
    """The account's daily cost rows: ``cost(line, day)`` for every line and day of history."""

    def __init__(self, seed: int, today: dt.date) -> None:
        self.seed = seed
        self.today = today
        self.lines: list[Line] = _build_lines(seed)
        self.spikes: list[LineSpike] = []
        self._memo: dict[tuple[int, dt.date], float] = {}

    def plant(self, line_ids: frozenset[int], spike: PlantedSpike) -> None:
        """Make these lines spike (clears the memo of the days it touches)."""
        self.spikes.append(LineSpike(line_ids, spike))
        for k in range(spike.days):
            for line_id in line_ids:
                self._memo.pop((line_id, spike.first_day + dt.timedelta(days=k)), None)

    def first_day(self) -> dt.date:
        return self.today - dt.timedelta(days=HISTORY_DAYS)

    def days(self, start_ms: int, end_ms: int) -> list[dt.date]:
        """UTC days whose midnight lies in [start, end], within the table's history."""
        first = max(ms_day(-(-start_ms // DAY_MS) * DAY_MS), self.first_day())
        last = min(ms_day((end_ms // DAY_MS) * DAY_MS), self.today)
        out = []
        d = first
        while d <= last:
            out.append(d)
            d += dt.timedelta(days=1)
        return out

    def cost(self, line: Line, day: dt.date) -> float:
        """Unblended cost of ``line`` on ``day`` (the other cost types are fixed factors of it)."""
        key = (line.id, day)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        value = self._cost(line, day)
        self._memo[key] = value
        return value

    def _cost(self, line: Line, day: dt.date) -> float:
        if day > self.today or day < self.first_day():
            return 0.0
        # A cheap deterministic hash (seeding a Random per point cost most of a cost query).
        unit = zlib.crc32(f"{self.seed}:{line.id}:{day.toordinal()}".encode()) / 0xFFFFFFFF
        age = (self.today - day).days
        trend = 1.0 + 0.0003 * (HISTORY_DAYS - age)  # slow growth, ~+33% over the history
        weekday = day.weekday()
        weekly = 0.78 if weekday >= 5 else 1.0 + 0.03 * math.sin(weekday)
        noise = 1.0 + (unit * 0.12 - 0.06)
        value = line.base * trend * weekly * noise
        value *= spike_factor((s.spike for s in self.spikes if line.id in s.line_ids), day)
        if day == self.today:
            value *= TODAY_FRACTION
        return max(value, 0.0)


# ----------------------------------------------------------------------------- views


Matcher = Callable[[Attrs], bool]
RowAttrs = Callable[[Line, dt.date], Attrs]


@dataclass
class View:
    """A saved view: an optional filter and a grouping over the cost table.

    ``grouping`` lists ``(costCenter, key)`` pairs; a row's group is the value of the first pair
    it has (so every row of the view lands in exactly one group and the groups sum to the
    Total). ``row_attrs`` gives a row's attributes including its virtual tags' values.
    """

    id: str
    name: str
    table: CostTable
    grouping: list[tuple[str, str]]
    matches: Matcher | None
    row_attrs: RowAttrs
    version: Callable[[], int]  # changes whenever the virtual tags change
    spikes: list[PlantedSpike] = field(default_factory=list)  # planted through this view
    # Groups' costs by day, for the tags' current version: a cost query should spend its time in
    # the simulated latency, not in arithmetic (benchmarks measure the server, not this).
    _memo: dict[tuple[dt.date, int], dict[str, float]] = field(default_factory=dict, repr=False)

    @property
    def groups(self) -> list[str]:
        """The view's groups over the last 30 days (the saved range), biggest first."""
        start, end = self.saved_range(self.table.today)
        return [name for name, _ in self.series(start, end, self.table.today, "unblendedCost")[1:]]

    def saved_range(self, today: dt.date) -> tuple[int, int]:
        """The view's saved range: the last 30 days, ending yesterday (inclusive)."""
        end = today - dt.timedelta(days=1)
        start = end - dt.timedelta(days=29)
        return day_ms(start), day_ms(end) + DAY_MS - 1

    def group_of(self, attrs: Attrs) -> str | None:
        """The row's group, or None when the row is not in the view."""
        if self.matches is not None and not self.matches(attrs):
            return None
        for pair in self.grouping:
            value = attrs.get(pair)
            if value:
                return value
        return "N/A"

    def _day_groups(self, day: dt.date) -> dict[str, float]:
        key = (day, self.version())
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        out: dict[str, float] = {}
        for line in self.table.lines:
            group = self.group_of(self.row_attrs(line, day))
            if group is not None:
                out[group] = out.get(group, 0.0) + self.table.cost(line, day)
        if len(self._memo) > 4000:
            self._memo.clear()
        self._memo[key] = out
        return out

    def series(
        self, start_ms: int, end_ms: int, today: dt.date, cost_type: str
    ) -> list[tuple[str, list[tuple[int, float]]]]:
        """[("Total", points), (group, points)...] for UTC midnights within [start, end]."""
        factor = COST_TYPES[cost_type]
        days = self.table.days(start_ms, end_ms)
        per_day = [self._day_groups(d) for d in days]
        sums: dict[str, float] = {}
        for groups in per_day:
            for name, value in groups.items():
                sums[name] = sums.get(name, 0.0) + value
        names = sorted(sums, key=lambda n: (-sums[n], n))
        per_group: list[tuple[str, list[tuple[int, float]]]] = []
        totals = [0.0] * len(days)
        for name in names:
            points = []
            for i, day in enumerate(days):
                cost = round(per_day[i].get(name, 0.0) * factor, 4)
                totals[i] += cost
                points.append((day_ms(day), cost))
            per_group.append((name, points))
        total = [(day_ms(day), round(totals[i], 4)) for i, day in enumerate(days)]
        return [("Total", total), *per_group]

    def cost(self, group: str, day: dt.date, today: dt.date) -> float:
        """Unblended cost of one group of the view on one day."""
        return self._day_groups(day).get(group, 0.0)


# ----------------------------------------------------------------------------- building


def _pick(rng: random.Random, items: list[str], k: int) -> list[str]:
    return rng.sample(items, min(k, len(items)))


_EC2_TYPES = ["m5.large", "m5.xlarge", "c5.2xlarge", "r6g.large"]  # those with a BoxUsage value listed
# AWS usage type and operation of each service's line (values the catalogue lists).
_AWS_USAGE: dict[str, tuple[str, str | None]] = {
    "AmazonRDS": ("InstanceUsage:db.r5.xlarge", "CreateDBInstance"),
    "AmazonS3": ("TimedStorage-ByteHrs", "PutObject"),
    "AWSLambda": ("Lambda-GB-Second", "Invoke"),
    "AmazonVPC": ("NatGateway-Hours", "NatGateway"),
    "AmazonCloudFront": ("DataTransfer-Out-Bytes", None),
    "AWSDataTransfer": ("DataTransfer-Regional-Bytes", None),
    "AmazonEKS": ("EBS:VolumeUsage.gp3", None),
}


def _aws_line_details(service: str, n: int) -> dict[tuple[str, str], str]:
    """Charge type, usage type, operation and (on EC2) instance type and resource id of the
    ``n``-th line of ``service``, chosen without the table's random stream so the lines' costs stay as they were."""
    out = {("AWS", "aws_charge_type"): "Usage"}
    if service == "AmazonEC2":
        itype = _EC2_TYPES[n % len(_EC2_TYPES)]
        out[("AWS", "aws_instance_type")] = itype
        out[("AWS", "aws_resource_id")] = catalog.AWS_EC2_INSTANCE_IDS[n % len(catalog.AWS_EC2_INSTANCE_IDS)]
        out[("AWS", "aws_operation")] = "RunInstances"
        out[("AWS", "aws_usage_type")] = f"BoxUsage:{itype}"
        return out
    usage, operation = _AWS_USAGE.get(service, ("Requests-Tier1", None))
    out[("AWS", "aws_usage_type")] = usage
    if operation:
        out[("AWS", "aws_operation")] = operation
    return out


def _build_lines(seed: int) -> list[Line]:
    rng = random.Random(f"cost-table:{seed}")
    rows: list[tuple[dict[tuple[str, str], str], float, str, float]] = []

    def add(cc: str, attrs: dict[tuple[str, str], str], base: float, unit: str, price: float) -> None:
        full = {GLOBAL_TYPE: cc, ("Global", "billing_currency"): "USD", **attrs}
        rows.append((full, round(base * rng.uniform(0.8, 1.2), 2), unit, price))

    account_team = {
        "prod-eu": "checkout",
        "prod-us": "payments",
        "staging": "search",
        "dev": "growth",
        "data-prod": "data-platform",
        "shared-services": "platform",
        "sandbox": "ml",
        "security-audit": "security",
    }
    account_env = {"prod-eu": "production", "prod-us": "production", "data-prod": "production"}
    services = catalog.AWS_SERVICES[:10]
    weight = {s: 1.0 / (i + 1) ** 0.9 for i, s in enumerate(services)}
    for a_rank, account in enumerate(catalog.AWS_ACCOUNTS):
        scale = 1.0 / (a_rank + 1) ** 0.6
        chosen = _pick(rng, services, 6 if a_rank < 4 else 4)
        if "AmazonRDS" not in chosen and account in ("prod-us", "prod-eu"):
            chosen.append("AmazonRDS")
        if account == "shared-services":
            chosen += ["AmazonVPC", "AmazonRoute53"]
        for service in chosen:
            regions = _pick(rng, catalog.AWS_REGIONS, 2 if a_rank < 2 else 1)
            for region in regions:
                attrs = {
                    ("AWS", "aws_account_name"): account,
                    ("AWS", "aws_account_id"): catalog.AWS_ACCOUNT_IDS[account],
                    ("AWS", "service"): service,
                    ("AWS", "region"): region,
                    ("AWS", "team"): account_team[account],
                    ("AWS", "env"): account_env.get(account, "staging" if account == "staging" else "development"),
                    ("Global", "f_usage_type"): "Database" if service == "AmazonRDS" else "Compute",
                    **_aws_line_details(service, sum(1 for r in rows if r[0].get(("AWS", "service")) == service)),
                }
                base = 2600.0 * weight.get(service, 0.08) * scale / len(regions)
                add("AWS", attrs, base, "Hrs", 0.192)
    for n_rank, namespace in enumerate(catalog.NAMESPACES):
        team = {
            "checkout": "checkout",
            "checkout-worker": "checkout",
            "payments": "payments",
            "search": "search",
            "search-indexer": "search",
            "data-pipeline": "data-platform",
            "airflow": "data-platform",
            "ml-serving": "ml",
            "frontend": "growth",
        }.get(namespace, "platform")
        app = {
            "checkout": "checkout-api",
            "checkout-worker": "checkout-web",
            "payments": "payments-api",
            "search": "search-api",
            "search-indexer": "indexer",
            "airflow": "airflow-worker",
            "data-pipeline": "spark",
        }.get(namespace)
        for cluster in _pick(rng, catalog.CLUSTERS[:2], 2 if n_rank < 5 else 1):
            attrs = {
                ("Kubernetes", "namespace"): namespace,
                ("Kubernetes", "cluster"): cluster,
                ("Kubernetes", "pl_team"): team,
                ("Kubernetes", "pl_env"): "production",
                ("Kubernetes", "nl_node_pool"): rng.choice(["general", "compute", "memory", "spot"]),
            }
            if app:
                attrs[("Kubernetes", "pl_app")] = app
            if n_rank < 8:
                attrs[("Kubernetes", "workload")] = f"{namespace}-api"
            add("Kubernetes", attrs, 1500.0 / (n_rank + 1) ** 0.8, "vCPU-Hrs", 0.048)
    for p_rank, project in enumerate(catalog.GCP_PROJECTS):
        for service in _pick(rng, ["Compute Engine", "BigQuery", "Cloud Storage"], 2):
            attrs = {("GCP", "project"): project, ("GCP", "service"): service, ("GCP", "region"): "us-central1"}
            add("GCP", attrs, 700.0 / (p_rank + 1), "Hrs", 0.05)
    add(
        "Azure",
        {("Azure", "subscription_name"): "acme-azure-prod", ("Azure", "meter_category"): "Virtual Machines"},
        520.0,
        "Hrs",
        0.1,
    )
    add(
        "Azure",
        {("Azure", "subscription_name"): "acme-azure-dev", ("Azure", "meter_category"): "Virtual Machines"},
        160.0,
        "Hrs",
        0.1,
    )
    for w_rank, warehouse in enumerate(catalog.WAREHOUSES):
        attrs = {("Snowflake", "warehouse"): warehouse, ("Snowflake", "database"): catalog.DATABASES[w_rank]}
        add("Snowflake", attrs, 900.0 / (w_rank + 1), "Credits", 3.0)
    for d_rank, product in enumerate(["Infra Hosts", "APM Hosts", "Logs indexed 15day"]):
        service = ["Internal service", "checkout-api", "payments-api"][d_rank]
        attrs = {("Datadog", "product"): product, ("Datadog", "service"): service}
        add("Datadog", attrs, 800.0 / (d_rank + 1), "Hosts", 1.0)
    for v_rank, vendor in enumerate(["OpenAI", "GitHub"]):
        add("Custom Cost", {("Custom Cost", "vendor"): vendor}, 450.0 / (v_rank + 1), "Units", 1.0)
    for c_rank, cluster_name in enumerate(["etl-nightly", "ml-training"]):
        add("databricks", {("databricks", "cluster_name"): cluster_name}, 380.0 / (c_rank + 1), "DBU", 0.4)
    return [Line(i, attrs, base, unit, price) for i, (attrs, base, unit, price) in enumerate(rows)]


# (name, filter or None, grouping) — the filters use the v1 grammar (evaluated by the sandbox).
VIEW_SPECS: list[tuple[str, dict[str, Any] | None, list[tuple[str, str]]]] = [
    (
        "All costs by service",
        None,
        [
            ("AWS", "service"),
            ("GCP", "service"),
            ("Azure", "meter_category"),
            ("Custom Cost", "vendor"),
            GLOBAL_TYPE,
        ],
    ),
    ("Costs by team", None, [(catalog.VIRTUAL_TAGS, "Team")]),  # "Team" is replaced by the tag's id
    (
        "Kubernetes by namespace",
        {"costCenter": "Global", "key": "cost_center_type", "operator": "oneOf", "value": ["Kubernetes"]},
        [("Kubernetes", "namespace")],
    ),
    (
        "Checkout product",
        {
            "OR": [
                {
                    "costCenter": "Kubernetes",
                    "key": "namespace",
                    "operator": "oneOf",
                    "value": ["checkout", "checkout-worker", "payments"],
                },
                {"costCenter": "AWS", "key": "team", "operator": "oneOf", "value": ["checkout", "payments"]},
                {
                    "costCenter": "Datadog",
                    "key": "service",
                    "operator": "oneOf",
                    "value": ["checkout-api", "payments-api"],
                },
            ]
        },
        [("Kubernetes", "pl_app"), ("AWS", "service"), ("Datadog", "product"), GLOBAL_TYPE],
    ),
    (
        "Data platform",
        {
            "OR": [
                {
                    "costCenter": "Global",
                    "key": "cost_center_type",
                    "operator": "oneOf",
                    "value": ["Snowflake", "databricks"],
                },
                {"costCenter": "AWS", "key": "aws_account_name", "operator": "is", "value": "data-prod"},
                {"costCenter": "GCP", "key": "service", "operator": "oneOf", "value": ["BigQuery"]},
                {
                    "costCenter": "Kubernetes",
                    "key": "namespace",
                    "operator": "oneOf",
                    "value": ["data-pipeline", "airflow"],
                },
            ]
        },
        [
            ("Snowflake", "warehouse"),
            ("GCP", "service"),
            ("AWS", "service"),
            ("Kubernetes", "namespace"),
            GLOBAL_TYPE,
        ],
    ),
    (
        "Production accounts",
        {"costCenter": "Global", "key": "cost_center_type", "operator": "oneOf", "value": ["AWS"]},
        [("AWS", "aws_account_name")],
    ),
]


def build_views(
    seed: int,
    today: dt.date,
    table: CostTable,
    *,
    row_attrs: RowAttrs,
    matcher: Callable[[dict[str, Any]], Matcher],
    tag_ids: Mapping[str, str],
    version: Callable[[], int],
) -> list[View]:
    """The saved views over ``table``, with the spikes planted through them (``sandbox/spikes.py``)."""
    views = []
    for name, flt, grouping in VIEW_SPECS:
        pairs = [(cc, tag_ids.get(key, key)) if cc == catalog.VIRTUAL_TAGS else (cc, key) for cc, key in grouping]
        view = View(
            id=stable_uuid(seed, "view", name),
            name=name,
            table=table,
            grouping=pairs,
            matches=matcher(flt) if flt is not None else None,
            row_attrs=row_attrs,
            version=version,
        )
        views.append(view)
        if pairs and pairs[0][0] == catalog.VIRTUAL_TAGS:
            continue  # tag groups move with the tag; spikes are planted through the other views
        for spike in demo_spikes(name, today):
            plant_spike(view, spike)
    return views


def plant_spike(view: View, spike: PlantedSpike) -> None:
    """Plant ``spike`` on the cost table lines that make up ``spike.group`` in ``view``."""
    day = spike.first_day
    ids = frozenset(
        line.id for line in view.table.lines if view.group_of(view.row_attrs(line, day)) == spike.group
    )
    if not ids:
        raise ValueError(f"view {view.name!r} has no group {spike.group!r} to plant a spike on")
    view.spikes.append(spike)
    view.table.plant(ids, spike)
    view._memo.clear()


def day_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


def ms_day(ms: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ms // DAY_MS)


def stable_uuid(*parts: object) -> str:
    h = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
