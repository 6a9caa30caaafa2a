"""Cost spikes planted in the sandbox's demo account, for people (and tests) to find.

A planted spike multiplies the daily cost of some cost-table lines by ``factor`` on each of its
``days`` days (a flat plateau, nothing before or after), so the truth is exact: the excess a spike
adds on a day is ``cost_without_spike * (factor - 1)``. The demo account's spikes are listed in
:data:`DEMO_SPIKES` by the view and group they are planted through (the lines that make up that
group in that view; :func:`finout_mcp.sandbox.costs.plant_spike`), placed relative to the
sandbox's "today" so a demo started on any day has them in its last 30 (and 90) days. The same
lines are in other views too, where the spike shows as part of their groups:

=======================  ==================  ============  ======  ======
view                     group               first day     days    factor
=======================  ==================  ============  ======  ======
All costs by service     AmazonRDS           today - 12    3       3.0x
All costs by service     AmazonCloudFront    today - 50    1       2.3x
Kubernetes by namespace  search              today - 14    1       3.8x
Checkout product         checkout-api        today - 6     4       1.8x
Data platform            DATA_SCIENCE_WH     today - 20    5       2.0x
Production accounts      staging             today - 8     1       4.0x
=======================  ==================  ============  ======  ======

(The account also plants RDS in prod-us at 3.8x two days ago, for the ``query_costs`` question
"why did RDS spike?"; see ``Account._plant_rds_spike``.) A view grouped by a virtual tag gets no
spike of its own: its groups move with the tag.

The cost table multiplies a line's cost on a day by :func:`spike_factor` of the spikes planted on
that line; nothing here depends on how the costs are stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlantedSpike:
    """Daily cost times ``factor`` from ``first_day`` for ``days`` days; ``group`` names what spikes."""

    group: str
    first_day: dt.date
    days: int
    factor: float

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.days - 1)

    def covers(self, day: dt.date) -> bool:
        return self.first_day <= day <= self.last_day


# (view name, group, first day as days before today, length in days, factor) — see the table above.
DEMO_SPIKES: tuple[tuple[str, str, int, int, float], ...] = (
    ("All costs by service", "AmazonRDS", 12, 3, 3.0),
    ("All costs by service", "AmazonCloudFront", 50, 1, 2.3),
    ("Kubernetes by namespace", "search", 14, 1, 3.8),
    ("Checkout product", "checkout-api", 6, 4, 1.8),
    ("Data platform", "DATA_SCIENCE_WH", 20, 5, 2.0),
    ("Production accounts", "staging", 8, 1, 4.0),
)


def demo_spikes(view_name: str, today: dt.date) -> list[PlantedSpike]:
    """The spikes planted in the demo account's view ``view_name`` (none for other views)."""
    return [
        PlantedSpike(group, today - dt.timedelta(days=ago), days, factor)
        for view, group, ago, days, factor in DEMO_SPIKES
        if view == view_name
    ]


def spike_factor(spikes: Iterable[PlantedSpike], day: dt.date) -> float:
    """What a cost on ``day`` is multiplied by under ``spikes`` (1.0 when none covers it)."""
    factor = 1.0
    for spike in spikes:
        if spike.covers(day):
            factor *= spike.factor
    return factor
