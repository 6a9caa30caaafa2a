"""Hand-written code against the well-kept library that does the same job: figures for the decision.

    python bench/libraries.py [--markdown] [--repeat N]

Two comparisons (the libraries are not dependencies: install them to run this, e.g.
``pip install rapidfuzz tenacity stamina``; a missing one is reported, not fatal):

**Fuzzy matching** on the large demo account's 200,000-value key (``Kubernetes/pl_pod_uid``) and
its 50,000 keys. "ours" is the catalogue's fuzzy tier (difflib ``SequenceMatcher`` over at
most 600 candidate lines that share a piece of the query); "rapidfuzz scorer" keeps our
candidate narrowing and scores with ``rapidfuzz.fuzz.ratio``; "rapidfuzz brute force" drops the
narrowing and lets ``rapidfuzz.process.extract`` score every value, which is what adopting the
library wholesale would mean. For each: median time of a fuzzy search, the memory the
search allocates (tracemalloc peak; the brute force also needs every folded value as a list),
and whether its hits are the same items in the same order as ours (behaviour must not change).
The short did-you-mean lists (``difflib.get_close_matches`` over tag, view and cost-center
names) are compared for agreement only: they hold tens of names.

**Retries**: the success path and a path with two retries, per call, of our loop (the
:class:`~finout_mcp.api.retries.RetryBudget` shared by a tool call, full-jitter backoff,
Retry-After honoured by every request of the call) against ``tenacity.AsyncRetrying`` and
``stamina.retry_context`` configured as close as they allow, with the sleeps recorded instead
of slept. Plus what each import costs a cold start (median of fresh interpreters).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from finout_mcp.api.models import MegabillKey
from finout_mcp.api.retries import RetryBudget
from finout_mcp.sandbox.catalog import LARGE_KEY, LARGE_KEY_COUNT, KeyCatalogue
from finout_mcp.services import search as cat

Row = tuple[str, str, str]


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


# --------------------------------------------------------------------------- fuzzy


def rapidfuzz_scored(index: cat.SearchIndex[Any]) -> Callable[[str, set[int]], list[int]]:
    """Our ``_fuzzy`` with rapidfuzz's ratio as the scorer (same candidates, same cut-off)."""
    from rapidfuzz import fuzz

    cutoff = cat.FUZZY_CUTOFF * 100

    def fuzzy(q: str, exclude: set[int]) -> list[int]:
        size = len(q)
        cand: set[int] = set()
        if len(index.items) <= cat.FUZZY_MAX_LINES:
            cand.update(range(len(index.items)))
        else:
            k = 2 if size < 9 else 3
            step = -(-size // k)
            pieces = sorted({q[i : i + step] for i in range(0, size, step)}, key=len, reverse=True)
            for piece in pieces:
                if len(piece) < 2 or len(cand) >= cat.FUZZY_MAX_LINES:
                    continue
                _, hits = index._line_hits(piece, collect=cat.FUZZY_MAX_LINES - len(cand), cap=cat.FUZZY_MAX_LINES)
                cand.update(hits)
        best: dict[int, float] = {}
        for i in cand - exclude:
            score = 0.0
            for form in index._names(i):
                for word in (form, *form.split(" ")) if " " in form else (form,):
                    score = max(score, fuzz.ratio(word, q, score_cutoff=cutoff))
            if score >= cutoff:
                best[i] = score
        return sorted(best, key=lambda i: (-best[i], i))

    return fuzzy


def rapidfuzz_brute(index: cat.SearchIndex[Any]) -> tuple[Callable[[str, set[int]], list[int]], int]:
    """rapidfuzz over every name of every item, no narrowing (``partial_ratio``: the nearest of its
    scorers to our word-by-word matching); also the bytes its choice list costs."""
    from rapidfuzz import fuzz, process

    tracemalloc.start()
    choices = [" ".join(index._names(i)) for i in range(len(index.items))]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cutoff = cat.FUZZY_CUTOFF * 100

    def fuzzy(q: str, exclude: set[int]) -> list[int]:
        found = process.extract(q, choices, scorer=fuzz.partial_ratio, score_cutoff=cutoff, limit=None)
        return [i for _, _, i in sorted(found, key=lambda f: (-f[1], f[2])) if i not in exclude]

    return fuzzy, peak


def fuzzy_queries(values: list[str], keys: list[MegabillKey], rng: random.Random) -> dict[str, list[str]]:
    """Queries that reach the fuzzy tier: a real value's or name's piece with one character changed."""

    def typo(text: str) -> str:
        i = rng.randrange(len(text))
        repl = rng.choice([c for c in "0123456789abcdefghijklmnopqrstuvwxyz" if c != text[i]])
        return text[:i] + repl + text[i + 1 :]

    value_queries = [typo(rng.choice(values)[:8]) for _ in range(24)]
    names = [k.label for k in keys if len(k.label) >= 6]
    key_queries = [typo(cat.fold(rng.choice(names))) for _ in range(24)]
    key_queries += ["acount nmae", "enviroment", "servcie", "ownr team", "cost centr", "namspace"]
    return {"values": value_queries, "keys": key_queries}


def bench_fuzzy(repeat: int) -> list[Row]:
    log("fuzzy: building the large catalogue (200,000 values, 50,000 keys)")
    catalogue = KeyCatalogue(seed=7, scale="large")
    catalogue.set_filler_target(LARGE_KEY_COUNT)
    values = catalogue.values(*LARGE_KEY) or []
    keys = [MegabillKey(cost_center=cc, key=k, display_name=d) for cc, k, d in catalogue.entries()]
    rng = random.Random(11)
    queries = fuzzy_queries(values, keys, rng)
    indexes: dict[str, cat.SearchIndex[Any]] = {
        "values": cat.build_value_index(values),
        "keys": cat.build_key_index(keys),
    }
    rows: list[Row] = []
    for kind, index in indexes.items():
        n_items = len(index.items)
        variants: dict[str, Callable[[str, set[int]], list[int]]] = {"ours (difflib)": index._fuzzy}
        brute_bytes = 0
        try:
            variants["rapidfuzz scorer"] = rapidfuzz_scored(index)
            variants["rapidfuzz brute force"], brute_bytes = rapidfuzz_brute(index)
        except ImportError:
            log("rapidfuzz is not installed: only ours is measured")
        reference: dict[str, list[int]] = {}
        for name, fuzzy in variants.items():
            times: list[float] = []
            peaks: list[int] = []
            same = 0
            for q in queries[kind]:
                folded = cat.fold(q)
                for r in range(repeat):
                    if r == 0:
                        tracemalloc.start()
                    t0 = time.perf_counter()
                    hits = fuzzy(folded, set())
                    times.append(time.perf_counter() - t0)
                    if r == 0:
                        peaks.append(tracemalloc.get_traced_memory()[1])
                        tracemalloc.stop()
                if name == "ours (difflib)":
                    reference[q] = hits
                same += hits == reference[q]
            extra = (
                f"; its list of {n_items:,} folded names: {brute_bytes / 2**20:.1f} MB" if "brute" in name else ""
            )
            rows.append(
                (
                    f"fuzzy tier, {kind} ({n_items:,}), {name}",
                    f"{median_ms(times):.2f} ms median (max {max(times) * 1000:.1f}); "
                    f"allocates {statistics.median(peaks) / 1024:.0f} KB median{extra}",
                    f"{same}/{len(queries[kind])} same hits in the same order",
                )
            )
    rows += did_you_mean_agreement(keys, rng)
    rows.append(import_cost("rapidfuzz"))
    return rows


def did_you_mean_agreement(keys: list[MegabillKey], rng: random.Random) -> list[Row]:
    """``difflib.get_close_matches`` (cutoff 0.4 and 0.5, as the catalogue, lint and composer use it)
    against ``rapidfuzz.process.extract`` with the same cut-off, on lists of names of realistic size."""
    try:
        from rapidfuzz import fuzz, process
    except ImportError:
        return []
    labels = sorted({k.label for k in keys})
    agree = total = 0
    t_ours: list[float] = []
    t_rf: list[float] = []
    for _ in range(300):
        names = rng.sample(labels, 40)
        ref = rng.choice(names)
        i = rng.randrange(len(ref))
        query = (ref[:i] + ref[i + 1 :]).casefold()
        choices = [n.casefold() for n in names]
        for cutoff in (0.4, 0.5):
            t0 = time.perf_counter()
            ours = difflib.get_close_matches(query, choices, n=5, cutoff=cutoff)
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs = [
                c
                for c, _, _ in process.extract(
                    query, choices, scorer=fuzz.ratio, score_cutoff=cutoff * 100, limit=5
                )
            ]
            t_rf.append(time.perf_counter() - t0)
            total += 1
            agree += ours == theirs
    return [
        (
            "did-you-mean over 40 names (get_close_matches vs process.extract, cutoff 0.4/0.5)",
            f"ours {median_ms(t_ours) * 1000:.0f} µs, rapidfuzz {median_ms(t_rf) * 1000:.0f} µs median",
            f"{agree}/{total} same names in the same order",
        )
    ]


# --------------------------------------------------------------------------- retries


class Flaky(Exception):
    pass


def failing(times: int) -> Callable[[], Awaitable[str]]:
    """A request that fails ``times`` times with a retryable error, then succeeds."""
    state = {"left": times}

    async def attempt() -> str:
        if state["left"] > 0:
            state["left"] -= 1
            raise Flaky
        return "ok"

    return attempt


async def ours(attempt: Callable[[], Awaitable[str]], slept: list[float]) -> str:
    """The shape of ``FinoutClient._send``: budget from the call, full jitter, Retry-After shared."""
    budget = RetryBudget.start(3, 20.0)
    rnd = random.Random()
    tries = 0
    while True:
        hold = budget.wait_s()
        if hold > 0:
            slept.append(hold)
        tries += 1
        try:
            return await attempt()
        except Flaky:
            delay = rnd.uniform(0, min(8.0, 0.5 * 2 ** (tries - 1)))
            if tries >= 4 or not budget.take(delay, "flaky"):
                raise
            slept.append(delay)
            budget.slept += delay


def tenacity_loop() -> Callable[[Callable[[], Awaitable[str]], list[float]], Awaitable[str]] | None:
    try:
        import tenacity
    except ImportError:
        return None

    async def run(attempt: Callable[[], Awaitable[str]], slept: list[float]) -> str:
        async def sleep(s: float) -> None:
            slept.append(s)

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(4),
            wait=tenacity.wait_random_exponential(multiplier=0.5, max=8.0),
            retry=tenacity.retry_if_exception_type(Flaky),
            sleep=sleep,
            reraise=True,
        )
        return await retrying(attempt)

    return run


