"""Two replicas of finout-mcp behind one Finout API key share one PostgreSQL database.

Finout allows 5 requests in flight per API key. Two HTTP replicas (real subprocesses) take 50
concurrent tool calls between them against a sandbox on its own port (answering in 100 ms):
with FINOUT_MCP_DATABASE_URL on one PostgreSQL server they never have more than 5 requests in
flight together and Finout never answers 429; the control run without the shared database shows
what each replica's own limit alone allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from tests.conftest import FinoutProcess, free_port, serve, server_env
from tests.postgres import pg_url, reset_database
from tests.support import report

__all__ = ["pg_url"]  # the fixture

pytestmark = pytest.mark.slow

KEY = {"FINOUT_CLIENT_ID": "replica-client", "FINOUT_SECRET_KEY": "replica-secret-0123456789abcdef"}
CALLS = [
    ("list_views", {"refresh": True}),
    ("list_virtual_tags", {"refresh": True}),
    ("query_view_costs", {"view": "All costs by service", "period": "last_30_days"}),
    ("list_costguard_scans", {"refresh": True}),
    ("list_endpoints", {}),
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = FinoutProcess(
        ["sandbox", "--port", str(port), "--latency-ms", "100"],
        server_env(tmp_path / "sb"),
        tmp_path / "sandbox.stderr",
        port=port,
    )
    with serve(proc):
        yield f"http://127.0.0.1:{port}"


def replica(tmp_path: Path, name: str, api: str, database_url: str | None) -> FinoutProcess:
    port = free_port()
    state = tmp_path / f"state-{name}"
    state.mkdir()
    env = {**KEY, "FINOUT_API_URL": f"{api}/v1", "FINOUT_MCP_TIMEOUT": "30"}
    if database_url:
        env["FINOUT_MCP_DATABASE_URL"] = database_url
    return FinoutProcess(
        ["--transport", "streamable-http", "--stateless", "--port", str(port)],
        server_env(state, **env),
        tmp_path / f"{name}.stderr",
        port=port,
    )


def metadata_write(n: int) -> tuple[str, dict[str, object]]:
    """A merge of one metadata value of its own into the same tag: the same map, rewritten whole."""
    return (
        "update_virtual_tag_metadata",
        {"tag": "Team", "values": {f"replica-value-{n}": {"customMetadata": {"owner": f"owner-{n}"}}}},
    )


async def fifty_calls(replicas: tuple[FinoutProcess, ...], writes: int = 0) -> tuple[list[str], list[str]]:
    """25 calls on each replica at once; the first ``writes`` of each are metadata merges.
    Returns the failures and the metadata values written."""
    failures: list[str] = []
    written: list[str] = []

    async def client_of(proc: FinoutProcess, offset: int) -> None:
        async with Client(f"{proc.url}/mcp") as client, anyio.create_task_group() as tg:
            for i in range(25):
                name, args = CALLS[(i + offset) % len(CALLS)] if i >= writes else metadata_write(offset * 100 + i)

                async def one(name: str = name, args: dict[str, object] = args) -> None:
                    result = await client.call_tool(name, args)
                    if result.is_error:
                        failures.append(f"{name}: {str(result.content)[:300]}")
                    elif name == "update_virtual_tag_metadata":
                        written.extend(args["values"])  # type: ignore[call-overload]

                tg.start_soon(one)

    async with anyio.create_task_group() as tg:
        for n, proc in enumerate(replicas):
            tg.start_soon(client_of, proc, n)
    return failures, written


async def stats(api: str) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(f"{api}/_sandbox/stats")).json()  # type: ignore[no-any-return]


async def reset_sandbox(api: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(f"{api}/_sandbox/reset")


async def test_two_replicas_share_finouts_five_request_limit(tmp_path: Path, sandbox: str, pg_url: str) -> None:
    reset_database(pg_url)
    with serve(replica(tmp_path, "a", sandbox, pg_url), replica(tmp_path, "b", sandbox, pg_url)) as procs:
        await reset_sandbox(sandbox)
        failures, written = await fifty_calls(procs, writes=5)
        shared = await stats(sandbox)
        # No lost update: both replicas merged into one metadata map at once; every value is there,
        # and either replica's list_changes shows all ten writes (one change log).
        async with Client(f"{procs[1].url}/mcp") as client:
            md = await client.call_tool("get_virtual_tag_metadata", {"tag": "Team"})
            changes = await client.call_tool("list_changes", {"limit": 50})
    report(
        f"\nreplicas on one PostgreSQL: 50 calls (10 metadata merges), max in flight at Finout "
        f"{shared['max_in_flight']}, 429s {shared['rate_limited']}, requests {shared['total_requests']}"
    )
    # A merge that met another replica's write is refused with nothing sent (never applied over it).
    refused = [f for f in failures if "changed by another writer" in f and "Nothing was sent" in f]
    assert failures == refused, [f for f in failures if f not in refused][:3]
    assert shared["max_in_flight"] <= 5
    assert shared["rate_limited"] == 0
    assert md.structured_content is not None and changes.structured_content is not None
    assert written, "no merge went through"
    assert set(written) <= set(md.structured_content["values"]), (written, sorted(md.structured_content["values"]))
    recorded = [
        c for c in changes.structured_content["changes"] if c["operation"] == "update_virtual_tag_metadata"
    ]
    assert len([c for c in recorded if c["status"] == "done"]) == len(written), recorded[:3]
    report(f"no lost update: {len(written)} merges applied, {len(refused)} refused as concurrent, all in one log")


def test_postgres_change_store_is_shared(pg_url: str) -> None:
    """Two stores on one database (two replicas): one log, and a tag's write lock excludes the other."""
    from finout_mcp.services.changelog import PostgresChangeStore
    from tests.test_changelog import done, tag

    reset_database(pg_url)
    a, b = PostgresChangeStore(pg_url), PostgresChangeStore(pg_url)
    try:
        first = done(a, "create_virtual_tag", target_id="vt1", target_name="Teams", after=tag())
        second = done(
            b, "update_virtual_tag", target_id="vt1", target_name="Teams", before=tag(), after=tag(to="B")
        )
        assert [r.change_id for r in a.list()] == [second.change_id, first.change_id]
        assert b.get(first.change_id).after == tag() and a.get(second.change_id).before == tag()
        assert "password" not in a.location
    finally:
        a.close()
        b.close()


async def test_control_without_a_shared_database_each_replica_counts_alone(tmp_path: Path, sandbox: str) -> None:
    """What the shared limit prevents: two replicas that each allow 5 exceed Finout's limit."""
    with serve(replica(tmp_path, "a", sandbox, None), replica(tmp_path, "b", sandbox, None)) as procs:
        await reset_sandbox(sandbox)
        await fifty_calls(procs)
        alone = await stats(sandbox)
    report(
        f"\nreplicas without a shared database: max in flight {alone['max_in_flight']}, 429s {alone['rate_limited']}"
    )
    assert alone["max_in_flight"] > 5 or alone["rate_limited"] > 0
