"""Precision and recall of find_cost_anomalies on planted spikes, and the bytes of the spike question.

    python bench/anomalies.py [--markdown] [--seeds 20] [--rounds 10]

1. Series shapes: flat, weekly (weekends at 78% of a weekday, as the sandbox has) and trending
   (+0.2% a day, about doubling a year), each with the sandbox's noise (uniform +-6%) and a noisier
   +-15%. Each trial is 86 days at $1,000 a day (56 days of history + the 30 days checked) with one
   spike planted by the sandbox's own ``PlantedSpike``/``spike_factor`` (sizes 1.5x, 2x, 3x, 4x, 5x;
   lengths 1-5 days; anywhere in the checked 30 days), run through ``find_anomalies`` (the tool's
   service, default thresholds); spike-free control series measure false alarms.
2. The sandbox itself: fresh demo accounts with 2-4 random spikes planted through each view
   (1.5x-5x, 1-5 days, random groups; in the cost table's lines, so they show in other views too),
   each view checked with ``find_cost_anomalies`` through the MCP client. Recall: the spikes
   planted through a view (the account's own demo spikes included), found in that view; spikes
   whose true excess is under the tool's ``min_excess`` (too small to matter, left out by design)
   are counted separately, not as misses. Precision: every report must lie on a planted spike's
   lines and days, in whichever view it shows.
(Calls and bytes of the question "Did anything spike in the last 30 days, and why?": bench/questions.py.)

A reported anomaly matches a planted spike when their date ranges overlap in the same series;
precision = matching reports / reports, recall = matched spikes / planted spikes.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from finout_mcp.api.models import View
from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.sandbox.costs import View as SandboxView
from finout_mcp.sandbox.costs import day_ms, plant_spike
from finout_mcp.sandbox.spikes import PlantedSpike, spike_factor
from finout_mcp.server.app import build_server
from finout_mcp.services import anomalies, costs
from finout_mcp.services.periods import DateSpan

TODAY = date(2026, 12, 1)
SIZES = (1.5, 2.0, 3.0, 4.0, 5.0)
LENGTHS = (1, 2, 3, 4, 5)
SHAPES = ("flat", "weekly", "trending")
NOISES = {"sandbox noise +-6%": 0.06, "noisier +-15%": 0.15}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


@dataclass
class Tally:
    planted: int = 0
    found: int = 0
    reports: int = 0
    good_reports: int = 0
    exact_dates: int = 0
    excess_errors: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.planted += other.planted
        self.found += other.found
        self.reports += other.reports
        self.good_reports += other.good_reports
        self.exact_dates += other.exact_dates
        self.excess_errors += other.excess_errors

    def text(self) -> str:
        p = self.good_reports / self.reports if self.reports else 1.0
        r = self.found / self.planted if self.planted else 1.0
        return f"precision {p:.1%}, recall {r:.1%} ({self.found}/{self.planted} found, {self.reports} reports)"


def _overlap(a: anomalies.Anomaly, s: PlantedSpike) -> bool:
    return a.series == s.group and a.first_day <= s.last_day and s.first_day <= a.last_day


def score(
    found: list[anomalies.Anomaly], planted: list[PlantedSpike], true_excess: dict[PlantedSpike, float]
) -> Tally:
    t = Tally(planted=len(planted), reports=len(found))
    t.good_reports = sum(1 for a in found if any(_overlap(a, s) for s in planted))
    for s in planted:
        hits = [a for a in found if _overlap(a, s)]
        if hits:
            t.found += 1
            best = max(hits, key=lambda a: a.excess)
            t.exact_dates += int(best.first_day == s.first_day and best.last_day == s.last_day)
            if true_excess.get(s):
                t.excess_errors.append(abs(best.excess / true_excess[s] - 1))
    return t


# --------------------------------------------------------------------------- 1. synthetic shapes


def series_values(shape: str, noise: float, rng: random.Random, first: date, n: int) -> list[float]:
    out = []
    for i in range(n):
        day = first + timedelta(days=i)
        level = 1000.0
        if shape == "weekly":
            level *= 0.78 if day.weekday() >= 5 else 1.0
        elif shape == "trending":
            level *= 1.002**i
        out.append(level * (1 + rng.uniform(-noise, noise)))
    return out


def synthetic(noise: float, seeds: int) -> dict[str, Tally]:
    span = DateSpan(TODAY - timedelta(days=30), TODAY - timedelta(days=1))
    fetched = anomalies.history_span(span)
    view = View(id="bench", name="bench")
    tallies: dict[str, Tally] = {}

    def run(values: list[float], planted: list[PlantedSpike]) -> Tally:
        base = list(values)
        for i in range(fetched.days):
            values[i] *= spike_factor(planted, fetched.first + timedelta(days=i))
        true = {
            s: sum(base[(s.first_day - fetched.first).days + k] * (s.factor - 1) for k in range(s.days))
            for s in planted
        }
        pts = [costs.Point(day_ms(fetched.first + timedelta(days=i)), v) for i, v in enumerate(values)]
        series = [costs.Series("Total", pts), costs.Series("s", pts)]
        answer = anomalies.find_anomalies(
            series, span=span, fetched=fetched, view=view, cost_type="unblendedCost", top_n=50
        )
        return score(answer.anomalies, planted, true)

    for shape in SHAPES:
        for size in SIZES:
            for length in LENGTHS:
                for seed in range(seeds):
                    rng = random.Random(f"{shape}:{noise}:{size}:{length}:{seed}")
                    first = span.first + timedelta(days=rng.randint(0, span.days - length))
                    values = series_values(shape, noise, rng, fetched.first, fetched.days)
                    t = run(values, [PlantedSpike("s", first, length, size)])
                    for key in (f"shape {shape}", f"size {size:g}x", f"length {length} d", "all"):
                        tallies.setdefault(key, Tally()).add(t)
        for seed in range(seeds * 5):
            rng = random.Random(f"control:{shape}:{noise}:{seed}")
            t = run(series_values(shape, noise, rng, fetched.first, fetched.days), [])
            tallies.setdefault("controls (no spike)", Tally()).add(t)
    return tallies


# --------------------------------------------------------------------------- 2. the sandbox itself


def plant(sb: Sandbox, rng: random.Random) -> None:
    """2-4 random spikes through each view not grouped by a tag, in the cost table's lines."""
    span_first = TODAY - timedelta(days=30)
    for view in sb.account.views:
        if view.grouping[0][0] == "Virtual Tags":
            continue  # tag groups move with the tag (as in the demo account)
        for group in rng.sample(view.groups, rng.randint(2, 4)):
            length = rng.randint(1, 5)
            first = span_first + timedelta(days=rng.randint(0, 30 - length))
            plant_spike(view, PlantedSpike(group, first, length, round(rng.uniform(1.5, 5.0), 2)))


