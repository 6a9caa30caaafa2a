"""The command line as a user meets it: exit codes, error paragraphs, TTY help, ``finout-mcp sandbox``."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.conftest import FinoutProcess, finout_cmd, free_port, serve, server_env

pytestmark = pytest.mark.slow


# The misconfigured runs each pay the import time of the server; start them all at once.
BAD_RUNS: dict[str, list[str]] = {
    "no_credentials": [],
    "open_http_without_token": ["--demo", "--transport", "streamable-http", "--host", "0.0.0.0"],
    "bad_toolset": ["--demo", "--toolsets", "bogus"],
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    tmp = tmp_path_factory.mktemp("cli")
    procs = {
        name: subprocess.Popen(
            finout_cmd(*args),
            env=server_env(tmp),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in BAD_RUNS.items()
    }
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        results[name] = (proc.returncode, out, err)
    return results


def assert_one_paragraph(stderr: str, *must_name: str) -> None:
    assert "Traceback" not in stderr
    text = stderr.strip()
    assert text.startswith("finout-mcp: ")
    assert "\n" not in text, stderr
    for name in must_name:
        assert name in text


def test_missing_credentials_exit_2_naming_the_variable(bad_runs: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = bad_runs["no_credentials"]
    assert code == 2
    assert out == ""
    assert_one_paragraph(err, "FINOUT_CLIENT_ID", "--demo")


def test_non_loopback_http_needs_a_token(bad_runs: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = bad_runs["open_http_without_token"]
    assert code == 2
    assert out == ""
    assert_one_paragraph(err, "FINOUT_MCP_AUTH_TOKEN", "0.0.0.0")


def test_unknown_toolset_exit_2(bad_runs: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = bad_runs["bad_toolset"]
    assert code == 2
    assert out == ""
    assert_one_paragraph(err, "bogus", "views")


def test_tty_stdin_prints_connection_help_on_stderr_only(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        finout_cmd("--demo"),
        env=server_env(tmp_path),
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    assert proc.stdout is not None and proc.stderr is not None
    err = b""
    try:
        deadline = time.monotonic() + 30
        while b"Waiting for a client" not in err and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 65536)
                if not chunk:
                    break
                err += chunk
    finally:
        proc.kill()
        proc.wait(timeout=5)
        os.close(leader)
    out = proc.stdout.read()
    proc.stdout.close()
    proc.stderr.close()
    text = err.decode()
    assert "Waiting for a client" in text, text
    assert "claude mcp add finout -- finout-mcp --demo" in text
    assert "npx @modelcontextprotocol/inspector finout-mcp --demo" in text
    assert out == b""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FinoutProcess]:
    tmp = tmp_path_factory.mktemp("sandbox")
    port = free_port()
    proc = FinoutProcess(["sandbox", "--port", str(port)], server_env(tmp), tmp / "sandbox.stderr", port=port)
    with serve(proc):
        yield proc


CREDS = {"x-finout-client-id": "test-client", "x-finout-secret-key": "test-secret"}


def test_sandbox_command_serves_the_finout_api(sandbox: FinoutProcess) -> None:
    ok = httpx.get(f"{sandbox.url}/v1/view", headers=CREDS, timeout=10)
    assert ok.status_code == 200
    data = ok.json()["data"]
    assert isinstance(data, list) and data
    assert all("id" in v and "name" in v for v in data)

    denied = httpx.get(f"{sandbox.url}/v1/view", timeout=10)
    assert denied.status_code == 401
    assert f"http://127.0.0.1:{sandbox.port}/v1" in sandbox.stderr()


async def test_real_mode_against_the_sandbox_api(sandbox: FinoutProcess, tmp_path: Path) -> None:
    """Not --demo: credentials and FINOUT_API_URL as a user sets them; the secret never reaches the logs."""
    secret = "sk-" + "9" * 12 + "-never-logged"
    env = server_env(
        tmp_path,
        FINOUT_CLIENT_ID="test-client",
        FINOUT_SECRET_KEY=secret,
        FINOUT_API_URL=f"{sandbox.url}/v1",
    )
    port = free_port()
    args = ["--read-only", "--transport", "streamable-http", "--port", str(port), "--log-level", "DEBUG"]
    proc = FinoutProcess(args, env, tmp_path / "real.stderr", port=port)
    with serve(proc):
        async with Client(f"{proc.url}/mcp") as client:
            result = await client.call_tool("list_views", {})
        logged = proc.stderr()
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["views"]
    assert "finout_mcp.api: GET /view -> 200" in logged  # the requests to Finout were logged at DEBUG...
    assert secret not in logged  # ...without the secret


def test_help_lists_every_environment_variable_and_the_exit_codes() -> None:
    from finout_mcp.config import ENV_VARS

    out = subprocess.run(finout_cmd("--help"), capture_output=True, text=True, timeout=60, check=True).stdout
    env_section = out[out.index("environment variables:") : out.index("exit codes:")]
    for var in ENV_VARS.values():
        line = next((ln for ln in env_section.splitlines() if ln.split()[:1] == [var]), None)
        assert line is not None, f"{var} missing from --help:\n{env_section}"
        assert len(line.split()) > 2, f"{var} has no description: {line!r}"
    assert "FINOUT_CLIENT_ID" in env_section and "required unless --demo" in env_section
    codes = out[out.index("exit codes:") :]
    assert {ln.split()[0] for ln in codes.splitlines()[1:] if ln.strip()} >= {"0", "2"}


def test_sandbox_help_describes_every_option() -> None:
    out = subprocess.run(
        finout_cmd("sandbox", "--help"), capture_output=True, text=True, timeout=60, check=True
    ).stdout
    options = out[out.index("options:") :]
    for flag in ("--host", "--port", "--seed", "--scale", "--latency-ms"):
        # argparse prints the help text on the flag's line or the next one
        lines = options.splitlines()
        i = next(i for i, ln in enumerate(lines) if ln.strip().startswith(flag))
        described = " ".join(lines[i : i + 2]).split(flag, 1)[1]
        assert any(word.isalpha() and len(word) > 3 for word in described.split()), f"{flag}: {lines[i : i + 2]}"
    assert "/v1" in out  # where the API is served


BAD_API_URL = "app.finout.io/v1 (not a URL)"


async def test_a_bad_finout_api_url_does_not_block_demo(tmp_path: Path) -> None:
    """--demo never talks to FINOUT_API_URL, so a stale or broken value must not stop it."""
    from mcp import StdioServerParameters

    env = server_env(tmp_path, FINOUT_API_URL=BAD_API_URL)
    async with Client(
        StdioServerParameters(command=finout_cmd()[0], args=finout_cmd("--demo")[1:], env=env)
    ) as client:
        result = await client.call_tool("list_views", {})
    assert not result.is_error, result.content


def test_a_bad_finout_api_url_is_still_refused_without_demo(tmp_path: Path) -> None:
    env = server_env(tmp_path, FINOUT_API_URL=BAD_API_URL, FINOUT_CLIENT_ID="c", FINOUT_SECRET_KEY="s")
    bad = subprocess.run(
        finout_cmd(), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert_one_paragraph(bad.stderr, "FINOUT_API_URL")
