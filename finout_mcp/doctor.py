"""``finout-mcp doctor``: a read-only self-check of the credentials and of every response shape.

Run it against a real account before trusting writes. It calls each read operation of the
v1 API once, in an order where each one supplies the next (a view for the cost query, a key
for its values, a tag for its metadata, a scan for its recommendations), lets the client
validate every answer strictly, and reports one line per operation: ``ok`` with its figures
(latency, counts), ``UNRECOGNISED`` with the shape that came (keys and types only, never a
value), ``FAILED`` with the error, or ``skipped`` when there was nothing to ask about.

It never sends a write. Exit status: 0 when every answer was recognised, 1 otherwise, 2 on a
configuration error (missing settings, refused credentials, a base URL that is not Finout's).

Then the API v2 checks of :mod:`finout_mcp.services.api_check_v2` run (one small v2 query),
one line per assumption the v2 code relies on. With several accounts (``FINOUT_MCP_ACCOUNTS_FILE``)
every account is checked, each with its own report, and the exit status is the worst of them. More v1 checks are :class:`Check` objects added
to :func:`default_checks`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from finout_mcp.api.errors import AuthenticationError, FinoutError, MalformedResponseError, NotFoundError
from finout_mcp.config import Settings

if TYPE_CHECKING:
    from finout_mcp.accounts import Accounts
    from finout_mcp.api.client import FinoutClient
    from finout_mcp.server.state import AccountState

Status = Literal["ok", "unrecognised", "failed", "skipped"]
EXIT_OK, EXIT_MISMATCH, EXIT_CONFIG = 0, 1, 2
DETAIL_WIDTH = 200
DAY_MS = 86_400_000
METADATA_TRIES = 3  # tags asked for metadata before a 404 counts as a failure
SMALL_KEY = ("Global", "cost_center_type")  # a documented key with a short list of values


class Skip(Exception):
    """Nothing to check (e.g. no scans in the account): not a failure."""


@dataclass
class Found:
    """What earlier checks found, for the later ones."""

    today: dt.date
    view: Any = None
    key: Any = None
    tags: list[Any] = field(default_factory=list)
    scans: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    name: str
    operation: str
    run: Callable[[FinoutClient, Found], Awaitable[str]]  # returns the figures of an ok answer


@dataclass
class Result:
    name: str
    operation: str
    status: Status
    detail: str
    ms: float | None = None

    def line(self) -> str:
        label = {"ok": "ok", "unrecognised": "UNRECOGNISED", "failed": "FAILED", "skipped": "skipped"}[self.status]
        latency = f"{self.ms:7.0f} ms" if self.ms is not None else " " * 10
        return f"{label:<13}{self.name:<20}{self.operation:<48}{latency}  {self.detail}"


@dataclass
class Report:
    target: str
    account: str | None = None
    results: list[Result] = field(default_factory=list)
    config_error: str | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.config_error is not None:
            return EXIT_CONFIG
        bad = any(r.status in ("unrecognised", "failed") for r in self.results)
        return EXIT_MISMATCH if bad else EXIT_OK

    def lines(self) -> list[str]:
        out = [f"finout-mcp doctor: read-only checks against {self.target}"]
        out.extend("  " + r.line() for r in self.results)
        counts = {s: sum(r.status == s for r in self.results) for s in ("ok", "unrecognised", "failed", "skipped")}
        out.append(
            f"{len(self.results)} checks in {self.seconds:.2f} s: {counts['ok']} ok, {counts['unrecognised']} "
            f"unrecognised, {counts['failed']} failed, {counts['skipped']} skipped."
        )
        if self.config_error is not None:
            out.append(f"Configuration error: {self.config_error}")
        elif self.exit_code == EXIT_OK:
            out.append("Every answer was recognised: finout-mcp reads this account as documented.")
        else:
            out.append(
                "Some answers were not what finout-mcp expects: do not trust writes until this is resolved; "
                "report the UNRECOGNISED lines (they hold no values)."
            )
        return out


# ----------------------------------------------------------------------------- the checks


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 or word.endswith('s') else 's'}"


async def _views(client: FinoutClient, found: Found) -> str:
    views = (await client.list_views()).data  # the first call: it also proves the credentials
    found.view = views[0] if views else None
    return f"credentials accepted; {_plural(len(views), 'view')}"


async def _costs(client: FinoutClient, found: Found) -> str:
    if found.view is None:
        raise Skip("no view to query")
    day = found.today - dt.timedelta(days=1)  # yesterday, UTC: a whole day
    start = (day - dt.date(1970, 1, 1)).days * DAY_MS
    answer = await client.query_costs(found.view.id, start_ms=start, end_ms=start + DAY_MS - 1)
    total = answer.total
    amount = sum(p.amount for p in total.data) if total is not None else None
    figure = f", total {amount:,.2f}" if amount is not None else ", no Total series"
    return f"view {found.view.name!r}, {day.isoformat()}: {_plural(len(answer.data), 'series')}{figure}"


async def _keys(client: FinoutClient, found: Found) -> str:
    keys = (await client.list_keys()).keys
    found.key = next((k for k in keys if (k.cost_center, k.key) == SMALL_KEY), keys[0] if keys else None)
    centers = {k.cost_center for k in keys}
    return f"{_plural(len(keys), 'key')} in {_plural(len(centers), 'cost center')}"


async def _values(client: FinoutClient, found: Found) -> str:
    if found.key is None:
        raise Skip("no key to ask about")
    values = (await client.list_values(found.key.cost_center, found.key.key)).values
    return f"{found.key.cost_center}/{found.key.key}: {_plural(len(values), 'value')}"


async def _tags(client: FinoutClient, found: Found) -> str:
    found.tags = (await client.list_virtual_tags()).virtual_tags
    return _plural(len(found.tags), "virtual tag")


async def _tag(client: FinoutClient, found: Found) -> str:
    if not found.tags:
        raise Skip("no virtual tag")
    tag = await client.get_virtual_tag(found.tags[0].id)
    return f"{tag.name!r}: {_plural(len(tag.rules), 'rule')}"


async def _metadata(client: FinoutClient, found: Found) -> str:
    if not found.tags:
        raise Skip("no virtual tag")
    missing: list[str] = []
    last: NotFoundError | None = None
    for tag in found.tags[:METADATA_TRIES]:
        try:
            metadata = (await client.get_virtual_tag_metadata(tag.id)).metadata
        except NotFoundError as exc:  # a tag without metadata may answer 404: ask the next one
            missing.append(tag.name)
            last = exc
            continue
        note = f" (404 for {', '.join(repr(m) for m in missing)})" if missing else ""
        return f"{tag.name!r}: metadata for {_plural(len(metadata), 'value')}{note}"
    assert last is not None
    raise last


async def _scans(client: FinoutClient, found: Found) -> str:
    found.scans = (await client.list_scans()).scans
    return _plural(len(found.scans), "scan")


async def _recommendation(client: FinoutClient, found: Found) -> str:
    from finout_mcp.api.models import RecommendationsRequest

    if not found.scans:
        raise Skip("no CostGuard scan")
    scan = found.scans[0]
    recs = await client.get_scan_recommendations(RecommendationsRequest(scan_id=scan.scan_id))
    resources = sum(len(g.resources) for g in recs.data)
    return f"{scan.scan_name!r}: {_plural(len(recs.data), 'group')}, {_plural(resources, 'resource')}"


async def _endpoints(client: FinoutClient, found: Found) -> str:
    endpoints = (await client.list_endpoints()).endpoints
    kinds: dict[str, int] = {}
    for e in endpoints:
        kinds[e.type] = kinds.get(e.type, 0) + 1
    hidden = sum(1 for e in endpoints if e.type in ("email", "slack") and e.target is None)
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    note = f"; {hidden} without a visible target" if hidden else ""
    return f"{_plural(len(endpoints), 'endpoint')}" + (f" ({by_kind})" if by_kind else "") + note


def default_checks() -> list[Check]:
    """Every v1 read operation, each once, in the order that feeds the next."""
    return [
        Check("views", "GET /view", _views),
        Check("costs of one day", "POST /cost/query-by-view", _costs),
        Check("keys", "GET /megabill/query-language/keys", _keys),
        Check("values of one key", "GET /megabill/query-language/values/{cc}/{key}", _values),
        Check("virtual tags", "GET /virtual-tags", _tags),
        Check("one virtual tag", "GET /virtual-tags/{id}", _tag),
        Check("its metadata", "GET /virtual-tags/{id}/metadata", _metadata),
        Check("CostGuard scans", "GET /cost-guard/scans", _scans),
        Check("one recommendation", "POST /cost-guard/scans-recommendations", _recommendation),
        Check("endpoints", "GET /endpoints", _endpoints),
    ]


# ----------------------------------------------------------------------------- running them


def _trim(text: str, secrets: Sequence[str]) -> str:
    from finout_mcp.redact import scrub_secrets

    text = scrub_secrets(" ".join(text.split()), secrets)
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 1] + "…"


def _config_problem(exc: FinoutError) -> str | None:
    if isinstance(exc, AuthenticationError):
        return f"the credentials were refused ({exc.status}). {exc.hint}"
    if isinstance(exc, NotFoundError) and exc.base_url_wrong:
        return exc.hint
    if isinstance(exc, MalformedResponseError) and exc.status is not None and 300 <= exc.status < 400:
        return f"{exc.message}."
    return None


async def run_checks(
    client: FinoutClient,
    *,
    target: str,
    secrets: Sequence[str] = (),
    today: dt.date | None = None,
    checks: Sequence[Check] | None = None,
) -> Report:
    """Run ``checks`` (default: every v1 read) once each and report; never raises a FinoutError."""
    found = Found(today=today or dt.datetime.now(dt.UTC).date())
    report = Report(target=target)
    started = time.monotonic()
    for check in checks if checks is not None else default_checks():
        t0 = time.monotonic()
        try:
            figures = await check.run(client, found)
        except Skip as skip:
            report.results.append(Result(check.name, check.operation, "skipped", str(skip)))
            continue
        except MalformedResponseError as exc:
            ms = (time.monotonic() - t0) * 1000
            problem = _config_problem(exc)
            if exc.field is not None:
                detail = f"{exc.message}; got {exc.shape or 'an unreadable body'}"
                report.results.append(
                    Result(check.name, check.operation, "unrecognised", _trim(detail, secrets), ms)
                )
            else:
                report.results.append(Result(check.name, check.operation, "failed", _trim(str(exc), secrets), ms))
            if problem is not None:
                report.config_error = _trim(problem, secrets)
                break
            continue
        except FinoutError as exc:
            ms = (time.monotonic() - t0) * 1000
            report.results.append(Result(check.name, check.operation, "failed", _trim(str(exc), secrets), ms))
            problem = _config_problem(exc)
            if problem is not None:
                report.config_error = _trim(problem, secrets)
                break
            continue
        ms = (time.monotonic() - t0) * 1000
        report.results.append(Result(check.name, check.operation, "ok", _trim(figures, secrets), ms))
    report.seconds = time.monotonic() - started
    return report


def _shown_url(url: str) -> str:
    """The API URL without any user:password part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def v2_results(state: AccountState, *, secrets: Sequence[str], today: dt.date | None) -> list[Result]:
    """The API v2 checks (:func:`finout_mcp.services.api_check_v2.check_api_v2`), one line each."""
    from finout_mcp.services.api_check_v2 import check_api_v2

    started = time.monotonic()
    checks = await check_api_v2(state.client_v2, state.cost_queries, today=today)
    total_ms = (time.monotonic() - started) * 1000
    status: dict[bool | None, Status] = {True: "ok", False: "unrecognised", None: "skipped"}
    return [
        Result(
            f"v2 {c.name}",
            f"API v2 ({total_ms:,.0f} ms for all v2 checks)" if i == 0 else "API v2",
            status[c.ok],
            _trim(c.detail, secrets),
        )
        for i, c in enumerate(checks)
    ]