def stamina_loop() -> Callable[[Callable[[], Awaitable[str]], list[float]], Awaitable[str]] | None:
    try:
        import stamina
    except ImportError:
        return None
    stamina.instrumentation.set_on_retry_hooks([])

    async def run(attempt: Callable[[], Awaitable[str]], slept: list[float]) -> str:
        async for a in stamina.retry_context(
            on=Flaky, attempts=4, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0, timeout=20.0
        ):
            with a:
                return await attempt()
        raise AssertionError("unreachable")

    return run


async def bare(attempt: Callable[[], Awaitable[str]], slept: list[float]) -> str:
    """No retry at all: what ``asyncio.run`` and the call cost by themselves (failures: none)."""
    return await attempt()


SAME = {
    "ours": "",
    "tenacity": "same full-jitter formula (wait_random_exponential); the shared budget and Retry-After "
    "would still be ours, as stop/wait callbacks",
    "stamina": "other backoff (exponential + additive jitter, not full jitter); sleeps itself "
    "(tests could not record the waits)",
}


def bench_retries(repeat: int) -> list[Row]:
    loops = {"ours": ours, "tenacity": tenacity_loop(), "stamina": stamina_loop()}
    rows: list[Row] = []
    base = []
    for _ in range(repeat * 200):
        t0 = time.perf_counter()
        asyncio.run(_once(bare, 0, []))
        base.append(time.perf_counter() - t0)
    base_us = median_ms(base) * 1000
    rows.append(("retry loop: asyncio.run of the bare call (subtracted below)", f"{base_us:.0f} µs", ""))
    for name, loop in loops.items():
        if loop is None:
            log(f"{name} is not installed: skipped")
            continue
        figures = []
        for failures in (0, 2):
            times: list[float] = []
            for _ in range(repeat * 200):
                slept: list[float] = []
                t0 = time.perf_counter()
                assert asyncio.run(_once(loop, failures, slept)) == "ok"
                times.append(time.perf_counter() - t0)
            figures.append(f"{median_ms(times) * 1000 - base_us:.0f} µs with {failures} retries")
        rows.append((f"retry loop per call, {name}", "; ".join(figures), SAME[name]))
    for module in ("tenacity", "stamina"):
        rows.append(import_cost(module))
    return rows