def true_excess(sb: Sandbox, view: SandboxView, s: PlantedSpike) -> float:
    """What ``s`` added to its group in ``view`` (its lines' cost times 1 - 1/factor)."""
    return sum(
        view.cost(s.group, s.first_day + timedelta(days=k), TODAY) * (1 - 1 / s.factor) for k in range(s.days)
    )


def explained(sb: Sandbox, view: SandboxView, a: anomalies.Anomaly) -> bool:
    """Does a spike planted anywhere in the cost table lie on ``a``'s series and days?"""
    for planted_on in sb.account.costs.spikes:
        s = planted_on.spike
        if s.last_day < a.first_day or s.first_day > a.last_day:
            continue
        for line in sb.account.costs.lines:
            if line.id in planted_on.line_ids and view.group_of(sb.account.row(line, s.first_day)) == a.series:
                return True
    return False


async def in_sandbox(rounds: int) -> tuple[Tally, int]:
    """Recall over the spikes planted through each view (in that view); precision over every report."""
    total = Tally()
    small = 0
    checked_first = TODAY - timedelta(days=30)
    for r in range(rounds):
        sb = Sandbox(seed=100 + r, today=TODAY)
        plant(sb, random.Random(f"round:{r}"))
        with tempfile.TemporaryDirectory() as d:
            server = build_server(Settings(demo=True, state_dir=Path(d)), sandbox=sb, today=lambda: TODAY)
            async with Client(server) as client:
                for view in sb.account.views:
                    result = await client.call_tool("find_cost_anomalies", {"view": view.name, "top_n": 50})
                    out: Any = result.structured_content
                    found = [anomalies.Anomaly.model_validate(a) for a in out["anomalies"]]
                    mine = [s for s in view.spikes if s.first_day >= checked_first]
                    excess = {s: true_excess(sb, view, s) for s in mine}
                    matter = [s for s in mine if excess[s] >= out["min_excess"]]
                    small += len(mine) - len(matter)
                    t = score(found, matter, excess)
                    t.good_reports = sum(1 for a in found if explained(sb, view, a))
                    total.add(t)
    return total, small


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--seeds", type=int, default=20, help="trials per shape x size x length")
    parser.add_argument("--rounds", type=int, default=10, help="fresh sandbox accounts to plant spikes in")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    for label, noise in NOISES.items():
        log(f"synthetic series, {label} ...")
        tallies = synthetic(noise, args.seeds)
        order = [
            *(f"shape {x}" for x in SHAPES),
            *(f"size {x:g}x" for x in SIZES),
            *(f"length {x} d" for x in LENGTHS),
            "all",
            "controls (no spike)",
        ]
        for key in order:
            t = tallies[key]
            extra = ""
            if t.excess_errors:
                errs = sorted(t.excess_errors)
                extra = f"; dates exact {t.exact_dates / max(t.found, 1):.0%}, excess error median {errs[len(errs) // 2]:.1%}"
            if key.startswith("controls"):
                rows.append(
                    (
                        f"{label}: {key}",
                        f"{t.reports} false alarms in {t.planted or args.seeds * 5 * len(SHAPES)} series x 30 days",
                    )
                )
            else:
                rows.append((f"{label}: {key}", t.text() + extra))
    log("spikes planted in fresh sandbox accounts, checked through the MCP client ...")
    t, small = anyio.run(in_sandbox, args.rounds)
    rows.append(
        (
            f"sandbox: {args.rounds} accounts, 2-4 spikes through each of 5 views (1.5x-5x, 1-5 days), 6 views checked",
            t.text()
            + f"; dates exact {t.exact_dates / max(t.found, 1):.0%}; {small} planted spikes under min_excess not counted",
        )
    )
    if args.markdown:
        print("| figure | value |\n|---|---|")
    for a, b in rows:
        print(f"| {a} | {b} |" if args.markdown else f"{a}: {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