async def check_account(state: AccountState, *, target: str, today: dt.date | None, v2: bool = True) -> Report:
    """The report of one account: every v1 read, then (if those reached Finout) the v2 checks."""
    secrets = state.secrets
    report = await run_checks(state.client, target=target, secrets=secrets, today=today)
    if v2 and report.config_error is None:
        started = time.monotonic()
        report.results.extend(await v2_results(state, secrets=secrets, today=today))
        report.seconds += time.monotonic() - started
    return report


async def doctor(
    settings: Settings, *, accounts: Accounts | None = None, today: dt.date | None = None, v2: bool = True
) -> list[Report]:
    """One report per configured account (checked at once, each within its own request cap): the
    real API, or the built-in sandbox with ``--demo``."""
    import anyio

    from finout_mcp.server.state import AppState

    run = AppState(settings, accounts=accounts)  # the one place that builds the clients (and demo sandboxes)
    names = run.accounts.names
    reports: dict[str, Report] = {}

    async def one(name: str) -> None:
        state = run.account(name)
        where = "the built-in sandbox account (--demo)" if settings.demo else _shown_url(state.settings.api_url)
        target = f"account {name!r}: {where}" if run.accounts.multi else where
        reports[name] = report = await check_account(state, target=target, today=today, v2=v2)
        report.account = name

    try:
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(one, name)
        return [reports[name] for name in names]
    finally:
        await run.aclose()


def exit_code(reports: Sequence[Report]) -> int:
    """The worst of the accounts' exit codes (configuration beats a mismatch beats ok)."""
    return max((r.exit_code for r in reports), default=EXIT_OK)


def summary(reports: Sequence[Report]) -> str:
    """One line per account, for a run over several."""
    said = {EXIT_OK: "every answer recognised", EXIT_MISMATCH: "MISMATCH", EXIT_CONFIG: "CONFIGURATION ERROR"}
    return "; ".join(f"{r.account}: {said[r.exit_code]}" for r in reports)


def main(settings: Settings, write: Callable[[str], object], *, accounts: Accounts | None = None) -> int:
    """Run the doctor, write each account's report line by line, return the exit status."""
    import anyio

    reports = anyio.run(lambda: doctor(settings, accounts=accounts))
    for i, report in enumerate(reports):
        if i:
            write("\n")
        for line in report.lines():
            write(line + "\n")
    if len(reports) > 1:
        write(f"\n{len(reports)} accounts checked. {summary(reports)}.\n")
    return exit_code(reports)
