"""``finout-mcp doctor``: against the sandbox, and against a MockTransport with a wrong shape."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from finout_mcp.api.client import FinoutClient
from finout_mcp.config import Settings
from finout_mcp.doctor import EXIT_CONFIG, EXIT_MISMATCH, EXIT_OK, default_checks, doctor, run_checks
from tests.conftest import finout_cmd, server_env
from tests.test_api_fidelity import (
    COSTS_SEEN,
    ENDPOINTS_DOC,
    KEYS_DOC,
    METADATA_DOC,
    RECOMMENDATIONS_SEEN,
    SCANS_DOC,
    TAGS_DOC,
    VIEWS_DOC,
)

SECRET = "sk-doctor-5e5e5e5e"
TODAY = dt.date(2026, 11, 25)
FIRST_TAG = TAGS_DOC["virtualTags"][0]
DOCUMENTED: dict[tuple[str, str], Any] = {
    ("GET", "/v1/view"): VIEWS_DOC,
    ("POST", "/v1/cost/query-by-view"): COSTS_SEEN,
    ("GET", "/v1/megabill/query-language/keys"): KEYS_DOC,
    ("GET", "/v1/megabill/query-language/values/Kubernetes/deployment"): {"values": ["api", "worker"]},
    ("GET", "/v1/virtual-tags"): TAGS_DOC,
    ("GET", f"/v1/virtual-tags/{FIRST_TAG['id']}"): FIRST_TAG,
    ("GET", f"/v1/virtual-tags/{FIRST_TAG['id']}/metadata"): METADATA_DOC,
    ("GET", "/v1/cost-guard/scans"): SCANS_DOC,
    ("POST", "/v1/cost-guard/scans-recommendations"): RECOMMENDATIONS_SEEN,
    ("GET", "/v1/endpoints"): ENDPOINTS_DOC,
}


class FakeApi:
    """Finout's documented answers for every read, with ``overrides`` (status, body) by path."""

    def __init__(self, overrides: dict[tuple[str, str], tuple[int, Any]] | None = None) -> None:
        self.overrides = overrides or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = (request.method, request.url.path)
        if route in self.overrides:
            status, body = self.overrides[route]
            return httpx.Response(status, json=body)
        if route in DOCUMENTED:
            return httpx.Response(200, json=DOCUMENTED[route])
        return httpx.Response(404, json={"message": "not found"})


async def check(api: FakeApi, api_url: str = "https://api.test/v1") -> Any:
    settings = Settings(client_id="cid", secret_key=SECRET, api_url=api_url, retry_max_attempts=1)
    async with FinoutClient(settings, transport=httpx.MockTransport(api)) as client:
        return await run_checks(client, target=api_url, secrets=settings.secrets(), today=TODAY)


async def test_documented_answers_are_all_recognised_and_nothing_is_written() -> None:
    api = FakeApi()
    report = await check(api)
    assert report.exit_code == EXIT_OK, "\n".join(report.lines())
    assert [r.status for r in report.results] == ["ok"] * len(default_checks())
    assert {r.method for r in api.requests} <= {"GET", "POST"}
    posts = {r.url.path for r in api.requests if r.method == "POST"}
    assert posts == {"/v1/cost/query-by-view", "/v1/cost-guard/scans-recommendations"}  # the two read POSTs
    by_name = {r.name: r for r in report.results}
    assert by_name["keys"].detail == "4 keys in 4 cost centers"
    # the obfuscated e-mail example shows no address: said, not guessed
    assert by_name["endpoints"].detail == "4 endpoints (2 email, 1 msteams, 1 slack); 1 without a visible target"
    assert all(r.ms is not None for r in report.results)
    # one recent day, in ms, whole: yesterday 00:00:00.000 to 23:59:59.999 UTC
    costs = next(r for r in api.requests if r.url.path == "/v1/cost/query-by-view")
    start = int(dt.datetime(2026, 11, 24, tzinfo=dt.UTC).timestamp() * 1000)
    sent = json.loads(costs.content)["date"]
    assert sent == {"unixTimeMillSecondsStart": start, "unixTimeMillSecondsEnd": start + 86_400_000 - 1}


async def test_a_wrong_shape_is_one_unrecognised_line_and_exit_1() -> None:
    wrong = {
        ("GET", f"/v1/virtual-tags/{FIRST_TAG['id']}/metadata"): (200, {"requestId": "r", "owner": SECRET}),
        ("GET", "/v1/megabill/query-language/values/Kubernetes/deployment"): (200, {"data": [{"label": "x"}]}),
    }
    report = await check(FakeApi(wrong))
    assert report.exit_code == EXIT_MISMATCH
    by_name = {r.name: r for r in report.results}
    assert by_name["its metadata"].status == "unrecognised"
    assert "no `metadata` field" in by_name["its metadata"].detail
    assert "got {requestId: str, owner: str}" in by_name["its metadata"].detail
    assert by_name["values of one key"].status == "unrecognised"
    assert sum(r.status == "ok" for r in report.results) == len(default_checks()) - 2
    text = "\n".join(report.lines())
    assert SECRET not in text and "UNRECOGNISED" in text and "do not trust writes" in text


async def test_refused_credentials_and_a_wrong_base_url_are_configuration_errors() -> None:
    refused = await check(FakeApi({("GET", "/v1/view"): (401, {"message": "Unauthorized"})}))
    assert refused.exit_code == EXIT_CONFIG and len(refused.results) == 1
    assert "FINOUT_CLIENT_ID" in (refused.config_error or "")
    everywhere = await check(FakeApi(), api_url="https://api.test")  # no /v1: every path is 404
    assert everywhere.exit_code == EXIT_CONFIG
    assert "FINOUT_API_URL" in (everywhere.config_error or "") and "base URL is wrong" in everywhere.lines()[-1]


async def test_empty_account_skips_what_it_cannot_ask() -> None:
    empty = {
        ("GET", "/v1/virtual-tags"): (200, {"virtualTags": []}),
        ("GET", "/v1/cost-guard/scans"): (200, {"scans": []}),
    }
    report = await check(FakeApi(empty))
    assert report.exit_code == EXIT_OK
    assert {r.name for r in report.results if r.status == "skipped"} == {
        "one virtual tag",
        "its metadata",
        "one recommendation",
    }


async def test_doctor_against_the_sandbox(tmp_path: Path) -> None:
    settings = Settings(demo=True, state_dir=tmp_path, v2_poll_first_s=0, v2_poll_interval_s=0)
    [report] = await doctor(settings, today=TODAY)
    assert report.exit_code == EXIT_OK, "\n".join(report.lines())
    assert all(r.status == "ok" for r in report.results)
    names = [r.name for r in report.results]
    assert names[: len(default_checks())] == [c.name for c in default_checks()]
    assert "v2 rows" in names  # then the API v2 checks (services/api_check_v2.py), one line each


@pytest.mark.parametrize("args", [["doctor", "--demo"], ["--demo", "doctor"]])
def test_cli_doctor_demo(tmp_path: Path, args: list[str]) -> None:
    done = subprocess.run(
        finout_cmd(*args), env=server_env(tmp_path), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("finout-mcp doctor") and len(lines) > len(default_checks()) + 3
    assert all(line.lstrip().startswith("ok") for line in lines[1:-2]), done.stdout
    assert lines[-1].startswith("Every answer was recognised")


def test_cli_doctor_without_credentials_is_a_configuration_error(tmp_path: Path) -> None:
    done = subprocess.run(
        finout_cmd("doctor"), env=server_env(tmp_path), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2 and "FINOUT_CLIENT_ID" in done.stderr and "Traceback" not in done.stderr
