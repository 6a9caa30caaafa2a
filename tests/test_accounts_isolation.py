"""Several Finout accounts in one server, never mixed up.

Two sandbox accounts built from the same seed, so their virtual tags, views and scans have the same
names *and the same ids* (even the ids of tags created later): a call for one account that reached
the other would go unnoticed by anything but the account's own sandbox. Each test checks the
sandboxes themselves — which one received each request, whose tags changed."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from finout_mcp.accounts import load_accounts
from finout_mcp.config import Settings
from finout_mcp.doctor import EXIT_OK, doctor
from finout_mcp.sandbox import Sandbox
from finout_mcp.server.app import build_server
from tests.support import READ_TOOLS, TODAY, WRITE_TOOLS, call, call_error, dumps, report, text, writes

NAMES = ("acme", "globex")
RULE: dict[str, Any] = {
    "to": "Checkout",
    "filter": {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "checkout"},
}
# Valid arguments for every tool on a fresh demo account, in an order where each write still finds
# its target (undo_change gets the change_id of the update before it).
TOOL_ARGS: dict[str, dict[str, Any]] = {
    "list_views": {},
    "query_view_costs": {"view": "All costs by service", "period": "last_30_days"},
    "query_costs": {"group_by": ["AWS:service"], "period": "last_30_days"},
    "list_megabill_keys": {"search": "account"},
    "list_key_values": {"key": "pl_app"},
    "compose_filter": {"intent": RULE["filter"]},
    "list_virtual_tags": {},
    "get_virtual_tag": {"tag": "Team"},
    "lint_virtual_tag": {"tag": "Team"},
    "get_virtual_tag_metadata": {"tag": "Team"},
    "list_costguard_scans": {},
    "get_scan_recommendations": {"scan": "EC2 - Idle", "group_by": "Account Name"},
    "summarize_savings": {"group_by": "account"},
    "find_cost_anomalies": {"view": "All costs by service"},
    "forecast_costs": {"view": "All costs by service"},
    "list_endpoints": {},
    "create_virtual_tag": {"name": "Product", "rules": [RULE], "default_value": "unallocated"},
    "clone_virtual_tag": {"tag": "Team", "new_name": "Team copy"},
    "update_virtual_tag_metadata": {"tag": "Team", "values": {"checkout": {"customMetadata": {"owner": "li"}}}},
    "create_endpoint": {"type": "email", "name": "Reliability", "to": "sre@example.com"},
    "delete_virtual_tag": {"tag": "Business Unit", "confirm_name": "Business Unit"},
    "update_virtual_tag": {"tag": "Environment", "default_value": "shared"},
    "undo_change": {},  # the change_id of the update just before
    "list_changes": {},
}


def accounts_file(tmp_path: Path, *, default: str | None = None, read_only: str | None = None) -> Path:
    lines = [f'default_account = "{default}"'] if default else []
    for name in NAMES:
        lines += [f"[{name}]", f'client_id = "cid-{name}"', f'secret_key_env = "{name.upper()}_SECRET"']
        if name == read_only:
            lines.append("read_only = true")
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sandboxes() -> dict[str, Sandbox]:
    return {name: Sandbox(seed=7, today=TODAY, compute_s=0) for name in NAMES}


@asynccontextmanager
async def two_accounts(
    tmp_path: Path, *, default: str | None = None, read_only: str | None = None, **client_options: Any
) -> AsyncIterator[tuple[Client, dict[str, Sandbox]]]:
    """An in-memory client of a --demo server with two accounts, each on a sandbox of its own."""
    settings = Settings(
        demo=True,
        state_dir=tmp_path / "state",
        accounts_file=accounts_file(tmp_path, default=default, read_only=read_only),
        v2_poll_first_s=0,
        v2_poll_interval_s=0,
    )
    sbs = sandboxes()
    server = build_server(settings, accounts=load_accounts(settings), sandboxes=sbs, today=lambda: TODAY)
    async with Client(server, **client_options) as client:
        yield client, sbs


def requests(sb: Sandbox) -> int:
    return len(sb.request_log)


# ----------------------------------------------------------------------------- the listing


def _listing(tools: list[Any]) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


async def test_every_tool_takes_the_account_only_with_several(tmp_path: Path) -> None:
    from tests.support import demo

    async with demo(tmp_path / "single") as (client, _sb):
        single = _listing((await client.list_tools()).tools)
    async with two_accounts(tmp_path) as (client, _sbs):
        multi = _listing((await client.list_tools()).tools)
    async with two_accounts(tmp_path / "d", default="globex") as (client, _sbs):
        with_default = {t["name"]: t for t in _listing((await client.list_tools()).tools)}

    assert not any("account" in t["inputSchema"].get("properties", {}) for t in single)
    assert "list_accounts" not in {t["name"] for t in single}
    by_name = {t["name"]: t for t in multi}
    assert set(by_name) == READ_TOOLS | WRITE_TOOLS | {"query_costs", "list_accounts"}
    for name, tool in by_name.items():
        if name == "list_accounts":
            assert "account" not in tool["inputSchema"].get("properties", {})
            continue
        prop = tool["inputSchema"]["properties"]["account"]
        assert prop["enum"] == list(NAMES) and prop["type"] == "string", name
        assert "account" in tool["inputSchema"]["required"], name
        assert "account" in tool["outputSchema"]["properties"] and "account" in tool["outputSchema"]["required"]
        # without account, the tool is exactly the single-account one
        same = next(t for t in single if t["name"] == name)
        assert {k: v for k, v in tool["inputSchema"]["properties"].items() if k != "account"} == same[
            "inputSchema"
        ]["properties"]
        # a default makes it optional, and says which
        optional = with_default[name]["inputSchema"]
        assert (
            "account" not in optional.get("required", [])
            and "default globex" in optional["properties"]["account"]["description"]
        )
    # as BENCHMARKS.md's context figure: the compact JSON of the tools array
    size = {
        label: len(json.dumps(t, separators=(",", ":")).encode())
        for label, t in (("single", single), ("multi", multi))
    }
    report(
        f"tools/list: {size['single']:,} bytes with one account, {size['multi']:,} with two "
        f"(+{size['multi'] - size['single']:,}: the account argument on {len(multi) - 1} tools, and list_accounts)"
    )


async def test_a_one_account_file_lists_exactly_what_the_environment_does(tmp_path: Path) -> None:
    from tests.support import demo

    async with demo(tmp_path / "env") as (client, _sb):
        env = json.dumps(_listing((await client.list_tools()).tools))
    path = tmp_path / "one.toml"
    path.write_text('[solo]\nclient_id = "c"\nsecret_key_env = "SOLO_SECRET"\n')
    settings = Settings(demo=True, state_dir=tmp_path / "state", accounts_file=path)
    server = build_server(settings, accounts=load_accounts(settings), today=lambda: TODAY)
    async with Client(server) as client:
        assert json.dumps(_listing((await client.list_tools()).tools)) == env


# ----------------------------------------------------------------------------- choosing the account


async def test_the_account_is_checked_with_a_did_you_mean(tmp_path: Path) -> None:
    async with two_accounts(tmp_path) as (client, sbs):
        message = await call_error(client, "list_views", {"account": "globx"})
        assert "No Finout account named 'globx'" in message and "Did you mean 'globex'?" in message
        assert "acme, globex" in message
        message = await call_error(client, "list_views", {})
        assert "pass account" in message and "acme, globex" in message
        message = await call_error(client, "list_views", {"account": 7})
        assert "acme, globex" in message
        assert sum(requests(sb) for sb in sbs.values()) == 0  # nothing reached either account


async def test_the_default_account_answers_calls_without_one(tmp_path: Path) -> None:
    async with two_accounts(tmp_path, default="globex") as (client, sbs):
        result = await call(client, "list_views", {})
        assert result["account"] == "globex"
        assert requests(sbs["globex"]) > 0 and requests(sbs["acme"]) == 0


async def test_list_accounts_names_them_and_never_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with two_accounts(tmp_path, default="acme", read_only="globex") as (client, _sbs):
        result = await client.call_tool("list_accounts", {})
    listed = result.structured_content
    assert listed is not None
    assert listed["accounts"] == [
        {"name": "acme", "read_only": False, "default": True},
        {"name": "globex", "read_only": True, "default": False},
    ]
    assert "secret" not in text(result).lower().replace("secret_key", "") and "cid-" not in text(result)


# ----------------------------------------------------------------------------- every tool, each account


async def test_every_tool_with_each_account_reaches_that_account_only(tmp_path: Path) -> None:
    async with two_accounts(tmp_path) as (client, sbs):
        listed = {t.name for t in (await client.list_tools()).tools} - {"list_accounts"}
        assert listed == set(TOOL_ARGS)
        calls = 0
        for name in NAMES:
            other = sbs[NAMES[1 - NAMES.index(name)]]
            last_update: str | None = None
            for tool, args in TOOL_ARGS.items():
                args = {**args, "account": name}
                if tool == "undo_change":
                    args["change_id"] = last_update
                before_other = requests(other)
                result = await call(client, tool, args)
                calls += 1
                assert result["account"] == name, tool
                assert requests(other) == before_other, f"{tool} for {name} reached the other account"
                if tool == "update_virtual_tag":
                    last_update = result["change_id"]
        # each sandbox saw only its own account's key, and the same writes (each account got each write once)
        for name, sb in sbs.items():
            assert {r.client_id for r in sb.request_log} == {f"demo-client-{name}"}
        assert writes(sbs["acme"]) == writes(sbs["globex"])
        assert len(writes(sbs["acme"])) >= 7
    report(
        f"accounts: {calls} tool calls ({len(TOOL_ARGS)} tools x {len(NAMES)} accounts), none reached the other"
    )


async def test_results_and_errors_name_their_account(tmp_path: Path) -> None:
    async with two_accounts(tmp_path) as (client, _sbs):
        result = await client.call_tool("list_views", {"account": "acme"})
        assert json.loads(text(result))["account"] == "acme"
        message = await call_error(client, "get_virtual_tag", {"tag": "No such tag", "account": "globex"})
        assert "[account globex]" in message


# ----------------------------------------------------------------------------- writes stay in their account


async def test_a_write_in_one_account_leaves_the_other_untouched(tmp_path: Path) -> None:
    async with two_accounts(tmp_path) as (client, sbs):
        globex_tags = copy.deepcopy(sbs["globex"].account.virtual_tags)
        globex_meta = copy.deepcopy(sbs["globex"].account.metadata)
        team_id = next(i for i, t in globex_tags.items() if t["name"] == "Team")
        assert team_id in sbs["acme"].account.virtual_tags  # the same id in both accounts
        # warm globex's catalogue cache first: acme's writes must not serve it a stale or foreign list
        assert len((await call(client, "list_virtual_tags", {"account": "globex"}))["tags"]) == len(globex_tags)

        created = await call(client, "create_virtual_tag", {**TOOL_ARGS["create_virtual_tag"], "account": "acme"})
        await call(client, "update_virtual_tag", {"tag": team_id, "default_value": "nobody", "account": "acme"})
        await call(
            client, "update_virtual_tag_metadata", {**TOOL_ARGS["update_virtual_tag_metadata"], "account": "acme"}
        )
        await call(client, "delete_virtual_tag", {**TOOL_ARGS["delete_virtual_tag"], "account": "acme"})

        assert created["tag"]["id"] in sbs["acme"].account.virtual_tags
        assert dumps(sbs["globex"].account.virtual_tags) == dumps(globex_tags)
        assert dumps(sbs["globex"].account.metadata) == dumps(globex_meta)
        assert writes(sbs["globex"]) == []
        # and globex's own view of its tags is still its own
        listed = await call(client, "list_virtual_tags", {"account": "globex", "refresh": True})
        assert {t["name"] for t in listed["tags"]} == {t["name"] for t in globex_tags.values()}
        team = await call(client, "get_virtual_tag", {"tag": team_id, "account": "globex"})
        assert team["default_value"] != "nobody"
        # the change log: each account lists its own changes only
        assert len((await call(client, "list_changes", {"account": "acme"}))["changes"]) == 4
        assert (await call(client, "list_changes", {"account": "globex"}))["changes"] == []


async def test_a_read_only_account_refuses_writes_and_sends_nothing(tmp_path: Path) -> None:
    async with two_accounts(tmp_path, read_only="globex") as (client, sbs):
        message = await call_error(
            client, "update_virtual_tag", {**TOOL_ARGS["update_virtual_tag"], "account": "globex"}
        )
        assert "'globex' is configured read-only" in message and "nothing was sent" in message
        # the way out is the operator or Finout's app, never another customer's account
        assert "ask whoever runs this server" in message and "writable account" not in message
        assert writes(sbs["globex"]) == []
        # the instructions say up front how many accounts there are and which are read-only
        instructions = client.instructions or ""
        assert "one Finout cloud-cost account" not in instructions
        assert (
            "2 Finout cloud-cost accounts" in instructions
            and "Read-only (write tools refuse them): globex." in instructions
        )
        await call(client, "update_virtual_tag", {**TOOL_ARGS["update_virtual_tag"], "account": "acme"})
        assert len(writes(sbs["acme"])) == 1


async def test_undo_into_another_account_is_refused(tmp_path: Path) -> None:
    async with two_accounts(tmp_path) as (client, sbs):
        # the same create in both: the new tags even have the same id
        made = {
            name: await call(client, "create_virtual_tag", {**TOOL_ARGS["create_virtual_tag"], "account": name})
            for name in NAMES
        }
        assert made["acme"]["tag"]["id"] == made["globex"]["tag"]["id"]
        before = dumps(sbs["globex"].account.virtual_tags)
        for dry_run in (True, False):
            message = await call_error(
                client,
                "undo_change",
                {"change_id": made["acme"]["change_id"], "account": "globex", "dry_run": dry_run},
            )
            assert "made in the Finout account 'acme', not in 'globex'" in message and "account='acme'" in message
        assert dumps(sbs["globex"].account.virtual_tags) == before
        assert len(writes(sbs["globex"])) == 1  # its own create only
        undone = await call(client, "undo_change", {"change_id": made["acme"]["change_id"], "account": "acme"})
        assert undone["status"] == "undone" and made["acme"]["tag"]["id"] not in sbs["acme"].account.virtual_tags
        assert made["globex"]["tag"]["id"] in sbs["globex"].account.virtual_tags


async def test_a_confirmation_names_the_account(tmp_path: Path) -> None:
    from tests.test_trusted_writes import answering

    cb = answering("decline")
    async with two_accounts(tmp_path, elicitation_callback=cb) as (client, sbs):
        args = {"tag": "Environment", "confirm_name": "Environment", "account": "globex"}
        result = await call(client, "delete_virtual_tag", args)
    (question,) = cb.asked
    assert question.startswith("Delete virtual tag Environment in the Finout account 'globex'?")
    assert result["status"] == "declined" and result["account"] == "globex"
    assert writes(sbs["globex"]) == writes(sbs["acme"]) == []


# ----------------------------------------------------------------------------- each its own cap


async def test_concurrent_calls_keep_each_account_within_its_own_cap(tmp_path: Path) -> None:
    per_account = 20
    async with two_accounts(tmp_path) as (client, sbs):
        for sb in sbs.values():
            sb.faults.latency_ms = 60
        peak_total = 0
        running = True

        async def watch() -> None:
            nonlocal peak_total
            while running:
                peak_total = max(peak_total, sum(sb.stats.in_flight for sb in sbs.values()))
                await anyio.sleep(0.002)

        async def one(name: str, day: int) -> None:  # a different day each: nothing to coalesce or cache
            start = (TODAY - dt.timedelta(days=day + 1)).isoformat()
            args = {"view": "All costs by service", "start": start, "end": start, "account": name}
            await call(client, "query_view_costs", args)

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            async with anyio.create_task_group() as calls:
                for i in range(per_account * len(NAMES)):
                    calls.start_soon(one, NAMES[i % 2], i // 2)
            running = False
        elapsed = time.monotonic() - started
    peaks = {name: sb.stats.max_in_flight for name, sb in sbs.items()}
    assert peaks == {"acme": 5, "globex": 5}  # each at its cap, never beyond
    assert all(sb.stats.rate_limited == 0 for sb in sbs.values())
    assert peak_total > 5  # both at once: the accounts do not share one cap
    report(
        f"accounts: {per_account} concurrent calls per account, 60 ms each: peak in flight {peaks} "
        f"(together {peak_total}), no 429, {elapsed:.2f} s"
    )


# ----------------------------------------------------------------------------- resources and doctor


async def test_resources_carry_the_account(tmp_path: Path) -> None:
    async with two_accounts(tmp_path) as (client, sbs):
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "finout://{account}/views" in templates and "finout://{account}/virtual-tags/{tag_id}" in templates
        assert not any(t.startswith("finout://megabill") for t in templates)
        statics = {str(r.uri) for r in (await client.list_resources()).resources}
        assert statics == {"finout://guide/filters"}
        await call(client, "create_virtual_tag", {**TOOL_ARGS["create_virtual_tag"], "account": "acme"})
        acme = json.loads((await client.read_resource("finout://acme/virtual-tags")).contents[0].text)  # type: ignore[union-attr]
        globex = json.loads((await client.read_resource("finout://globex/virtual-tags")).contents[0].text)  # type: ignore[union-attr]
        assert "Product" in {t["name"] for t in acme} and "Product" not in {t["name"] for t in globex}
        assert {r.client_id for r in sbs["globex"].request_log} == {"demo-client-globex"}
        with pytest.raises(Exception, match="Did you mean 'acme'"):
            await client.read_resource("finout://acm/views")


async def test_doctor_checks_every_account(tmp_path: Path) -> None:
    settings = Settings(
        demo=True,
        state_dir=tmp_path,
        accounts_file=accounts_file(tmp_path),
        v2_poll_first_s=0,
        v2_poll_interval_s=0,
    )
    reports = await doctor(settings, accounts=load_accounts(settings), today=TODAY)
    assert [r.account for r in reports] == list(NAMES)
    assert all(r.exit_code == EXIT_OK for r in reports), "\n".join(line for r in reports for line in r.lines())
    assert reports[0].target.startswith("account 'acme'")


# ----------------------------------------------------------------------------- over the network


async def test_two_sandboxes_on_two_ports_with_real_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not --demo: each account's URL, client id and secret (one from a variable, one printed by a
    command) reach that account's own Finout over HTTP, and no secret reaches a result."""
    import sys

    import httpx

    from finout_mcp.config import load_settings
    from tests.conftest import FinoutProcess, free_port, serve, server_env

    ports = {name: free_port() for name in NAMES}
    procs = {
        name: FinoutProcess(
            ["sandbox", "--port", str(port)], server_env(tmp_path / name), tmp_path / f"{name}.stderr", port=port
        )
        for name, port in ports.items()
    }
    secrets = {"acme": "sk-acme-over-http-0123456789", "globex": "sk-globex-over-http-9876543210"}
    path = tmp_path / "accounts.toml"
    path.write_text(
        f'[acme]\nclient_id = "cid-acme"\nsecret_key_env = "ACME_SECRET"\napi_url = "{procs["acme"].url}/v1"\n'
        f'[globex]\nclient_id = "cid-globex"\napi_url = "{procs["globex"].url}/v1"\n'
        f'secret_key_command = ["{sys.executable}", "-c", "print(\'{secrets["globex"]}\')"]\n'
    )
    for var in ("FINOUT_CLIENT_ID", "FINOUT_SECRET_KEY", "FINOUT_API_URL", "FINOUT_API_V2_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ACME_SECRET", secrets["acme"])
    monkeypatch.setenv("FINOUT_MCP_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("FINOUT_MCP_STATE_DIR", str(tmp_path / "state"))
    settings = load_settings()
    server = build_server(settings, accounts=load_accounts(settings), today=lambda: TODAY)
    with serve(*procs.values()):
        async with Client(server) as client:
            created = await client.call_tool(
                "create_virtual_tag", {**TOOL_ARGS["create_virtual_tag"], "account": "acme"}
            )
            assert not created.is_error, text(created)
            views = await client.call_tool("list_views", {"account": "globex"})
            for result in (created, views):
                assert not any(
                    s in text(result) or s in json.dumps(result.structured_content) for s in secrets.values()
                )
        async with httpx.AsyncClient() as http:
            names, reached = {}, {}
            for name, proc in procs.items():
                reached[name] = (await http.get(f"{proc.url}/_sandbox/stats")).json()["total_requests"]
                answer = await http.get(
                    f"{proc.url}/v1/virtual-tags", headers={"x-finout-client-id": "t", "x-finout-secret-key": "t"}
                )
                names[name] = {t["name"] for t in answer.json()["virtualTags"]}
    assert "Product" in names["acme"] and "Product" not in names["globex"]
    assert reached["acme"] >= 3 and reached["globex"] >= 1  # keys, tags, the create / the views
    resolved = load_accounts(settings)
    assert [resolved.pick(n).settings.credentials() for n in NAMES] == [(f"cid-{n}", secrets[n]) for n in NAMES]


def test_cli_doctor_reports_each_account(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import finout_cmd, server_env

    env = server_env(tmp_path / "state", FINOUT_MCP_ACCOUNTS_FILE=str(accounts_file(tmp_path)))
    done = subprocess.run(
        finout_cmd("doctor", "--demo"), env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    heads = [line for line in done.stdout.splitlines() if line.startswith("finout-mcp doctor")]
    assert heads == [
        "finout-mcp doctor: read-only checks against account 'acme': the built-in sandbox account (--demo)",
        "finout-mcp doctor: read-only checks against account 'globex': the built-in sandbox account (--demo)",
    ]
    assert done.stdout.rstrip().endswith(
        "2 accounts checked. acme: every answer recognised; globex: every answer recognised."
    )
