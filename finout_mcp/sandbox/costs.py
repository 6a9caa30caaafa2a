"""Deterministic daily cost series for the sandbox's saved views."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import zlib
from dataclasses import dataclass, field

from finout_mcp.sandbox import catalog

DAY_MS = 86_400_000
HISTORY_DAYS = 1100  # three years: enough to compare last year with the year before
MAX_RANGE_MS = 90 * DAY_MS
TODAY_FRACTION = 0.5  # today's point is partial: half a day so far (fixed, for determinism)

COST_TYPES: dict[str, float] = {
    "unblendedCost": 1.0,
    "blendedCost": 1.01,
    "netUnblendedCost": 0.93,
    "amortizedCost": 0.97,
    "netAmortizedCost": 0.9,
}


@dataclass(frozen=True)
class Spike:
    group: str
    day: dt.date
    factor: float


@dataclass
class View:
    id: str
    name: str
    groups: list[str]
    bases: dict[str, float]
    spikes: list[Spike]
    seed: int
    # Daily costs already computed, by (group, day, today): a cost query should spend its time
    # in the simulated latency, not in arithmetic (benchmarks measure the server, not this).
    _memo: dict[tuple[str, dt.date, dt.date], float] = field(default_factory=dict, repr=False)

    def saved_range(self, today: dt.date) -> tuple[int, int]:
        """The view's saved range: the last 30 days, ending yesterday (inclusive)."""
        end = today - dt.timedelta(days=1)
        start = end - dt.timedelta(days=29)
        return day_ms(start), day_ms(end) + DAY_MS - 1

    def series(
        self, start_ms: int, end_ms: int, today: dt.date, cost_type: str
    ) -> list[tuple[str, list[tuple[int, float]]]]:
        """[("Total", points), (group, points)...] for UTC midnights within [start, end]."""
        factor = COST_TYPES[cost_type]
        first = max(ms_day(-(-start_ms // DAY_MS) * DAY_MS), today - dt.timedelta(days=HISTORY_DAYS))
        last = min(ms_day((end_ms // DAY_MS) * DAY_MS), today)
        days: list[dt.date] = []
        d = first
        while d <= last:
            days.append(d)
            d += dt.timedelta(days=1)
        per_group: list[tuple[str, list[tuple[int, float]]]] = []
        totals = [0.0] * len(days)
        for group in self.groups:
            points = []
            for i, day in enumerate(days):
                cost = round(self.cost(group, day, today) * factor, 4)
                totals[i] += cost
                points.append((day_ms(day), cost))
            per_group.append((group, points))
        total = [(day_ms(day), round(totals[i], 4)) for i, day in enumerate(days)]
        return [("Total", total), *per_group]

    def cost(self, group: str, day: dt.date, today: dt.date) -> float:
        memo_key = (group, day, today)
        if (hit := self._memo.get(memo_key)) is not None:
            return hit
        value = self._cost(group, day, today)
        self._memo[memo_key] = value
        return value

    def _cost(self, group: str, day: dt.date, today: dt.date) -> float:
        base = self.bases[group]
        # A cheap deterministic hash (seeding a Random per point cost most of a cost query).
        unit = zlib.crc32(f"{self.seed}:{self.id}:{group}:{day.toordinal()}".encode()) / 0xFFFFFFFF
        age = (today - day).days
        trend = 1.0 + 0.0003 * (HISTORY_DAYS - age)  # slow growth, ~+33% over the history
        weekday = day.weekday()
        weekly = 0.78 if weekday >= 5 else 1.0 + 0.03 * math.sin(weekday)
        noise = 1.0 + (unit * 0.12 - 0.06)
        value = base * trend * weekly * noise
        for spike in self.spikes:
            if spike.group == group:
                if spike.day == day:
                    value *= spike.factor
                elif abs((spike.day - day).days) == 1:
                    value *= 1.0 + (spike.factor - 1.0) * 0.25
        if day == today:
            value *= TODAY_FRACTION
        return max(value, 0.0)


_VIEW_GROUPS: list[tuple[str, list[str]]] = [
    (
        "All costs by service",
        [
            *catalog.AWS_SERVICES[:10],  # the biggest AWS services, as in the key catalogue
            "Compute Engine",
            "BigQuery",
            "Cloud Storage",
            "Virtual Machines",
            "Snowflake",
            "Datadog",
            "OpenAI",
        ],
    ),
    ("Costs by team", [*catalog.TEAMS, "unallocated"]),
    ("Kubernetes by namespace", list(catalog.NAMESPACES)),
    (
        "Checkout product",
        [
            "checkout-api",
            "checkout-web",
            "checkout-worker",
            "payments-api",
            "AmazonRDS",
            "AmazonElastiCache",
            "AmazonSQS",
            "AmazonCloudFront",
            "Datadog APM",
        ],
    ),
    (
        "Data platform",
        [
            *catalog.WAREHOUSES,
            "BigQuery",
            "AmazonEMR",
            "AmazonS3",
            "AmazonKinesis",
            "AmazonAthena",
            "airflow",
            "databricks",
        ],
    ),
    ("Production accounts", list(catalog.AWS_ACCOUNTS)),
]


def build_views(seed: int, today: dt.date) -> list[View]:
    views = []
    for index, (name, groups) in enumerate(_VIEW_GROUPS):
        rng = random.Random(f"view:{seed}:{name}")
        view_id = stable_uuid(seed, "view", name)
        bases = {}
        for rank, group in enumerate(groups):
            # Zipf-like: a few big groups, a long tail.
            bases[group] = round(rng.uniform(0.7, 1.3) * 4200.0 / (rank + 1) ** 0.9, 2)
        spikes = [
            Spike(
                group=groups[rng.randrange(min(4, len(groups)))],
                day=today - dt.timedelta(days=rng.randint(6, 20)),
                factor=round(rng.uniform(3.2, 4.4), 2),
            )
        ]
        if index % 2 == 0:
            spikes.append(
                Spike(
                    group=groups[rng.randrange(len(groups))],
                    day=today - dt.timedelta(days=rng.randint(35, 75)),
                    factor=round(rng.uniform(1.9, 2.5), 2),
                )
            )
        views.append(View(view_id, name, list(groups), bases, spikes, seed))
    return views


def day_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


def ms_day(ms: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ms // DAY_MS)


def stable_uuid(*parts: object) -> str:
    h = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