async def _once(loop: Any, failures: int, slept: list[float]) -> str:
    result: str = await loop(failing(failures), slept)
    return result


def import_cost(module: str) -> Row:
    """Median wall time of ``import module`` in a fresh interpreter, minus an empty one (11 runs)."""

    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - t0

    try:
        __import__(module)
    except ImportError:
        return (f"import {module}", "not installed", "")
    base = statistics.median(run("pass") for _ in range(11))
    with_it = statistics.median(run(f"import {module}") for _ in range(11))
    rss = subprocess.run(
        [
            sys.executable,
            "-c",
            "import re\n"
            "def rss(): return int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
            f"a = rss(); import {module}; print(rss() - a)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (
        f"import {module} (cold start cost)",
        f"+{(with_it - base) * 1000:.1f} ms, +{int(rss) / 1024:.1f} MB RSS",
        "",
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (for BENCHMARKS.md)")
    p.add_argument("--repeat", type=int, default=5, help="runs of each query (default 5)")
    args = p.parse_args()
    rows = bench_fuzzy(args.repeat) + bench_retries(args.repeat)
    if args.markdown:
        print("| figure | value | behaviour |")
        print("|---|---|---|")
        for fig, value, same in rows:
            print(f"| {fig} | {value} | {same or '–'} |")
    else:
        for fig, value, same in rows:
            print(f"{fig}: {value}" + (f" [{same}]" if same else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
